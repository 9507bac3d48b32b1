"""Product events in, and segments read.

POST /v1/events                               one event (202), or 422 naming the problem
POST /v1/events/batch                         up to max_batch_leads events: all taken, or none
GET  /v1/tenants/{tenant}/segments/{id}/members   size and one page of members (?cursor=)

A person is named by lead_id, email or phone; email and phone resolve to the tenant's lead id.
A person the platform does not know is refused (422 unknown_person) or, when the tenant's
triggering.unknown_person is "record", taken and recorded as unresolved (outcome
"recorded_unknown"): never dropped without a word. An erased person is refused either way (422
do_not_contact): nothing about them is written again. While Redis is being rebuilt after a loss
(ls:intact missing) a person not found is neither: 503, retry. With an idempotency_key (per event) or an
Idempotency-Key header (per request) a retry produces the same event ids: nothing twice.
"""
from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel
from redis.exceptions import RedisError

from api.access import Access, rule
from api.body import parse_body, read_body
from api.errors import ApiError
from api.openapi_docs import json_body
from domain.identity import new_event_id
from domain.product_events import (EventBatchIn, EventError, EventIn, person_lead_id, product_event_id, tracked)
from projections.redis_keys import INTACT
from projections.redis_segments import SegmentStore
from services.privacy.keys import KeyDestroyed, KeysNotRestored
from services.product_intake import sealed_products
from streams.producer import ProduceError
from streams.topics import PRODUCT_EVENTS

Deps = Any  # runtime.deps.Deps


class EventTaken(BaseModel):
    event_id: str
    lead_id: str
    outcome: str  # accepted | recorded_unknown


class EventsTaken(BaseModel):
    count: int
    events: list[EventTaken]


class SegmentMembers(BaseModel):
    segment: str
    size: int
    members: list[str]
    next_cursor: int  # 0: this was the last page


_RESPONSES = {401: {"description": "missing or invalid API key"},
              403: {"description": "key not allowed for this tenant"},
              413: {"description": "body or batch too large"},
              422: {"description": "invalid event, a person the tenant does not know, or an erased one"},
              503: {"description": "Kafka did not take the events, or Redis is being rebuilt after a loss "
                                   "and some person is not known yet: nothing stored, retry"}}


def install_event_routes(app: FastAPI, deps: Deps, access) -> None:

    @app.post("/v1/events", status_code=202, responses=_RESPONSES, tags=["events"], response_model=EventTaken,
              openapi_extra={**rule("events.submit", "request"), **json_body(EventIn)})
    async def submit_event(request: Request, who: Access = Depends(access)) -> dict:
        """One product event about one person (lead_id, email or phone), with typed properties."""
        ev = _parse(EventIn, await read_body(request, deps.settings))
        [taken] = await _take(deps, who, [ev], request, "")
        return taken

    @app.post("/v1/events/batch", status_code=202, responses=_RESPONSES, tags=["events"],
              response_model=EventsTaken, openapi_extra={**rule("events.submit", "request"),
                                                          **json_body(EventBatchIn)})
    async def submit_events(request: Request, who: Access = Depends(access)) -> dict:
        """Up to 1,000 product events at once: all are taken, or none (with the reasons)."""
        batch = _parse(EventBatchIn, await read_body(request, deps.settings))
        if len(batch.events) > deps.settings.max_batch_leads:
            raise ApiError(413, "batch_too_large", f"{len(batch.events)} events in one batch; at most "
                                                   f"{deps.settings.max_batch_leads}: split it")
        taken = await _take(deps, who, batch.events, request, "events.")
        return {"count": len(taken), "events": taken}

    @app.get("/v1/tenants/{tenant}/segments/{segment}/members", tags=["segments"], response_model=SegmentMembers,
             openapi_extra=rule("segments.read", "path"))
    async def segment_members(tenant: str, segment: str, cursor: int = 0, count: int = 100,
                              who: Access = Depends(access)) -> dict:
        """A segment's size and one page of its members (lead ids); pass next_cursor for the next."""
        brand = deps.tenants.tenants.get(tenant)
        if brand is None or segment not in brand.segments:
            raise ApiError(404, "not_found", f"no segment {segment!r} in tenant {tenant!r}")
        store = SegmentStore(deps.redis)
        next_cursor, members = await store.members(tenant, segment, max(0, cursor), min(max(1, count), 1000))
        return {"segment": segment, "size": await store.size(tenant, segment), "members": members,
                "next_cursor": next_cursor}


def _parse(model, body: bytes):
    return parse_body(model, body, "event")


async def _take(deps: Deps, who: Access, events: list[EventIn], request: Request, path: str) -> list[dict]:
    tenant = deps.tenants.tenants[who.tenant]
    policy = tenant.triggering
    now_ms = int(time.time() * 1000)
    idem = request.headers.get("idempotency-key")
    leads, problems = [], []
    for i, ev in enumerate(events):
        try:
            leads.append(person_lead_id(ev, tenant.id, tenant.validation.default_region, deps.lead_ids))
        except EventError as exc:
            problems.append({"field": f"{path}{i}.{exc.field}" if path else exc.field, "problem": str(exc)})
            leads.append("")
    if problems:
        raise ApiError(422, "validation_failed", "the events cannot be taken", problems)
    known = await deps.leads.get_many([(tenant.id, lead) for lead in leads])
    unknown = [i for i, state in enumerate(known) if state is None]
    if unknown and not await deps.redis.exists(INTACT):
        # Redis lost its state and is being rebuilt: these people may well be known, so neither
        # refused nor recorded as strangers; the client retries (nothing was taken)
        raise ApiError(503, "rebuilding", "the platform is rebuilding its state after losing it and cannot tell "
                                          "whether it knows these people yet; nothing was taken, retry later",
                       headers={"Retry-After": "30"})
    gone = await deps.do_not_contact().erased([(tenant.id, leads[i]) for i in unknown])
    erased = [i for i, g in zip(unknown, gone) if g]
    if erased:
        raise ApiError(422, "do_not_contact", "an erased person is named: nothing about them is taken again, "
                                              "whatever the tenant's unknown-person policy; nothing was taken",
                       [{"field": f"{path}{i}" if path else _person_field(events[i]), "problem": "erased person"}
                        for i in erased])
    if unknown and policy.unknown_person == "reject":
        raise ApiError(422, "unknown_person", "no lead of this tenant is the person named; nothing was taken "
                                              "(the tenant may record such events instead: triggering.unknown_person)",
                       [{"field": f"{path}{i}" if path else _person_field(events[i]), "problem": "unknown person"}
                        for i in unknown])
    out, records = [], []
    for i, (ev, lead) in enumerate(zip(events, leads)):
        key = ev.idempotency_key or (f"{idem}/{i}" if idem else None)
        event_id = product_event_id(tenant.id, key, new_event_id(now_ms, os.urandom(10)))
        try:
            doc = tracked(ev, tenant.id, lead, i not in unknown, event_id, now_ms, policy.max_property_bytes)
        except EventError as exc:
            problems.append({"field": f"{path}{i}.{exc.field}" if path else exc.field, "problem": str(exc)})
            continue
        records.append(doc)
        out.append({"event_id": event_id, "lead_id": lead,
                    "outcome": "accepted" if i not in unknown else "recorded_unknown"})
    if problems:
        raise ApiError(422, "validation_failed", "the events cannot be taken", problems)
    await _produce(deps, await _sealed(deps, records, frozenset(policy.clear_properties), now_ms))
    return out


async def _sealed(deps: Deps, docs: list[dict], keep: frozenset[str], now_ms: int) -> list[dict]:
    """The events with every property outside `keep` sealed with the person's data key; an
    event about nobody we know keeps only those in `keep` (no key seals the rest, nobody could
    erase them). No key, no event: 503, retry (nothing was taken)."""
    try:
        return await asyncio.wait_for(sealed_products(deps, docs, lambda _tenant: keep, now_ms),
                                      deps.settings.produce_timeout_s)
    except (RedisError, KeysNotRestored, KeyDestroyed, ProduceError, asyncio.TimeoutError) as exc:
        raise ApiError(503, "unavailable", f"the people's data keys could not be had ({type(exc).__name__}): nothing "
                                           f"was accepted, retry later", headers={"Retry-After": "5"}) from exc


def _person_field(ev: EventIn) -> str:
    return "lead_id" if ev.lead_id else "email" if ev.email else "phone"


async def _produce(deps: Deps, docs: list[dict]) -> None:
    topic = deps.topic(PRODUCT_EVENTS)
    records = [(topic, (d["lead_id"] or d["event_id"]).encode(), deps.codec.encode("product.tracked", d), None)
               for d in docs]
    try:
        await deps.producer.send_many(records, timeout=deps.settings.produce_timeout_s)
    except (ProduceError, asyncio.TimeoutError) as exc:
        raise ApiError(503, "unavailable", f"the event store (Kafka) did not take the events: {exc}; nothing was "
                                           f"accepted, retry later", headers={"Retry-After": "5"}) from exc
