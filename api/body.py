"""Reading a request body under the size limit (413 beyond it)."""
from __future__ import annotations

from fastapi import Request
from pydantic import ValidationError

from api.errors import ApiError, validation_problems
from streams.settings import Settings


async def read_body(request: Request, s: Settings) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > s.max_body_bytes:
        raise ApiError(413, "body_too_large", f"body of {declared} bytes; at most {s.max_body_bytes}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > s.max_body_bytes:
            raise ApiError(413, "body_too_large", f"body over {s.max_body_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_body(model, body: bytes, what: str):
    """The body as the model, or 422 with each problem's field ("the request body is not a valid {what}")."""
    if not body:
        raise ApiError(422, "validation_failed", "empty body: send a JSON object",
                       [{"field": "(body)", "problem": "empty body"}])
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise ApiError(422, "validation_failed", f"the request body is not a valid {what}",
                       validation_problems(exc)) from exc
