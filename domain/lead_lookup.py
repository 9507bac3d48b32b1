"""Finding a lead by its email or phone, and what its subscription looks like. Pure.

The address is normalised exactly as the intake does it (domain/identity.py: an email trimmed
and lower-cased, a phone in E.164 read in the tenant's default region), so the lead id found
is the one its submissions were keyed by.
"""
from __future__ import annotations

from dataclasses import dataclass

import phonenumbers

from domain.identity import LeadIds, identity_email, identity_phone
from domain.product_events import utc_iso
from domain.timeline import EventRow

MAX_ADDRESS = 254  # RFC 5321's longest address: anything longer was never a lead


class LookupProblem(ValueError):
    """The lookup's query cannot name a lead: which parameter, and why."""

    def __init__(self, field: str, problem: str):
        super().__init__(problem)
        self.field = field


@dataclass(frozen=True)
class Contact:
    """A lead's channel and normalised address, and the lead id they make in a tenant."""

    tenant: str
    channel: str  # email | sms
    address: str

    def lead_id(self, ids: LeadIds) -> str:
        return ids.of(self.tenant, self.channel, self.address)


def contact_of(tenant: str, email: str | None, phone: str | None, default_region: str | None) -> Contact:
    """The contact point the query names: exactly one of email or phone, well formed."""
    given = {name: value for name, value in (("email", email), ("phone", phone)) if value is not None}
    if len(given) != 1:
        which = "both were given" if given else "neither was given"
        raise LookupProblem("email" if given else "(query)", f"give exactly one of ?email= or ?phone=: {which}")
    if email is not None:
        return Contact(tenant, "email", _email(email))
    return Contact(tenant, "sms", _phone(phone or "", default_region))


def _email(raw: str) -> str:
    address = identity_email(raw)
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or len(address) > MAX_ADDRESS or any(c.isspace() for c in address):
        raise LookupProblem("email", f"{raw!r} is not an email address (name@domain)")
    return address


def _phone(raw: str, default_region: str | None) -> str:
    try:
        phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise LookupProblem("phone", f"{raw!r} is not a phone number ({exc}); give it in international "
                                     f"form (+15551234567) or as dialled in {default_region or 'the tenant'}")
    return identity_phone(raw, default_region or "")


def subscription_of(state: dict | None, channel: str, events: list[EventRow]) -> dict:
    """Whether the lead may be messaged, per list, with the last unsubscribe and the consent
    the lead gave (from the read model, and the events for what it does not keep)."""
    status = state["status"] if state else None
    unsub = _latest(events, "lead.unsubscribed")
    consent = next((e.payload.get("consent") for e in sorted(events, key=lambda e: -e.at_ms)
                    if e.event_type in ("lead.submitted", "lead.accepted") and e.payload.get("consent")), None)
    return {"channel": channel, "status": status, "subscribed": status == "accepted",
            "unsubscribed_at": utc_iso(unsub.at_ms) if unsub else None,
            "unsubscribe_reason": (unsub.payload.get("reason") or None) if unsub else None,
            "consent": _consent(consent), "lists": _lists(state)}


def _latest(events: list[EventRow], event_type: str) -> EventRow | None:
    found = [e for e in events if e.event_type == event_type]
    return max(found, key=lambda e: e.at_ms) if found else None


def _consent(consent: dict | None) -> dict | None:
    """The consent's time and wording (its IP address stays in the event)."""
    if not consent:
        return None
    at = consent.get("at")
    if isinstance(at, str):
        at = at.replace("+00:00", "Z")
    elif at:
        at = utc_iso(int(at))
    return {"at": at or None, "text": consent.get("text")}


def _lists(state: dict | None) -> list[dict]:
    """Per list the lead is on or has left: subscribed or not, paused until, cadence."""
    if not state:
        return []
    prefs = state.get("preferences") or {}
    names = list(state.get("lists") or []) + sorted(n for n in prefs if n not in (state.get("lists") or []))
    out = []
    for name in names:
        pref = prefs.get(name) or {}
        left = bool(pref.get("left")) or name not in (state.get("lists") or [])
        paused = pref.get("paused_until_ms") or 0
        out.append({"list": name, "subscribed": state["status"] == "accepted" and not left, "left": left,
                    "paused_until": utc_iso(paused) if paused else None, "cadence": pref.get("cadence") or None})
    return out
