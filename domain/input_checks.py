"""Checks shared by what brands send (product events, activity, consent records): times with
their zone, and a person named by exactly one of lead_id, email or phone."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

import orjson
from pydantic import AfterValidator, BaseModel, ValidationError

PERSON_FIELDS = ("lead_id", "email", "phone")


def _zoned(v: datetime) -> datetime:
    if v.tzinfo is None:
        raise ValueError("give the time zone, e.g. 2026-12-04T09:00:00Z")
    return v


ZonedDatetime = Annotated[datetime, AfterValidator(_zoned)]


def one_person(model, who: str = "person") -> None:
    """ValueError unless exactly one of lead_id, email, phone is given."""
    if len([k for k in PERSON_FIELDS if getattr(model, k)]) != 1:
        raise ValueError(f"name the {who} with exactly one of lead_id, email, phone")


def queue_message(value: bytes | None, body: str, model: type[BaseModel], tenants: dict):
    """(tenant, the body checked by `model`) of a queue path message {"tenant": ..., body: {...}};
    ValueError says what is wrong."""
    try:
        doc = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or set(doc) != {"tenant", body}:
        raise ValueError(f'expected an object {{"tenant": ..., "{body}": {{...}}}}')
    tenant = tenants.get(doc["tenant"]) if isinstance(doc["tenant"], str) else None
    if tenant is None:
        raise ValueError(f"unknown tenant {doc['tenant']!r}")
    try:
        return tenant, model.model_validate(doc[body])
    except ValidationError as exc:
        raise ValueError(f"invalid {body}: " + "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())) from exc
