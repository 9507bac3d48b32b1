"""The consent ledger's doors: recording consent given or withdrawn, and reading a lead's.

POST /v1/consent          one record (202), or 422 naming the problem
POST /v1/consent/batch    up to max_batch_leads records: all taken, or none
GET  /v1/consent?lead_id=|email=|phone=   the lead's current consent per purpose

A record names a person the tenant knows (422 unknown_person otherwise: a consent is a lead's);
the channel is the lead's. The events go to consent.events, their ip and text sealed with the
lead's data key (domain/sealing.py: an erasure makes them unreadable everywhere); the hygiene
agent folds them into each lead's current consent, which the sender checks (a withdrawn
marketing consent: the lead's messages are skipped with reason consent_withdrawn). With an idempotency_key (per record) or an
Idempotency-Key header (per request), a retry records nothing twice.
"""
from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from fastapi import Depends, FastAPI, Query, Request
from pydantic import BaseModel

from api.access import Access, rule
from api.body import parse_body, read_body
from api.errors import ApiError
from api.openapi_docs import json_body
from domain.consent import (SENDING_PURPOSE, ConsentBatchIn, ConsentError, ConsentIn, consent_event,
                            consent_event_id, withdrawn_from_sending)
from domain.identity import new_event_id
from domain.sealing import seal_event
from projections.redis_keys import INTACT
from services.privacy.keys import KeysNotRestored
from streams.producer import ProduceError
from streams.topics import CONSENT_EVENTS

Deps = Any  # runtime.deps.Deps


def _nonce() -> bytes:
    return os.urandom(12)


class ConsentTaken(BaseModel):
    event_id: str
    lead_id: str
    channel: str
    purpose: str
    granted: bool


class ConsentsTaken(BaseModel):
    count: int
    records: list[ConsentTaken]


class PurposeConsent(BaseModel):
    granted: bool
    at: int  # ms since the epoch: when it was given or withdrawn
    via: str
    event_id: str


class LeadConsent(BaseModel):
    lead_id: str
    channel: str
    purposes: dict[str, PurposeConsent]
    sending_allowed: bool  # false when the current marketing consent is withdrawn


_RESPONSES = {401: {"description": "missing or invalid API key"},
              403: {"description": "key not allowed for this tenant"},
              413: {"description": "body or batch too large"},
              422: {"description": "invalid record, or a person the tenant does not know"},
              503: {"description": "Kafka did not take the records, or Redis is being rebuilt: nothing stored, retry"}}


def install_consent_routes(app: FastAPI, deps: Deps, access) -> None:

    @app.post("/v1/consent", status_code=202, responses=_RESPONSES, tags=["consent"], response_model=ConsentTaken,
              openapi_extra={**rule("consent.write", "request"), **json_body(ConsentIn)})
    async def record_consent(request: Request, who: Access = Depends(access)) -> dict:
        """One consent given or withdrawn (the ledger keeps every record; the latest by `at` holds)."""
        c = parse_body(ConsentIn, await read_body(request, deps.settings), "consent record")
        [taken] = await _take(deps, who, [c], request, "")
        return taken

    @app.post("/v1/consent/batch", status_code=202, responses=_RESPONSES, tags=["consent"],
              response_model=ConsentsTaken, openapi_extra={**rule("consent.write", "request"),
                                                           **json_body(ConsentBatchIn)})
    async def record_consents(request: Request, who: Access = Depends(access)) -> dict:
        """Up to 1,000 records at once (an import of a brand's forms): all are taken, or none."""
        batch = parse_body(ConsentBatchIn, await read_body(request, deps.settings), "consent batch")
        if len(batch.records) > deps.settings.max_batch_leads:
            raise ApiError(413, "batch_too_large", f"{len(batch.records)} records in one batch; at most "
                                                   f"{deps.settings.max_batch_leads}: split it")
        taken = await _take(deps, who, batch.records, request, "records.")
        return {"count": len(taken), "records": taken}

    @app.get("/v1/consent", responses=_RESPONSES, tags=["consent"], response_model=LeadConsent,
             openapi_extra=rule("leads.read", "request"))
    async def read_consent(lead_id: str | None = Query(None, max_length=64),
                           email: str | None = Query(None, max_length=254),
                           phone: str | None = Query(None, max_length=32),
                           tenant: str | None = None, who: Access = Depends(access)) -> dict:
        """A lead's current consent per purpose, as the sender sees it."""
        brand = deps.tenants.tenants[who.tenant]
        if len([v for v in (lead_id, email, phone) if v]) != 1:
            raise ApiError(422, "validation_failed", "name the person with exactly one of lead_id, email, phone",
                           [{"field": "lead_id", "problem": "exactly one of lead_id, email, phone"}])
        lead, _ = deps.lead_ids.named(brand.id, lead_id, email, phone, brand.validation.default_region)
        state = await deps.leads.get(brand.id, lead)
        if state is None:
            raise ApiError(404, "not_found", "no lead of this tenant is the person named")
        current = await deps.consent_store().current(brand.id, lead)
        return {"lead_id": lead, "channel": state.channel, "purposes": current,
                "sending_allowed": not withdrawn_from_sending(current.get(SENDING_PURPOSE))}


async def _take(deps: Deps, who: Access, records: list[ConsentIn], request: Request, path: str) -> list[dict]:
    tenant = deps.tenants.tenants[who.tenant]
    now_ms = int(time.time() * 1000)
    idem = request.headers.get("idempotency-key")
    problems, leads = [], []

    def problem(i: int, field: str, text: str) -> None:
        problems.append({"field": f"{path}{i}.{field}" if path else field, "problem": text})

    for i, c in enumerate(records):
        lead, field = deps.lead_ids.named(tenant.id, c.lead_id, c.email, c.phone, tenant.validation.default_region)
        leads.append((lead, field))
    states = await deps.leads.get_many([(tenant.id, lead) for lead, _ in leads])
    unknown = [i for i, state in enumerate(states) if state is None]
    if unknown and not await deps.redis.exists(INTACT):
        raise ApiError(503, "rebuilding", "the platform is rebuilding its state after losing it and cannot tell "
                                          "whether it knows these people yet; nothing was taken, retry later",
                       headers={"Retry-After": "30"})
    for i in unknown:
        problem(i, leads[i][1], "unknown person: no lead of this tenant")
    if problems:
        raise ApiError(422, "unknown_person", "a consent record names a lead of the tenant; nothing was taken",
                       problems)
    out, docs = [], []
    for i, (c, (lead, _), state) in enumerate(zip(records, leads, states)):
        key = c.idempotency_key or (f"{idem}/{i}" if idem else None)
        event_id = consent_event_id(tenant.id, key, new_event_id(now_ms, os.urandom(10)))
        try:
            name, ev = consent_event(c, tenant.id, lead, state.channel, event_id, now_ms, who.actor)
        except ConsentError as exc:
            problem(i, exc.field, str(exc))
            continue
        docs.append((name, lead, ev))
        out.append({"event_id": event_id, "lead_id": lead, "channel": state.channel, "purpose": c.purpose,
                    "granted": c.granted})
    if problems:
        raise ApiError(422, "validation_failed", "the consent records cannot be taken", problems)
    await _produce(deps, tenant.id, docs, now_ms)
    return out


async def _produce(deps: Deps, tenant: str, docs: list[tuple[str, str, dict]], now_ms: int) -> None:
    """The records, their ip and text sealed with each lead's data key (made durable first)."""
    topic = deps.topic(CONSENT_EVENTS)
    try:
        deks = await asyncio.wait_for(deps.data_keys().keys_for(tenant, [lead for _, lead, _ in docs], now_ms),
                                      deps.settings.produce_timeout_s)
        records = [(topic, lead.encode(), deps.codec.encode(name, seal_event(name, ev, deks[lead], _nonce)), None)
                   for name, lead, ev in docs]
        await deps.producer.send_many(records, timeout=deps.settings.produce_timeout_s)
    except KeysNotRestored as exc:
        raise ApiError(503, "rebuilding", f"{exc}; nothing was recorded, retry later",
                       headers={"Retry-After": "30"}) from exc
    except (ProduceError, asyncio.TimeoutError) as exc:
        raise ApiError(503, "unavailable", f"the event store (Kafka) did not take the records: {exc}; nothing was "
                                           f"recorded, retry later", headers={"Retry-After": "5"}) from exc
