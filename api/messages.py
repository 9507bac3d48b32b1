"""The message log: GET /v1/tenants/{tenant}/messages (one row per send, its furthest status,
filtered, newest first) and GET /v1/tenants/{tenant}/messages/{send_id} (the send's events and
the message as the person got it, composed again by services/sending/recompose.py).
"""
from __future__ import annotations

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from api.access import rule
from api.clickhouse_reads import read, reads_pool
from api.errors import ApiError
from api.lookup import TimelineEntry, opened_rows
from domain.send_log import (COMPOSED, DEFAULT_LIMIT, MAX_LIMIT, SEND_STATUSES, LogProblem, LogQuery, latest_payload,
                             log_entry, next_cursor, parse_before, send_row)
from domain.timeline import newest_first, timeline_entry
from projections.event_history import send_events
from projections.redis_jobs import JobStore
from projections.redis_segments import SegmentStore
from projections.send_log import send_log
from projections.templates import TemplateStore
from services.sending.recompose import RecomposePorts, Recomposed, recompose


class MessageRow(BaseModel):
    """One send and how far it got."""

    send_id: str
    status: str = Field(description=f"its furthest event: {', '.join(SEND_STATUSES)}")
    channel: str
    provider: str | None = Field(description="the provider that took (or refused) it")
    list: str
    template: str = Field(description="the template it is composed with")
    kind: str | None = Field(description="daily, welcome, triggered or more_jobs")
    lead_id: str
    to: str | None = Field(description="the lead's address (null when its read model is gone)")
    subject: str | None = Field(description="not kept with the events: GET the send for its rendered message")
    reason: str | None = Field(description="why it is in its status (skip, deferral, failure or bounce reason)")
    reasons: list[str] = Field(description="every reason its events gave, oldest first")
    requested_at: str = Field(description="its first event (normally the request), ISO 8601 UTC")
    last_at: str = Field(description="its latest event, ISO 8601 UTC")


class Cursor(BaseModel):
    before: str
    before_send: str


class MessagesOut(BaseModel):
    messages: list[MessageRow]
    next: Cursor | None = Field(description="pass as ?before=&before_send= for the next page; null: the last page")


class MessageContent(BaseModel):
    """The message composed again: email {subject, html, text, from, to}, SMS {text, from, to}."""

    model_config = ConfigDict(populate_by_name=True)
    channel: str
    subject: str | None
    html: str | None
    text: str | None
    from_: str | None = Field(alias="from")
    to: str | None


class Rendering(BaseModel):
    composed_again: bool = Field(description="true: `message` was composed now from what the events recorded")
    template_version_sent: str | None
    template_version_shown: str | None
    notes: list[str] = Field(description="where the message shown may differ from the one sent, and why")


class SendOut(MessageRow):
    events: list[TimelineEntry] = Field(description="every event naming the send, newest first")
    message: MessageContent | None = Field(description="null for a send never composed (requested, deferred, "
                                                       "skipped, failed) or one that cannot be composed again")
    rendering: Rendering


_ERRORS = {404: {"description": "no such send in this tenant"},
           422: {"description": "a limit out of range or a malformed cursor"},
           503: {"description": "ClickHouse or Redis is not answering; retry"}}


def messages_router(deps) -> APIRouter:
    """The two message routes; the app-wide access dependency enforces leads.read on the path's tenant."""
    pool = reads_pool(deps)
    db = deps.settings.clickhouse_database
    ports = RecomposePorts(book=lambda: deps.tenants, leads=deps.leads, jobs=JobStore(deps.redis),
                           templates=TemplateStore(), segments=SegmentStore(deps.redis),
                           tracking_base_url=deps.settings.tracking_base_url)
    router = APIRouter(tags=["messages"])

    @router.get("/v1/tenants/{tenant}/messages", response_model=MessagesOut, responses=_ERRORS,
                openapi_extra=rule("leads.read", "path"))
    async def list_messages(
        tenant: str,
        status: str | None = Query(None, description=f"one of {', '.join(SEND_STATUSES)}"),
        provider: str | None = Query(None, description="e.g. smtp, sendgrid, twilio"),
        reason: str | None = Query(None, description="a reason any of the send's events gave, e.g. no_new_jobs"),
        channel: str | None = Query(None, description="email or sms"),
        list_: str | None = Query(None, alias="list", description="the list's id"),
        limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"rows per page, 1..{MAX_LIMIT}"),
        before: str | None = Query(None, description="only sends requested before this ISO 8601 time"),
        before_send: str | None = Query(None, description="with `before`: also those requested at that very "
                                                          "instant whose send id sorts before this one"),
    ) -> dict:
        """The tenant's sends, newest first: one row per send id with its furthest status,
        channel, provider, list, template, lead and address, reasons and times. Filters match
        exactly; a value nothing has gives an empty page."""
        try:
            before_ms = parse_before(before)
        except LogProblem as exc:
            raise ApiError(422, "validation_failed", str(exc), [{"field": exc.field, "problem": str(exc)}]) from None
        q = LogQuery(tenant, status, provider, reason, channel, list_, limit, before_ms, before_send)
        rows = await read(pool, send_log, db, q)
        addresses = await _addresses(deps, tenant, [r.lead_id for r in rows])
        brand = deps.tenants.tenants[tenant]
        return {"messages": [log_entry(r, brand.template_of(r.list), addresses.get(r.lead_id)) for r in rows],
                "next": next_cursor(rows, limit)}

    @router.get("/v1/tenants/{tenant}/messages/{send_id}", response_model=SendOut, responses=_ERRORS,
                openapi_extra=rule("leads.read", "path"))
    async def get_message(tenant: str, send_id: str) -> dict:
        """One send: its status and every event naming it (request, deferrals, dispatch,
        delivery or bounce, opens and clicks marked person or machine), and the message as the
        person got it, composed again from what those events recorded."""
        events = await read(pool, send_events, db, tenant, send_id)
        if not any(e.event_type.startswith("send.") for e in events):
            raise ApiError(404, "not_found", f"no send {send_id!r} in tenant {tenant!r}")
        row = send_row(send_id, events)
        events = await opened_rows(deps, tenant, row.lead_id, events)  # a triggered message's context is sealed
        addresses = await _addresses(deps, tenant, [row.lead_id])
        entry = log_entry(row, deps.tenants.tenants[tenant].template_of(row.list), addresses.get(row.lead_id))
        made = await _recomposed(ports, row.status, events)
        return {**entry, "subject": made.subject if made.composed else None,
                "events": [timeline_entry(e) for e in newest_first(events)],
                "message": _content(made), "rendering": _rendering(made, events)}

    return router


async def _addresses(deps, tenant: str, lead_ids: list[str]) -> dict[str, str]:
    """Each lead's address from its read model (one round trip)."""
    wanted = sorted(set(filter(None, lead_ids)))
    states = await deps.leads.get_many([(tenant, lid) for lid in wanted])
    return {lid: s.address for lid, s in zip(wanted, states) if s is not None}


async def _recomposed(ports: RecomposePorts, status: str, events: list) -> Recomposed:
    request, dispatched = latest_payload(events, "send.requested"), latest_payload(events, "send.dispatched")
    channel = (request or dispatched or {}).get("channel", "")
    if status not in COMPOSED or request is None or dispatched is None:
        why = (f"never composed: the send is {status}" if status not in COMPOSED
               else "cannot compose it again: its " + ("request" if request is None else "dispatch") + " is not stored")
        return Recomposed(channel, notes=[why])
    return await recompose(ports, request, dispatched)


def _content(made: Recomposed) -> dict | None:
    if not made.composed:
        return None
    return {"channel": made.channel, "subject": made.subject, "html": made.html, "text": made.text,
            "from": made.sender, "to": made.to}


def _rendering(made: Recomposed, events: list) -> dict:
    dispatched = latest_payload(events, "send.dispatched") or {}
    return {"composed_again": made.composed, "template_version_sent": dispatched.get("template_version"),
            "template_version_shown": made.template_version, "notes": made.notes}
