"""Turn a partner's lead into the `lead.submitted` event for the list's channel."""
from __future__ import annotations

from domain.identity import LeadIds, identity_email, identity_phone
from domain.lead_input import LeadIn
from domain.tenants import Tenant


class SubmissionError(ValueError):
    """The lead cannot be submitted to this tenant as it is (the message says why)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def channel_for(lead: LeadIn, tenant: Tenant, strict: bool) -> tuple[str, str]:
    """(channel, raw address) for the lead's list. strict: unknown lists are an error;
    otherwise (queue path) the intake decision rejects them with a reason code."""
    lst = tenant.lists.get(lead.list)
    if lst is None:
        if strict:
            known = ", ".join(sorted(tenant.lists))
            raise SubmissionError("list", f"unknown list {lead.list!r} for tenant {tenant.id}; "
                                          f"lists: {known}")
        return ("email", lead.email) if lead.email else ("sms", lead.phone or "")
    if lst.channel == "email":
        if not lead.email:
            raise SubmissionError("email", f"list {lead.list!r} is an email list: an email is required")
        return "email", lead.email
    if not lead.phone:
        raise SubmissionError("phone", f"list {lead.list!r} is an SMS list: a phone is required")
    return "sms", lead.phone


def build_submitted(lead: LeadIn, tenant: Tenant, event_id: str, now_ms: int, source: str,
                    strict: bool = True, *, ids: LeadIds) -> dict:
    """The `lead.submitted` event for this lead, keyed by its lead_id."""
    channel, raw = channel_for(lead, tenant, strict)
    identity = identity_email(raw) if channel == "email" else identity_phone(
        raw, tenant.validation.default_region)
    loc = None
    if lead.location:
        g = lead.location
        loc = {"zip": g.zip, "city": g.city, "state": g.state, "country": g.country, "lat": g.lat, "lon": g.lon}
    consent = None
    if lead.consent:
        consent = {"at": int(lead.consent.at.timestamp() * 1000), "ip": lead.consent.ip,
                   "text": lead.consent.text}
    return {
        "event_id": event_id, "tenant": tenant.id, "occurred_at": now_ms,
        "schema": "lead.submitted@1", "causation_id": None, "source": source,
        "lead_id": ids.of(tenant.id, channel, identity), "channel": channel,
        "address": raw.strip(), "email": lead.email, "phone": lead.phone,
        "first_name": lead.first_name, "last_name": lead.last_name, "location": loc,
        "interests": {"keywords": lead.interests.keywords, "categories": lead.interests.categories},
        "partner": lead.partner, "list": lead.list, "attribution": dict(lead.attribution),
        "consent": consent,
    }
