"""Shared machinery of the management routes: envelopes, ETags, If-Match, applying a change.

An entity is answered as {id, version, updated_at_ms, updated_by, data} with `ETag: "v<version>"`;
a replace, patch or delete must send `If-Match` with that ETag (412 when stale, 428 when
missing); a create of an id that exists is 409. Refusals from the domain (422 with each field's
path and problem) pass through unchanged, and nothing is applied.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.access import Access
from api.errors import ApiError
from domain.config_changes import Change, Entity, Refused, redact
from domain.config_entities import Ref
from streams.config_writer import ConfigWriteError

_ETAG = re.compile(r'^(?:W/)?"?v?(\d+)"?$')
SECRET_PLACEHOLDER = "(secret)"

ERRORS = {401: {"description": "not signed in, or an unknown API key"},
          403: {"description": "your role may not do this here"},
          404: {"description": "no such entity (or tenant)"},
          409: {"description": "already exists, or still used by other entities"},
          412: {"description": "If-Match names an older version: read again and retry"},
          422: {"description": "invalid: each problem with its field path"},
          428: {"description": "If-Match is required to change an entity"},
          503: {"description": "Kafka did not take the change: nothing applied, retry"}}


class Envelope(BaseModel):
    """One configuration entity as the API answers it."""

    model_config = ConfigDict(extra="forbid")
    id: str
    version: int = Field(description="changes on every write; send it back as If-Match")
    updated_at_ms: int
    updated_by: str
    data: dict[str, Any]


def envelope(entity: Entity, response: Response | None = None) -> dict:
    """The envelope of an entity (secrets blanked), setting the ETag on the response."""
    if response is not None:
        response.headers["ETag"] = etag(entity.version)
    return {"id": entity.ref.id, "version": entity.version, "updated_at_ms": entity.at_ms,
            "updated_by": entity.actor, "data": redact(entity.ref.kind, entity.data)}


def etag(version: int) -> str:
    return f'"v{version}"'


def if_match(request: Request) -> int | None:
    """The version named by If-Match (None when absent)."""
    raw = request.headers.get("if-match")
    if raw is None:
        return None
    m = _ETAG.match(raw.strip())
    if not m:
        raise ApiError(412, "version_mismatch", f"If-Match {raw!r} is not an ETag this API gave ("
                                                f'"v<version>")')
    return int(m.group(1))


def current(deps, ref: Ref) -> Entity:
    """The live entity, or 404."""
    entity = deps.config.snapshot().get(ref.key)
    if entity is None or not entity.live:
        raise ApiError(404, "not_found", f"no {ref.kind} {ref.id!r}" + (f" in {ref.tenant!r}" if ref.tenant else ""))
    return entity


def keep_secrets(ref: Ref, data: dict, before: Entity | None) -> dict:
    """A write that sends a secret back as its placeholder keeps the stored secret."""
    if before is None or not before.live or ref.kind != "webhook":
        return data
    if data.get("secret") == SECRET_PLACEHOLDER:
        return {**data, "secret": before.data.get("secret")}
    return data


def origin(request: Request) -> tuple[str | None, str | None]:
    """(address, user agent) of the request, for the audit log."""
    forwarded = request.headers.get("x-forwarded-for")
    ip = forwarded.split(",")[0].strip() if forwarded else (request.client.host if request.client else None)
    return ip, request.headers.get("user-agent")


def change(request: Request, who: Access, op: str, ref: Ref, data: dict | None = None,
           expected: int | None = None) -> Change:
    ip, agent = origin(request)
    return Change(op, ref, data, expected, actor=who.actor, origin_ip=ip, user_agent=agent)


@contextmanager
def refusals_as_api_errors(unchanged: str = "nothing was changed") -> Iterator[None]:
    """The configuration service's refusals as API errors (its problems on their fields), and
    its log not answering as a 503 saying what was not done."""
    try:
        yield
    except Refused as exc:
        raise ApiError(exc.status, exc.code, exc.message,
                       [{"field": f, "problem": p} for f, p in exc.problems]) from exc
    except ConfigWriteError as exc:
        raise ApiError(503, "unavailable", f"{exc}; {unchanged}, retry", headers={"Retry-After": "2"}) from exc


async def apply(deps, changes: list[Change]):
    """Apply changes through the configuration service, mapping its refusals to API errors."""
    with refusals_as_api_errors():
        return await deps.config_service.apply(changes)


async def write_one(deps, request: Request, response: Response, who: Access, op: str, ref: Ref,
                    data: dict | None = None, status: int = 200) -> dict | None:
    """Create / replace / delete one entity; answers its envelope (None after a delete)."""
    before = deps.config.snapshot().get(ref.key)
    expected = None
    if op in ("replace", "delete"):
        if before is None or not before.live:
            raise ApiError(404, "not_found", f"no {ref.kind} {ref.id!r}")
        expected = if_match(request)
    if data is not None:
        data = keep_secrets(ref, data, before)
    await apply(deps, [change(request, who, op, ref, data, expected)])
    response.status_code = 204 if op == "delete" else status
    if op == "delete":
        return None
    return envelope(current(deps, ref), response)


def entities_of(deps, kind: str, tenant: str | None) -> list[Entity]:
    """Every live entity of a kind (in a tenant), sorted by id."""
    return sorted((e for e in deps.config.snapshot().values()
                   if e.live and e.ref.kind == kind and e.ref.tenant == tenant), key=lambda e: e.ref.id)
