"""The API process: lead ingress (validate, produce, answer; never a projection written), the
management API, sign-in, the audit log. Every route's access rule is in its OpenAPI operation.

POST /v1/leads           one lead            -> 202 {lead_id, event_id, channel}
POST /v1/leads/batch     {"leads": [...]}    -> 202 {count, leads: [{lead_id, event_id, channel}]}
GET  /v1/leads/{lead_id} the read model of one of the key's tenant's leads
POST /v1/leads/{lead_id}/unsubscribe               -> 202 {lead_id, event_id}
POST /webhooks/{provider} provider callbacks (api/webhooks.py)
/v1/session, /v1/tenants/..., /v1/people, /v1/platform/..., /v1/audit: api/session.py, manage*.py, audit.py
GET  /v1/tenants/{tenant}/lookup, /messages[/{send_id}]; /v1/fleet: api/lookup.py, messages.py, fleet.py
GET  /v1/tenants/{tenant}/triggers-stats: api/trigger_stats.py
POST /v1/consent[/batch], GET /v1/consent: api/consent.py; POST /v1/subjects/export: api/subjects.py
GET  /v1/tenants/{tenant}/experiments/{id}/results, POST .../looks: api/experiments.py
GET  /healthz
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from contextlib import asynccontextmanager
from typing import Any

import orjson
from confluent_kafka import KafkaException
from redis.exceptions import RedisError
from fastapi import Depends, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from api.access import Access, access_dependency, rule
from api.accounting import accounting_router
from api.analytics import analytics_router
from api.audit import audit_router
from api.body import parse_body, read_body as _read_body
from api.errors import ApiError, install_error_handlers
from api.activity import install_activity_routes
from api.consent import install_consent_routes
from api.subjects import install_subject_routes
from api.events import install_event_routes
from api.fleet import fleet_router
from api.lead_model import LeadReadModel
from api.lookup import lookup_router
from api.manage import management_router
from api.manage_keys import keys_router
from api.manage_people import people_router
from api.messages import messages_router
from api.openapi_docs import install_openapi, json_body
from api.scopes import accounting_scope_dependency, analytics_scope_dependency
from api.spa import install_dashboard
from api.session import session_router
from api.experiments import experiments_router
from api.trigger_stats import trigger_stats_router
from api.crm_webhooks import install_crm_webhooks
from api.webhooks import install_webhooks
from domain.identity import derived_event_id, new_event_id
from domain.lead_input import BatchIn, LeadIn
from domain.submission import SubmissionError, build_submitted
from services.privacy.keys import KeysNotRestored
from streams import metrics
from streams.producer import ProduceError
from streams.topics import LEADS_HELD, SUBMITTED

Deps = Any  # runtime.deps.Deps: built by the composition root, passed in

SOURCE = "api"

log = logging.getLogger("leadstream.api")


class UnsubscribeIn(BaseModel):
    """Why the lead is unsubscribed (optional)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field("tenant_request", min_length=1, max_length=100)


class LeadTaken(BaseModel):
    lead_id: str
    event_id: str
    channel: str


class BatchTaken(BaseModel):
    count: int
    leads: list[LeadTaken]


class Unsubscribing(BaseModel):
    lead_id: str
    event_id: str


class Health(BaseModel):
    status: str
    tenants: int
    config_version: int


def build_app(deps: Deps) -> FastAPI:
    """The API over a process's dependencies (runtime.api builds them from the settings)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(_connect_producer, deps)
        yield
        if deps._producer is not None:
            # what is still queued was never acknowledged to a client (they got a 503)
            await asyncio.to_thread(deps._producer.close, 3.0)

    access = access_dependency(deps)
    # No OpenTelemetry from FastAPI (our metrics are Prometheus): its per-request check of the
    # providers read os.environ each time, 11 % of the API's CPU in py-spy at 500 events/s.
    app = FastAPI(title="leadstream", version="1", lifespan=lifespan, dependencies=[Depends(access)],
                  telemetry={"tracing": False, "metrics": False, "logs": False},
                  description="Lead ingress, the management API (tenants, lists and rules, partners, keys, "
                              "people and roles), sign-in, the audit log, analytics and accounting. Every "
                              "operation names its access rule in x-access.")
    app.state.deps = deps
    install_error_handlers(app)
    app.add_middleware(CountRequests)
    install_webhooks(app, deps)
    install_crm_webhooks(app, deps)
    install_lead_routes(app, deps, access)
    install_event_routes(app, deps, access)
    install_activity_routes(app, deps, access)
    install_consent_routes(app, deps, access)
    install_subject_routes(app, deps, access)
    for router in (session_router(deps, access), management_router(deps, access), keys_router(deps, access),
                   people_router(deps, access), audit_router(deps, access),
                   analytics_router(deps, analytics_scope_dependency(deps, access)),
                   accounting_router(deps, accounting_scope_dependency(access)),
                   lookup_router(deps), messages_router(deps), fleet_router(deps, access),
                   trigger_stats_router(deps), experiments_router(deps)):
        app.include_router(router)
    install_openapi(app, [LeadIn, BatchIn, UnsubscribeIn])
    install_dashboard(app)

    @app.get("/healthz", openapi_extra=rule("public"), response_model=Health)
    async def healthz() -> dict:
        """Up, with the configuration loaded (503 until it is)."""
        book = deps.tenants
        return {"status": "ok", "tenants": len(book.tenants), "config_version": book.version}

    @app.get("/metrics", include_in_schema=False, openapi_extra=rule("public"))
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def install_lead_routes(app: FastAPI, deps: Deps, access) -> None:
    """The lead routes: validate, produce, answer (never a projection written on the way)."""

    @app.post("/v1/leads", status_code=202, responses=_RESPONSES, tags=["leads"], response_model=LeadTaken,
              openapi_extra={**rule("leads.submit", "request"), **json_body(LeadIn)})
    async def submit_lead(request: Request, who: Access = Depends(access)) -> dict:
        """Submit one lead (email and/or phone, name, location, interests, list, partner...)."""
        body = await _read_body(request, deps.settings)
        lead = _parse(LeadIn, body)
        subs = _submitted(deps, [lead], who, request, "")
        subs, topic = await _sealed(deps, subs, await _refuse_erased(deps, subs, ""))
        await _produce(deps, subs, topic=topic)
        s = subs[0]
        return {"lead_id": s["lead_id"], "event_id": s["event_id"], "channel": s["channel"]}

    @app.post("/v1/leads/batch", status_code=202, responses=_RESPONSES, tags=["leads"], response_model=BatchTaken,
              openapi_extra={**rule("leads.submit", "request"), **json_body(BatchIn)})
    async def submit_batch(request: Request, who: Access = Depends(access)) -> Response:
        """Submit up to 1,000 leads at once: all are taken, or none (with the reason)."""
        body = await _read_body(request, deps.settings)
        batch = _parse(BatchIn, body)
        if len(batch.leads) > deps.settings.max_batch_leads:
            raise ApiError(413, "batch_too_large",
                           f"{len(batch.leads)} leads in one batch; at most "
                           f"{deps.settings.max_batch_leads}: split it")
        subs = _submitted(deps, batch.leads, who, request, "leads.")
        subs, topic = await _sealed(deps, subs, await _refuse_erased(deps, subs, "leads."))
        await _produce(deps, subs, topic=topic)
        # written here, not checked again against BatchTaken (that cost 4 % of the API's CPU)
        return Response(orjson.dumps({"count": len(subs), "leads": [
            {"lead_id": s["lead_id"], "event_id": s["event_id"], "channel": s["channel"]} for s in subs]}),
            status_code=202, media_type="application/json")

    @app.post("/v1/leads/{lead_id}/unsubscribe", status_code=202, responses=_RESPONSES, tags=["leads"],
              response_model=Unsubscribing,
              openapi_extra={**rule("leads.unsubscribe", "request"),
                             **json_body(UnsubscribeIn, "optional: {reason}, default tenant_request")})
    async def unsubscribe(lead_id: str, request: Request, who: Access = Depends(access)) -> dict:
        """Unsubscribe one of the tenant's leads: it is never messaged or re-subscribed again."""
        tenant = deps.tenants.tenants[who.tenant]
        reason = _parse(UnsubscribeIn, await _read_body(request, deps.settings) or b"{}").reason
        if await deps.leads.get(tenant.id, lead_id) is None:
            raise ApiError(404, "not_found", f"no lead {lead_id} for this tenant")
        now_ms = int(time.time() * 1000)
        ev = {"event_id": new_event_id(now_ms, os.urandom(10)), "tenant": tenant.id,
              "occurred_at": now_ms, "schema": "lead.unsubscribe_requested@1", "causation_id": None,
              "source": SOURCE, "lead_id": lead_id, "reason": reason, "requested_by": who.actor}
        await _produce(deps, [ev], "lead.unsubscribe_requested")
        return {"lead_id": lead_id, "event_id": ev["event_id"]}

    @app.get("/v1/leads/{lead_id}", responses=_RESPONSES, tags=["leads"], response_model=LeadReadModel,
             openapi_extra=rule("leads.read", "request"))
    async def get_lead(lead_id: str, tenant: str | None = None, who: Access = Depends(access)) -> dict:
        """A lead's read model: status, reasons, lists, partners, attribution."""
        state = await deps.leads.get(who.tenant, lead_id)
        if state is None:
            raise ApiError(404, "not_found", f"no lead {lead_id} for this tenant")
        doc = state.to_dict()
        doc.pop("applied", None)
        return doc


_RESPONSES = {400: {"description": "an admin key names the tenant: X-Tenant"},
              401: {"description": "missing or invalid API key"},
              403: {"description": "key not allowed for this tenant"},
              413: {"description": "body or batch too large"},
              422: {"description": "invalid lead, with the field and the problem; do_not_contact: an erased person"},
              503: {"description": "Kafka did not take the lead: nothing stored, retry"}}


def _parse(model, body: bytes):
    return parse_body(model, body, "lead")


def _submitted(deps: Deps, leads: list[LeadIn], who: Access, request: Request, path: str) -> list[dict]:
    tenant = deps.tenants.tenants[who.tenant]
    if who.partner is not None:  # a partner's key speaks for its own source only
        for i, lead in enumerate(leads):
            if lead.partner != who.partner:
                raise ApiError(403, "forbidden", f"this key submits leads of partner {who.partner!r}, "
                                                 f"not {lead.partner!r}",
                               [{"field": f"{path}{i}.partner" if path else "partner",
                                 "problem": f"must be {who.partner!r}"}])
    now_ms = int(time.time() * 1000)
    idem = request.headers.get("idempotency-key")
    subs = []
    for i, lead in enumerate(leads):
        # With an Idempotency-Key a retried request reuses its event ids: the intake skips them.
        event_id = (derived_event_id(f"{tenant.id}/{idem}/{i}", "lead.submitted", 0)
                    if idem else new_event_id(now_ms, os.urandom(10)))
        try:
            subs.append(build_submitted(lead, tenant, event_id, now_ms, SOURCE, ids=deps.lead_ids))
        except SubmissionError as exc:
            field = f"{path}{i}.{exc.field}" if path else exc.field
            raise ApiError(422, "validation_failed", "the lead cannot be taken",
                           [{"field": field, "problem": str(exc)}]) from exc
    return subs


async def _refuse_erased(deps: Deps, subs: list[dict], path: str) -> bool:
    """422 when a lead is an erased person's (do-not-contact): nothing of the request is written.
    Taking leads needs Kafka only: with Redis away the list is not asked here (counted), and the
    intake, which waits for Redis, refuses them (a lead.rejected without the address). Whether
    Redis answered."""
    try:
        hits = await deps.do_not_contact().erased([(s["tenant"], s["lead_id"]) for s in subs])
    except RedisError as exc:
        metrics.LEADS_UNCHECKED.labels(subs[0]["tenant"]).inc(len(subs))
        log.warning("the do-not-contact list was not asked (Redis: %s); the intake refuses erased people", exc)
        return False
    if any(hits):
        metrics.LEADS_REFUSED.labels(subs[0]["tenant"], "api").inc(sum(hits))
        raise ApiError(422, "do_not_contact", "a person in this request was erased at their request and "
                                              "must not be taken again; nothing was accepted",
                       [{"field": f"{path}{i}" if path else "lead", "problem": "on the do-not-contact list"}
                        for i, hit in enumerate(hits) if hit])
    return True


async def _sealed(deps: Deps, subs: list[dict], redis_answers: bool) -> tuple[list[dict], str]:
    """The submissions with their personal fields sealed by each lead's data key (made, and
    durable on privacy.keys, first), and the topic they go to: leads.submitted. Taking leads
    needs Kafka only: with Redis away, or wiped and not rebuilt yet, they are held clear on
    leads.held and counted (leadstream_api_leads_held_total); the intake_json agent, which waits
    for Redis, seals them onto leads.submitted, and what it has read of leads.held is deleted."""
    if redis_answers:
        try:
            return (await asyncio.wait_for(deps.sealer().seal([("lead.submitted", s) for s in subs],
                                                              int(time.time() * 1000)),
                                           deps.settings.produce_timeout_s), SUBMITTED)
        except (RedisError, KeysNotRestored, ProduceError, asyncio.TimeoutError) as exc:
            log.warning("%d lead(s) held on leads.held until sealed: no data key (%r)", len(subs), exc)
    metrics.LEADS_HELD.labels(subs[0]["tenant"]).inc(len(subs))
    return subs, LEADS_HELD


def _connect_producer(deps: Deps, timeout: float = 10.0) -> None:
    """The producer made and connected before the API listens (uvicorn binds its socket after
    the lifespan's start-up). Made lazily, a new process's first leads paid for connecting and,
    just after a broker restart, for the producer id within the 5 s a request waits: the short
    chaos drill once saw a 503 so from an API started again 20 s after Kafka came back. Kafka
    not answering: the API starts anyway and answers 503 until it does."""
    try:
        deps.producer.connect(timeout)
    except KafkaException as exc:
        log.warning("Kafka did not answer within %.0fs at start-up: %s (leads get 503 until it does)", timeout, exc)


async def _produce(deps: Deps, subs: list[dict], schema: str = "lead.submitted", topic: str = SUBMITTED) -> None:
    topic = deps.topic(topic)
    enc = deps.codec.encode
    records = [(topic, s["lead_id"].encode(), enc(schema, s), None) for s in subs]
    try:
        await deps.producer.send_many(records, timeout=deps.settings.produce_timeout_s)
    except (ProduceError, asyncio.TimeoutError) as exc:
        raise ApiError(503, "unavailable", f"the lead store (Kafka) did not take the leads: {exc}; "
                                           f"nothing was accepted, retry later",
                       headers={"Retry-After": "5"}) from exc
    if schema == "lead.submitted" and subs:
        metrics.API_LEADS.labels(subs[0]["tenant"]).inc(len(subs))


class CountRequests:
    """Counts answered requests by route template and status (pure ASGI: no per-request task)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = [500]

        async def send_counted(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)
        try:
            await self.app(scope, receive, send_counted)
        finally:
            route = scope.get("route")
            metrics.API_REQUESTS.labels(getattr(route, "path", "unmatched"), str(status[0])).inc()
