"""A lead's history as people read it: one entry per event, with who did it (a person or a
machine), the send it belongs to and a short sentence, newest first.

Pure: the caller reads the events (projections/event_history.py) and passes them in. Events of
one batch share a millisecond (a submission, its decision and the welcome it asks for), so
ties are broken by causation: an event comes after the event that caused it.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from domain.product_events import utc_iso

ENGAGEMENT_HITS = frozenset({"engagement.opened", "engagement.clicked"})  # a person's or a machine's


class EventRow(NamedTuple):
    """One stored event, as the history queries return it."""

    event_id: str
    event_type: str
    at_ms: int
    channel: str
    list: str
    status: str
    outcome: str
    reasons: list[str]
    causation_id: str
    payload: dict


def machine_of(row: EventRow) -> bool | None:
    """True for an open or click a machine made (bot, scanner, privacy proxy), False for a
    person's, None for an event that is not such a hit."""
    if row.event_type not in ENGAGEMENT_HITS:
        return None
    return bool(row.payload.get("is_bot"))


def _p(row: EventRow, key: str) -> str:
    value = row.payload.get(key)
    return "" if value is None else str(value)


def _reasons(row: EventRow) -> str:
    return ", ".join(row.reasons) or _p(row, "reason") or "no reason given"


def _hit(row: EventRow, verb: str) -> str:
    who = f"a machine ({_p(row, 'reason') or _p(row, 'actor') or 'bot'})" if machine_of(row) else "the person"
    what = {"job": f" job #{_p(row, 'position')}", "creative": " the ad", "honeypot": " the hidden trap link",
            "sms": " the job link"}.get(_p(row, "slot"), "")
    return f"{verb}{what} by {who}"


_SUMMARIES: dict[str, Callable[[EventRow], str]] = {
    "lead.submitted": lambda r: f"Submitted to {r.list or 'no list'} by {_p(r, 'partner') or _p(r, 'source')}",
    "lead.resubmitted": lambda r: f"Submitted again to {r.list}: {r.outcome or 'taken'}",
    "lead.accepted": lambda r: f"Accepted onto {r.list}",
    "lead.rejected": lambda r: f"Rejected: {_reasons(r)}",
    "lead.unsubscribe_requested": lambda r: f"Unsubscribe asked ({_p(r, 'reason')}) by {_p(r, 'requested_by')}",
    "lead.unsubscribed": lambda r: f"Unsubscribed: {_p(r, 'reason') or 'no reason given'}",
    "lead.resubscribe_requested": lambda r: f"Resubscribe asked ({_p(r, 'reason')})",
    "lead.resubscribed": lambda r: f"Subscribed again: {_p(r, 'reason')}",
    "lead.preferences_requested": lambda r: f"Preferences changed for {r.list}",
    "lead.preferences_changed": lambda r: f"Preference for {r.list}: {_p(r, 'change')}",
    "send.requested": lambda r: f"{_p(r, 'kind').replace('_', ' ').capitalize()} {r.channel} requested for {r.list}",
    "send.dispatched": lambda r: f"{r.channel.capitalize()} handed to {_p(r, 'provider')}",
    "send.delivered": lambda r: f"Delivered by {_p(r, 'provider')}",
    "send.bounced": lambda r: f"Bounced ({_p(r, 'bounce_type')}): {_p(r, 'reason')}",
    "send.failed": lambda r: f"Failed at {_p(r, 'provider') or 'composing'}: {_p(r, 'reason')}",
    "send.deferred": lambda r: f"Deferred: {_p(r, 'reason')}",
    "send.skipped": lambda r: f"Not sent: {_p(r, 'reason')}",
    "engagement.opened": lambda r: _hit(r, "Opened"),
    "engagement.clicked": lambda r: _hit(r, "Clicked"),
    "engagement.replied": lambda r: f"Replied {_p(r, 'keyword') or 'by text'} ({_p(r, 'intent') or 'other'})",
    "engagement.complained": lambda r: f"Marked as spam ({_p(r, 'provider')})",
    "engagement.unsubscribed": lambda r: f"Unsubscribed from the message ({_p(r, 'how') or 'link'})",
    "engagement.reactivated": lambda r: "Active again after engaging",
    "product.tracked": lambda r: f"Did {_p(r, 'name')} on the site",
    "trigger.scheduled": lambda r: f"Trigger {_p(r, 'trigger')} scheduled",
    "trigger.fired": lambda r: f"Trigger {_p(r, 'trigger')} fired: {_p(r, 'template')}",
    "trigger.deferred": lambda r: f"Trigger {_p(r, 'trigger')} waits: {_p(r, 'reason')}",
    "trigger.suppressed": lambda r: f"Trigger {_p(r, 'trigger')} held back: {_p(r, 'reason')}",
    "segment.entered": lambda r: f"Entered segment {_p(r, 'segment')}",
    "segment.exited": lambda r: f"Left segment {_p(r, 'segment')}",
}


def summary(row: EventRow) -> str:
    """A short sentence saying what the event means for the lead."""
    say = _SUMMARIES.get(row.event_type)
    return say(row) if say else row.event_type


def timeline_entry(row: EventRow) -> dict:
    """One entry of the timeline (the fields of api/lookup.py's TimelineEntry)."""
    return {"event_id": row.event_id, "event_type": row.event_type, "occurred_at": utc_iso(row.at_ms),
            "channel": row.channel or None, "list": row.list or None, "status": row.status or None,
            "outcome": row.outcome or None, "reasons": list(row.reasons),
            "provider": _p(row, "provider") or None, "send_id": _p(row, "send_id") or None,
            "machine": machine_of(row), "summary": summary(row)}


def causal_depths(rows: list[EventRow]) -> dict[str, int]:
    """How many of the given events lie on each event's chain of causes (0: its cause is not
    among them); an event that names itself as its cause has depth 0."""
    by_id = {r.event_id: r for r in rows}
    depths: dict[str, int] = {}
    for row in rows:
        chain, seen, current = [], set(), row
        while current is not None and current.event_id not in depths and current.event_id not in seen:
            chain.append(current)
            seen.add(current.event_id)
            current = by_id.get(current.causation_id)
        base = depths.get(current.event_id, -1) if current is not None else -1
        for r in reversed(chain):
            base += 1
            depths[r.event_id] = base
    return depths


def newest_first(rows: list[EventRow]) -> list[EventRow]:
    """The events newest first; within one millisecond an event comes before its cause."""
    depths = causal_depths(rows)
    return sorted(rows, key=lambda r: (r.at_ms, depths[r.event_id], r.event_id), reverse=True)
