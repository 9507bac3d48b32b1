"""Finding one lead by email or phone: GET /v1/tenants/{tenant}/lookup?email=… | ?phone=…

The answer is the lead's read model (Redis), its subscription per list, and its timeline:
every event ClickHouse holds about it, newest first (domain/timeline.py words them).
"""
from __future__ import annotations

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.access import rule
from api.clickhouse_reads import read, reads_pool
from api.errors import ApiError
from api.lead_model import LeadReadModel
from domain.lead_lookup import LookupProblem, contact_of, subscription_of
from domain.sealing import has_sealed, open_readable
from domain.timeline import EventRow, newest_first, timeline_entry
from projections.event_history import lead_events
from services.privacy.keys import KeysNotRestored

TIMELINE_LIMIT = 500


class TimelineEntry(BaseModel):
    """One event about the lead."""

    event_id: str
    event_type: str = Field(description="e.g. lead.submitted, lead.accepted, send.dispatched, engagement.clicked")
    occurred_at: str = Field(description="ISO 8601, UTC")
    channel: str | None
    list: str | None
    status: str | None
    outcome: str | None
    reasons: list[str]
    provider: str | None = Field(description="the email or SMS provider, for send and webhook events")
    send_id: str | None = Field(description="the message it belongs to (GET /v1/tenants/{tenant}/messages/{send_id})")
    machine: bool | None = Field(description="opens and clicks: true for a machine's (bot, scanner, privacy "
                                             "proxy), false for the person's; null for other events")
    summary: str = Field(description="what happened, in a few words")


class ListSubscription(BaseModel):
    list: str
    subscribed: bool = Field(description="the lead is accepted and on the list (a pause does not end it)")
    left: bool = Field(description="left on the preference page, or no longer on the list")
    paused_until: str | None = Field(description="a pause chosen on the preference page, ISO 8601 UTC")
    cadence: str | None = Field(description="the cadence the person chose; null: the list's own")


class Consent(BaseModel):
    at: str | None
    text: str | None = Field(description="the consent wording the lead agreed to")


class Subscription(BaseModel):
    """Whether the lead may be messaged on its channel, and per list."""

    channel: str
    status: str | None = Field(description="the read model's status: accepted | rejected | unsubscribed | cold | "
                                           "suppressed; null without a read model")
    subscribed: bool
    unsubscribed_at: str | None = Field(description="the last lead.unsubscribed, ISO 8601 UTC")
    unsubscribe_reason: str | None
    consent: Consent | None = Field(description="the latest consent given with a submission")
    lists: list[ListSubscription]


class LookupOut(BaseModel):
    lead_id: str
    tenant: str
    channel: str = Field(description="email or sms: a lead is one address on one channel")
    address: str = Field(description="as normalised for the lead id (trimmed, lower-cased email; E.164 phone)")
    state: LeadReadModel | None = Field(description="the read model GET /v1/leads/{lead_id} returns; null when "
                                                    "only events are known (e.g. product events of an unknown person)")
    lists: list[str]
    subscription: Subscription
    timeline: list[TimelineEntry] = Field(description=f"newest first, at most {TIMELINE_LIMIT}")
    timeline_truncated: bool = Field(description=f"true when the lead has more than {TIMELINE_LIMIT} events")


_ERRORS = {404: {"description": "no lead with this address in the tenant"},
           422: {"description": "neither or both of email and phone, or a malformed one"},
           503: {"description": "ClickHouse or Redis is not answering; retry"}}


_EMAIL = Query(None, description="the lead's email (give this or phone)")
_PHONE = Query(None, description="the lead's phone, international or as dialled in the tenant's default region")


def lookup_router(deps) -> APIRouter:
    """The lookup route; the app-wide access dependency enforces leads.read on the path's tenant."""
    pool = reads_pool(deps)
    router = APIRouter(tags=["leads"])

    @router.get("/v1/tenants/{tenant}/lookup", response_model=LookupOut, responses=_ERRORS,
                openapi_extra=rule("leads.read", "path"))
    async def lookup_lead(tenant: str, email: str | None = _EMAIL, phone: str | None = _PHONE) -> dict:
        """The lead with this email or phone: its read model, subscription per list and its
        timeline of every event (submissions, decisions, sends and their outcomes, opens and
        clicks marked person or machine, replies, unsubscribes, triggers, product events)."""
        brand = deps.tenants.tenants[tenant]
        try:
            contact = contact_of(tenant, email, phone, brand.validation.default_region)
        except LookupProblem as exc:
            raise ApiError(422, "validation_failed", str(exc), [{"field": exc.field, "problem": str(exc)}]) from None
        lead = contact.lead_id(deps.lead_ids)
        state = await deps.leads.get(tenant, lead)
        rows = await read(pool, lead_events, deps.settings.clickhouse_database, tenant, lead, TIMELINE_LIMIT + 1)
        if state is None and not rows:
            raise ApiError(404, "not_found", f"no {contact.channel} lead {contact.address!r} in tenant {tenant!r}")
        rows = await opened_rows(deps, tenant, lead, rows)
        doc = state.to_dict() if state else None
        if doc:
            doc.pop("applied", None)
        shown = newest_first(rows)[:TIMELINE_LIMIT]
        return {"lead_id": lead, "tenant": tenant, "channel": contact.channel,
                "address": contact.address, "state": doc, "lists": list(doc["lists"]) if doc else [],
                "subscription": subscription_of(doc, contact.channel, rows),
                "timeline": [timeline_entry(r) for r in shown], "timeline_truncated": len(rows) > TIMELINE_LIMIT}

    return router


async def opened_rows(deps, tenant: str, lead: str, rows: list[EventRow]) -> list[EventRow]:
    """The rows with their sealed fields opened by the lead's data key (None once erased; left
    sealed while a wiped Redis waits for the replay to restore the keys)."""
    if not any(has_sealed(r.event_type, r.payload) for r in rows):
        return rows
    try:
        dek = (await deps.data_keys().existing(tenant, [lead])).get(lead)
    except KeysNotRestored:
        return rows
    return [r._replace(payload=open_readable(r.event_type, r.payload, dek)[0]) for r in rows]
