"""Subject rights: everything the platform holds about one person, as one JSON document.

POST /v1/subjects/export   {"email": ..., "phone": ...} (either or both; brand admins only)
POST /v1/subjects/erase    {"email": ..., "phone": ..., "reason": ...} (brand admins only)

The person's leads (one per channel: the email's and the phone's) with, for each: the read
model, the current consent, segments, schedule, digest memberships and opt-out from Redis, and
every event ClickHouse holds about the lead (every topic the analytics agent reads, the items
they posted included), oldest first, with the fields sealed by the lead's data key opened. A lead whose key was destroyed
(erased) shows its sealed fields as null.
"""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.access import Access, rule
from api.body import parse_body, read_body
from api.clickhouse_reads import CLICKHOUSE_DOWN, read, reads_pool
from api.errors import ApiError
from api.openapi_docs import json_body
from domain.erasure import REASON_MAX
from domain.identity import identity_email, identity_phone
from domain.sealing import SealError, open_event
from projections.event_history import lead_events
from projections.redis_digests import member_key
from projections.redis_leads import optout_key
from projections.redis_schedule import due_key
from projections.redis_segments import lead_segments_key
from services.privacy.erasure import Eraser, Subject
from services.privacy.keys import KeyDestroyed
from streams.producer import ProduceError

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


class EraseIn(SubjectIn):
    reason: str = Field(min_length=3, max_length=REASON_MAX,
                        description="why (the person's request, its date, a ticket): kept with the erasure's record")


class LeadErased(BaseModel):
    lead_id: str
    channel: str
    event_id: str = Field(description="the erasure's record on privacy.erasures")
    anonymous_id: str = Field(description="what names the lead in the analytics rows from now on")
    held: bool = Field(description="whether the platform held anything about this lead")
    data_key_destroyed: bool
    redis_traces_removed: int
    clickhouse_rows_anonymised: int
    crm_contacts_cleared: int = Field(0, description="the brand's CRM contacts whose leadstream properties were emptied")
    crm_emptying_owed: bool = Field(False, description="the CRM did not take the emptying now: the crm agent "
                                                       "empties the contact at its next ticks")


class SubjectErasure(BaseModel):
    tenant: str
    erased_at: str
    erased_by: str
    reason: str
    leads: list[LeadErased]


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


_ERASE_RESPONSES = {**{k: v for k, v in _RESPONSES.items() if k != 404},
                    422: {"description": "neither email nor phone, or no reason"},
                    503: {"description": "Kafka or ClickHouse did not answer: ask again (an erasure can be repeated)"}}


def install_subject_routes(app: FastAPI, deps: Deps, access) -> None:
    pool = reads_pool(deps)

    @app.post("/v1/subjects/export", responses=_RESPONSES, tags=["subjects"], response_model=SubjectExport,
              openapi_extra={**rule("subjects.export", "request"), **json_body(SubjectIn)})
    async def export_subject(request: Request, who: Access = Depends(access)) -> dict:
        """Every event and every piece of state about one person, decrypted, as one document."""
        subject = parse_body(SubjectIn, await read_body(request, deps.settings), "subject")
        brand = deps.tenants.tenants[who.tenant]
        out = []
        for channel, address in _subjects(subject, brand.id, brand.validation.default_region):
            doc = await _lead_export(deps, pool, brand.id, channel, address)
            if doc is not None:
                out.append(doc)
        if not out:
            raise ApiError(404, "not_found", "the platform holds nothing about this person in this tenant")
        return {"tenant": brand.id, "exported_by": who.actor, "exported_at": _now_text(), "leads": out}

    @app.post("/v1/subjects/erase", responses=_ERASE_RESPONSES, tags=["subjects"], response_model=SubjectErasure,
              openapi_extra={**rule("subjects.erase", "request"), **json_body(EraseIn)})
    async def erase_subject(request: Request, who: Access = Depends(access)) -> dict:
        """Erase one person: their data key destroyed, their traces in Redis removed, their
        analytics rows anonymised, a record of the erasure kept, and never taken again."""
        ask = parse_body(EraseIn, await read_body(request, deps.settings), "erasure")
        brand = deps.tenants.tenants[who.tenant]
        subjects = [Subject(channel, deps.lead_ids.of(brand.id, channel, address), address)
                    for channel, address in _subjects(ask, brand.id, brand.validation.default_region)]
        try:
            done = await Eraser(deps).erase(brand.id, subjects, who.actor, ask.reason,
                                            request.headers.get("idempotency-key"))
        except (ProduceError, asyncio.TimeoutError) as exc:
            raise ApiError(503, "unavailable", f"Kafka did not take the erasure's record: {exc}; nothing was "
                                               "erased, ask again", headers={"Retry-After": "5"}) from exc
        except (*CLICKHOUSE_DOWN, TimeoutError) as exc:
            raise ApiError(503, "unavailable", f"erased from Kafka's keys and Redis, but ClickHouse did not "
                                               f"answer ({exc}): its rows are not anonymised yet; ask again "
                                               "(an erasure can always be asked again)",
                           headers={"Retry-After": "5"}) from exc
        return {"tenant": brand.id, "erased_by": who.actor, "erased_at": _now_text(), "reason": ask.reason,
                "leads": [vars(e) for e in done]}


def _subjects(subject: SubjectIn, tenant: str, region: str) -> list[tuple[str, str]]:
    out = []
    if subject.email:
        out.append(("email", identity_email(subject.email)))
    if subject.phone:
        out.append(("sms", identity_phone(subject.phone, region)))
    return out


def _now_text() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


async def _lead_export(deps: Deps, pool, tenant: str, channel: str, address: str) -> dict | None:
    lid = deps.lead_ids.of(tenant, channel, address)
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
