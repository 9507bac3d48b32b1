"""Activity in: items posted in a brand's groups, communities and feeds, and who joins or leaves
them, as a brand sends them (API body or queue message), checked strictly.

An item names its group and carries what a digest shows (title, url) and a score (relevance and
engagement, higher first). A membership names its person by exactly one of lead_id, email or
phone (resolved to the tenant's lead id as the intake derives it) and may give their time zone.
"""
from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.digests import GROUP_KINDS
from domain.identity import LeadIds, derived_event_id
from domain.input_checks import ZonedDatetime, one_person
from domain.schedule import resolve_timezone

GROUP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")
MAX_FUTURE_MS = 5 * 60_000
SOURCE = "api"

class ActivityError(ValueError):
    def __init__(self, field: str, problem: str):
        super().__init__(problem)
        self.field = field

class ActivityIn(BaseModel):
    """One item posted, or one person joining or leaving a group."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: Literal["posted", "joined", "left"]
    group_id: str = Field(max_length=128)
    group_kind: Literal["community", "saved_search", "employer", "feed"] = "community"
    # posted
    item_id: str | None = Field(None, min_length=1, max_length=128)
    title: str | None = Field(None, min_length=1, max_length=300)
    url: str | None = Field(None, max_length=2000)
    score: float = Field(0.0, ge=-1e9, le=1e9, allow_inf_nan=False)
    author_lead_id: str | None = Field(None, max_length=64)
    at: ZonedDatetime | None = Field(None, description="when it was posted or happened (ISO 8601 with zone); default: now")
    # joined / left
    lead_id: str | None = Field(None, max_length=64)
    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=32)
    timezone: str | None = Field(None, max_length=64, description="the member's IANA zone (joined)")
    idempotency_key: str | None = Field(None, min_length=1, max_length=128)

    @field_validator("group_id")
    @classmethod
    def _group(cls, v: str) -> str:
        if not GROUP_ID.match(v):
            raise ValueError(f"{v!r} is not a group id: letters, digits and _ . : / -, at most 128")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("https://", "http://")):
            raise ValueError("an item's url starts with https:// or http://")
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is not None and resolve_timezone(v, "UTC")[1]:
            raise ValueError(f'{v!r} is not an IANA zone name (e.g. "America/Chicago")')
        return v

    @model_validator(mode="after")
    def _shape(self) -> "ActivityIn":
        if self.kind == "posted":
            missing = [k for k in ("item_id", "title", "url") if not getattr(self, k)]
            if missing:
                raise ValueError(f"a posted item needs {', '.join(missing)}")
            if any(getattr(self, k) for k in ("lead_id", "email", "phone", "timezone")):
                raise ValueError("a posted item names no member (its author is author_lead_id)")
        else:
            one_person(self, "member")
            if any(getattr(self, k) for k in ("item_id", "title", "url", "author_lead_id")):
                raise ValueError(f"a {self.kind} membership carries no item fields")
        return self

class ActivityBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[ActivityIn] = Field(min_length=1)

def member_lead_id(a: ActivityIn, tenant: str, default_region: str, ids: LeadIds) -> str:
    """The lead id of a membership's person ("" for a posted item)."""
    if a.kind == "posted":
        return ""
    try:
        return ids.named(tenant, a.lead_id, a.email, a.phone, default_region)[0]
    except ValueError as exc:
        raise ActivityError("email" if a.email else "phone", str(exc)) from exc


def activity_event_id(tenant: str, key: str | None, fresh: str) -> str:
    """A fixed id for an idempotency key (a retry is the same event), else the fresh one."""
    return derived_event_id(f"{tenant}/{key}", "activity", 0) if key else fresh

def activity_event(a: ActivityIn, tenant: str, lead: str, event_id: str, now_ms: int) -> tuple[str, str, dict]:
    """(event name, Kafka key, event) of one checked activity."""
    at = int(a.at.timestamp() * 1000) if a.at else now_ms
    if at > now_ms + MAX_FUTURE_MS:
        raise ActivityError("at", "is in the future")
    env = {"event_id": event_id, "tenant": tenant, "occurred_at": now_ms, "causation_id": None, "source": SOURCE}
    if a.kind == "posted":
        return "activity.posted", a.group_id, {
            **env, "schema": "activity.posted@1", "item_id": a.item_id, "group_id": a.group_id,
            "group_kind": a.group_kind, "title": a.title, "url": a.url, "score": float(a.score),
            "author_lead_id": a.author_lead_id, "posted_at": at}
    if a.kind == "joined":
        return "activity.joined", lead, {**env, "occurred_at": at, "schema": "activity.joined@1", "lead_id": lead,
                                         "group_id": a.group_id, "group_kind": a.group_kind, "timezone": a.timezone}
    return "activity.left", lead, {**env, "occurred_at": at, "schema": "activity.left@1", "lead_id": lead,
                                   "group_id": a.group_id}



def queued_problem(name: str, ev: dict) -> str | None:
    """Why an activity event produced straight to the topic (not through the API) cannot be
    kept, or None: the API's checks, for what the Avro schema alone lets through."""
    if not GROUP_ID.match(ev.get("group_id") or ""):
        return f"group_id {ev.get('group_id')!r} is not a group id"
    if name == "activity.posted":
        if not math.isfinite(ev["score"]):
            return f"score {ev['score']!r} is not a finite number"
        if not ev["item_id"] or not str(ev["url"]).startswith(("https://", "http://")):
            return "a posted item needs an item_id and an http(s) url"
    if name != "activity.left" and ev.get("group_kind") not in GROUP_KINDS:
        return f"group_kind {ev.get('group_kind')!r} is not one of {', '.join(GROUP_KINDS)}"
    if name == "activity.joined" and ev.get("timezone") and resolve_timezone(ev["timezone"], "UTC")[1]:
        return f"timezone {ev['timezone']!r} is not an IANA zone name"
    if name != "activity.posted" and not ev.get("lead_id"):
        return "a membership names its lead_id"
    return None
