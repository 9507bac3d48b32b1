"""Product events in: the shape a brand sends (API body or queue message), checked strictly,
and the platform's own events seen as trigger events (lead.accepted, email.clicked...).

A person is named by exactly one of lead_id, email or phone; email and phone resolve to the
tenant's lead id the way the intake derives it. Properties are typed scalars (or lists of
them), at most 50, and the whole object at most the tenant's max_property_bytes of JSON.
"""
from __future__ import annotations

from datetime import datetime, timezone

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.identity import LeadIds, derived_event_id
from domain.input_checks import ZonedDatetime, one_person
from domain.sealing import PREFIX, is_sealed
from domain.triggers import EVENT_NAME, PLATFORM_EVENTS, PROPERTY_NAME

MAX_PROPERTIES = 50
MAX_FUTURE_MS = 5 * 60_000  # an event may be stamped at most this far ahead (clock skew)
MAX_PAST_MS = 30 * 86_400_000  # ... and at most this far back
SOURCE = "api"
Scalar = str | int | float | bool | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class EventIn(_Strict):
    """One product event about one person."""

    lead_id: str | None = Field(None, max_length=64)
    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=32)
    name: str = Field(description="e.g. job_viewed, application_started")
    at: ZonedDatetime | None = Field(None, description="when it happened (ISO 8601 with zone); default: now")
    properties: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)
    idempotency_key: str | None = Field(None, min_length=1, max_length=128)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not EVENT_NAME.match(v):
            raise ValueError(f"{v!r} is not an event name: lower-case letters, digits, _ . : -, at most 64")
        if v in PLATFORM_EVENTS or v.split(".", 1)[0] in ("lead", "email", "sms", "send", "trigger", "segment"):
            raise ValueError(f"{v!r} is a platform event name: product events use names of their own")
        return v

    @field_validator("properties")
    @classmethod
    def _props(cls, v: dict) -> dict:
        if len(v) > MAX_PROPERTIES:
            raise ValueError(f"{len(v)} properties: at most {MAX_PROPERTIES}")
        for k, value in v.items():
            if not PROPERTY_NAME.match(k):
                raise ValueError(f"{k!r} is not a property name (letters, digits, _; at most 64)")
            if isinstance(value, list) and len(value) > 100:
                raise ValueError(f"{k}: a list of at most 100 values")
            if isinstance(value, str) and len(value) > 1000:
                raise ValueError(f"{k}: text of at most 1,000 characters")
            if is_sealed(value):
                raise ValueError(f"{k}: text beginning {PREFIX!r} is how sealed values are written, not a value")
        return v

    @model_validator(mode="after")
    def _one_person(self) -> "EventIn":
        one_person(self)
        return self


class EventBatchIn(_Strict):
    events: list[EventIn] = Field(min_length=1)


class EventError(ValueError):
    """An event that cannot be taken: the field and the problem."""

    def __init__(self, field: str, problem: str):
        super().__init__(problem)
        self.field = field


def person_lead_id(ev: EventIn, tenant: str, default_region: str, ids: LeadIds) -> str:
    """The lead id the event names (email and phone normalised as the intake does)."""
    try:
        return ids.named(tenant, ev.lead_id, ev.email, ev.phone, default_region)[0]
    except ValueError as exc:
        raise EventError("email" if ev.email else "phone", str(exc)) from exc


def properties_json(props: dict, max_bytes: int) -> str:
    """The properties as the event carries them (sorted keys), within the tenant's size."""
    raw = orjson.dumps(props, option=orjson.OPT_SORT_KEYS)
    if len(raw) > max_bytes:
        raise EventError("properties", f"{len(raw)} bytes of JSON: at most {max_bytes}")
    return raw.decode()


def event_time(ev: EventIn, now_ms: int) -> int:
    if ev.at is None:
        return now_ms
    at = int(ev.at.astimezone(timezone.utc).timestamp() * 1000)
    if at > now_ms + MAX_FUTURE_MS:
        raise EventError("at", "is in the future (more than 5 minutes ahead of the platform's clock)")
    if at < now_ms - MAX_PAST_MS:
        raise EventError("at", "is more than 30 days old: product events are for what happens now")
    return at


def tracked(ev: EventIn, tenant: str, lead: str, resolved: bool, event_id: str, now_ms: int,
            max_bytes: int, source: str = SOURCE) -> dict:
    """The product.tracked event for one accepted input."""
    return {"event_id": event_id, "tenant": tenant, "occurred_at": event_time(ev, now_ms),
            "schema": "product.tracked@1", "causation_id": None, "source": source, "lead_id": lead,
            "name": ev.name, "properties": properties_json(ev.properties, max_bytes),
            "idempotency_key": ev.idempotency_key, "received_at": now_ms, "resolved": resolved,
            "email": None, "phone": None}


def product_event_id(tenant: str, key: str | None, fresh: str) -> str:
    """With an idempotency key the same event always has the same id (a retry changes nothing)."""
    return derived_event_id(f"{tenant}/{key}", "product.tracked", 0) if key else fresh


# --- the platform's own events, as trigger events ---------------------------------------

TRIGGER_SOURCES = frozenset(("product.tracked", "lead.accepted", "lead.unsubscribed", "engagement.opened",
                             "engagement.clicked", "engagement.replied"))  # every name as_trigger_event reads


def as_trigger_event(name: str, ev: dict) -> tuple[str, dict] | None:
    """(trigger event name, properties) of a platform event, or None when it is not one a
    trigger can start on (machines' opens and clicks never are; nor are revisions)."""
    if name == "product.tracked":
        return ev["name"], orjson.loads(ev["properties"] or "{}")
    if name == "lead.accepted":
        return "lead.accepted", {"list": ev.get("list", ""), "partner": ev.get("partner", ""),
                                 "channel": ev.get("channel", "")}
    if name == "lead.unsubscribed":
        return "lead.unsubscribed", {"reason": ev.get("reason", "")}
    if name in ("engagement.opened", "engagement.clicked"):
        if ev.get("is_bot") or ev.get("revision", 0):
            return None
        what = "opened" if name == "engagement.opened" else "clicked"
        channel = ev.get("channel") or "email"
        if what == "opened" and channel != "email":
            return None
        return f"{channel}.{what}", {"list": ev.get("list", ""), "template": ev.get("template") or "",
                                     "job_key": ev.get("job_key") or "", "slot": ev.get("slot") or ""}
    if name == "engagement.replied":
        return "sms.replied", {"intent": ev.get("intent") or "", "keyword": ev.get("keyword") or ""}
    return None


def utc_iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")
