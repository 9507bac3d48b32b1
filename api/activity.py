"""Activity in: items posted in groups, and members joining or leaving them (the digests' input).

POST /v1/activity          one item or membership (202), or 422 naming the problem
POST /v1/activity/batch    up to max_batch_leads at once: all taken, or none

A membership names a person the tenant knows (lead_id, email or phone); a stranger is refused
(422 unknown_person): a digest goes to leads only. With an idempotency_key (per event) or an
Idempotency-Key header (per request) a retry produces the same event ids: nothing twice.
"""
from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel

from api.access import Access, rule
from api.body import parse_body, read_body
from api.errors import ApiError
from api.openapi_docs import json_body
from domain.activity_input import (ActivityBatchIn, ActivityError, ActivityIn, activity_event, activity_event_id,
                                   member_lead_id)
from domain.identity import new_event_id
from projections.redis_keys import INTACT
from streams.producer import ProduceError
from streams.topics import ACTIVITY_EVENTS

Deps = Any  # runtime.deps.Deps


class ActivityTaken(BaseModel):
    event_id: str
    kind: str
    lead_id: str  # "" for a posted item


class ActivitiesTaken(BaseModel):
    count: int
    events: list[ActivityTaken]


_RESPONSES = {401: {"description": "missing or invalid API key"},
              403: {"description": "key not allowed for this tenant"},
              413: {"description": "body or batch too large"},
              422: {"description": "invalid activity, or a member the tenant does not know"},
              503: {"description": "Kafka did not take the events, or Redis is being rebuilt: nothing stored, retry"}}


def install_activity_routes(app: FastAPI, deps: Deps, access) -> None:

    @app.post("/v1/activity", status_code=202, responses=_RESPONSES, tags=["activity"], response_model=ActivityTaken,
              openapi_extra={**rule("events.submit", "request"), **json_body(ActivityIn)})
    async def submit_activity(request: Request, who: Access = Depends(access)) -> dict:
        """One item posted in a group, or one member joining or leaving it."""
        a = parse_body(ActivityIn, await read_body(request, deps.settings), "activity")
        [taken] = await _take(deps, who, [a], request, "")
        return taken

    @app.post("/v1/activity/batch", status_code=202, responses=_RESPONSES, tags=["activity"],
              response_model=ActivitiesTaken, openapi_extra={**rule("events.submit", "request"),
                                                              **json_body(ActivityBatchIn)})
    async def submit_activities(request: Request, who: Access = Depends(access)) -> dict:
        """Up to 1,000 items and memberships at once: all are taken, or none (with the reasons)."""
        batch = parse_body(ActivityBatchIn, await read_body(request, deps.settings), "activity")
        if len(batch.events) > deps.settings.max_batch_leads:
            raise ApiError(413, "batch_too_large", f"{len(batch.events)} events in one batch; at most "
                                                   f"{deps.settings.max_batch_leads}: split it")
        taken = await _take(deps, who, batch.events, request, "events.")
        return {"count": len(taken), "events": taken}


async def _take(deps: Deps, who: Access, items: list[ActivityIn], request: Request, path: str) -> list[dict]:
    tenant = deps.tenants.tenants[who.tenant]
    now_ms = int(time.time() * 1000)
    idem = request.headers.get("idempotency-key")
    problems, leads = [], []

    def problem(i: int, field: str, text: str) -> None:
        problems.append({"field": f"{path}{i}.{field}" if path else field, "problem": text})

    for i, a in enumerate(items):
        try:
            leads.append(member_lead_id(a, tenant.id, tenant.validation.default_region, deps.lead_ids))
        except ActivityError as exc:
            problem(i, exc.field, str(exc))
            leads.append("")
    if problems:
        raise ApiError(422, "validation_failed", "the activity cannot be taken", problems)
    members = [i for i, lead in enumerate(leads) if lead]
    known = await deps.leads.get_many([(tenant.id, leads[i]) for i in members])
    unknown = [i for i, state in zip(members, known) if state is None]
    if unknown and not await deps.redis.exists(INTACT):
        raise ApiError(503, "rebuilding", "the platform is rebuilding its state after losing it and cannot tell "
                                          "whether it knows these members yet; nothing was taken, retry later",
                       headers={"Retry-After": "30"})
    if unknown:
        raise ApiError(422, "unknown_person", "no lead of this tenant is the member named; nothing was taken",
                       [{"field": f"{path}{i}" if path else "lead_id", "problem": "unknown person"} for i in unknown])
    out, records = [], []
    for i, (a, lead) in enumerate(zip(items, leads)):
        key = a.idempotency_key or (f"{idem}/{i}" if idem else None)
        event_id = activity_event_id(tenant.id, key, new_event_id(now_ms, os.urandom(10)))
        try:
            name, kafka_key, ev = activity_event(a, tenant.id, lead, event_id, now_ms)
        except ActivityError as exc:
            problem(i, exc.field, str(exc))
            continue
        records.append((name, kafka_key, ev))
        out.append({"event_id": event_id, "kind": a.kind, "lead_id": lead})
    if problems:
        raise ApiError(422, "validation_failed", "the activity cannot be taken", problems)
    await _produce(deps, records)
    return out


async def _produce(deps: Deps, docs: list[tuple[str, str, dict]]) -> None:
    topic = deps.topic(ACTIVITY_EVENTS)
    records = [(topic, key.encode(), deps.codec.encode(name, ev), None) for name, key, ev in docs]
    try:
        await deps.producer.send_many(records, timeout=deps.settings.produce_timeout_s)
    except (ProduceError, asyncio.TimeoutError) as exc:
        raise ApiError(503, "unavailable", f"the event store (Kafka) did not take the activity: {exc}; nothing was "
                                           f"accepted, retry later", headers={"Retry-After": "5"}) from exc
