"""Subject rights: everything the platform holds about one person, as one JSON document.

POST /v1/subjects/export   {"email": ..., "phone": ...} (either or both; brand admins only)

The person's leads (one per channel: the email's and the phone's) with, for each: the read
model, the current consent, segments, schedule, digest memberships and opt-out from Redis, and
every event ClickHouse holds about the lead (every topic the analytics agent reads), oldest
first, with the fields sealed by the lead's data key opened. A lead whose key was destroyed
(erased) shows its sealed fields as null.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.access import Access, rule
from api.body import parse_body, read_body
from api.clickhouse_reads import read, reads_pool
from api.errors import ApiError
from api.openapi_docs import json_body
from domain.identity import identity_email, identity_phone, lead_id
from domain.sealing import SealError, open_event
from projections.event_history import lead_events
from projections.redis_digests import member_key
from projections.redis_leads import optout_key
from projections.redis_schedule import due_key
from projections.redis_segments import lead_segments_key
from services.privacy.keys import KeyDestroyed

Deps = Any  # runtime.deps.Deps
ALL_EVENTS = 1_000_000  # an export holds every event (a year of a busy lead is a few thousand)


class SubjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str | None = Field(None, min_length=3, max_length=254)
    phone: str | None = Field(None, min_length=3, max_length=32)

    @model_validator(mode="after")
    def _someone(self) -> "SubjectIn":
        if not (self.email or self.phone):
            raise ValueError("name the person by email, phone or both")
        return self


class LeadExport(BaseModel):
    lead_id: str
    channel: str
    address: str
    state: dict | None = Field(description="the lead's read model")
    consent: dict = Field(description="current consent per purpose")
    segments: list[str]
    schedule: dict[str, int] = Field(description="list -> next due instant (ms)")
    digest_groups: dict[str, int] = Field(description="group -> when the lead joined it (ms)")
    opted_out: bool
    events: list[dict] = Field(description="every event about the lead, oldest first, sealed fields opened")
    event_types: dict[str, int]


class SubjectExport(BaseModel):
    tenant: str
    exported_at: str
    exported_by: str
    leads: list[LeadExport]


_RESPONSES = {401: {"description": "missing or invalid credentials"},
              403: {"description": "not a brand admin of this tenant"},
              404: {"description": "the platform holds nothing about this person in this tenant"},
              422: {"description": "neither email nor phone, or one that cannot be read"}}


def install_subject_routes(app: FastAPI, deps: Deps, access) -> None:
    pool = reads_pool(deps)

    @app.post("/v1/subjects/export", responses=_RESPONSES, tags=["subjects"], response_model=SubjectExport,
              openapi_extra={**rule("subjects.export", "request"), **json_body(SubjectIn)})
    async def export_subject(request: Request, who: Access = Depends(access)) -> dict:
        """Every event and every piece of state about one person, decrypted, as one document."""
        subject = parse_body(SubjectIn, await read_body(request, deps.settings), "subject")
        brand = deps.tenants.tenants[who.tenant]
        leads = []
        if subject.email:
            leads.append(("email", identity_email(subject.email)))
        if subject.phone:
            leads.append(("sms", identity_phone(subject.phone, brand.validation.default_region)))
        out = []
        for channel, address in leads:
            doc = await _lead_export(deps, pool, brand.id, channel, address)
            if doc is not None:
                out.append(doc)
        if not out:
            raise ApiError(404, "not_found", "the platform holds nothing about this person in this tenant")
        return {"tenant": brand.id, "exported_by": who.actor,
                "exported_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"), "leads": out}


async def _lead_export(deps: Deps, pool, tenant: str, channel: str, address: str) -> dict | None:
    lid = lead_id(tenant, channel, address)
    state = await deps.leads.get(tenant, lid)
    rows = await read(pool, lead_events, deps.settings.clickhouse_database, tenant, lid, ALL_EVENTS)
    if state is None and not rows:
        return None
    r = deps.redis
    pipe = r.pipeline(transaction=False)
    pipe.smembers(lead_segments_key(tenant, lid))
    pipe.zrange(member_key(tenant, lid), 0, -1, withscores=True)
    pipe.sismember(optout_key(tenant), address)
    segments, groups, opted = await pipe.execute()
    lists = list(state.lists) if state else []
    due = await r.zmscore(due_key(tenant), [f"{lid}|{name}" for name in lists]) if lists else []
    try:
        dek = (await deps.data_keys().keys_for(tenant, [lid], int(time.time() * 1000), create=False))[lid]
    except KeyDestroyed:
        dek = None
    events = [_opened(row, dek) for row in sorted(rows, key=lambda x: (x.at_ms, x.event_id))]
    types: dict[str, int] = {}
    for ev in events:
        types[ev["event_type"]] = types.get(ev["event_type"], 0) + 1
    doc = state.to_dict() if state else None
    if doc:
        doc.pop("applied", None)
    return {"lead_id": lid, "channel": channel, "address": address, "state": doc,
            "consent": await deps.consent_store().current(tenant, lid),
            "segments": sorted(s.decode() for s in segments),
            "schedule": {name: int(ms) for name, ms in zip(lists, due) if ms is not None},
            "digest_groups": {g.decode(): int(ms) for g, ms in groups}, "opted_out": bool(opted),
            "events": events, "event_types": dict(sorted(types.items()))}


def _opened(row, dek: bytes | None) -> dict:
    payload = row.payload
    try:
        payload = open_event(row.event_type, payload, dek)
    except SealError:
        payload = {**payload, "unreadable": True}  # sealed with a key that is not this lead's: shown as is
    return {"event_id": row.event_id, "event_type": row.event_type, "at_ms": row.at_ms, "payload": payload}
