"""Error responses: {"error": code, "message": text, "problems": [{field, problem}]}."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
import redis.exceptions
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from streams.config_view import ConfigUnavailable

log = logging.getLogger("leadstream.api")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, problems: list[dict] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.problems = problems or []
        self.headers = headers or {}


def validation_problems(exc: ValidationError | RequestValidationError) -> list[dict]:
    """Each problem as the dotted field path and a plain sentence."""
    out = []
    for e in exc.errors():
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body",)]
        problem = e["msg"]
        if e.get("type") == "extra_forbidden":
            problem = "unknown field: remove it (see the OpenAPI docs at /docs for the fields)"
        elif e.get("type") == "json_invalid":
            problem = f"malformed JSON: {e.get('ctx', {}).get('error', e['msg'])}"
        out.append({"field": ".".join(loc) or "(body)", "problem": problem})
    return out


def _response(status: int, code: str, message: str, problems=None, headers=None) -> JSONResponse:
    body = {"error": code, "message": message}
    if problems:
        body["problems"] = problems
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError):
        return _response(exc.status, exc.code, exc.message, exc.problems, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_: Request, exc: RequestValidationError):
        return _response(422, "validation_failed", "invalid request", validation_problems(exc))

    @app.exception_handler(redis.exceptions.ConnectionError)
    @app.exception_handler(redis.exceptions.TimeoutError)
    async def _store_down(request: Request, exc: Exception):
        log.warning("503 for %s %s: Redis %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        return _response(503, "unavailable", f"the read store (Redis) is not answering: {exc}; retry",
                         headers={"Retry-After": "2"})

    @app.exception_handler(ConfigUnavailable)
    async def _config_down(request: Request, exc: Exception):
        log.warning("503 for %s %s: %s", request.method, request.url.path, exc)
        return _response(503, "unavailable", f"{exc}; retry", headers={"Retry-After": "2"})

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException):
        return _response(exc.status_code, "http_error", str(exc.detail), headers=exc.headers)
