"""The message log's rules, pure: a send's status from its events, the log's filters and
paging cursor, and one row of the log as the API shows it.

A send's status is its furthest event: requested < deferred < skipped < dispatched < failed <
delivered < bounced, the latest one within the same step. Not the newest event: a planned
request carries its due time, which can lie after the sender's answer.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import NamedTuple

from domain.product_events import utc_iso
from domain.sending import template_id

SEND_STATUSES = ("requested", "deferred", "skipped", "dispatched", "failed", "delivered", "bounced")
STATUS_RANK = {status: rank for rank, status in enumerate(SEND_STATUSES)}
SEND_EVENT_TYPES = tuple(f"send.{s}" for s in SEND_STATUSES)
DEFAULT_LIMIT, MAX_LIMIT = 100, 500
COMPOSED = frozenset({"dispatched", "delivered", "bounced"})  # statuses of a message that left


class LogProblem(ValueError):
    """A query parameter of the log that cannot be used: which, and why."""

    def __init__(self, field: str, problem: str):
        super().__init__(problem)
        self.field = field


@dataclass(frozen=True)
class LogQuery:
    """One page of a tenant's message log: exact-match filters (None: any), newest first,
    before the cursor (the requested_at and send id of the previous page's last row)."""

    tenant: str
    status: str | None = None
    provider: str | None = None
    reason: str | None = None
    channel: str | None = None
    list: str | None = None
    limit: int = DEFAULT_LIMIT
    before_ms: int | None = None
    before_send: str | None = None


class SendRow(NamedTuple):
    """One send as the log query aggregates its events."""

    send_id: str
    status: str  # the furthest event's type, without "send."
    lead_id: str
    channel: str
    list: str
    provider: str
    kind: str
    trigger: str
    template: str  # the request's own template ("" for alerts and welcomes)
    reason: str  # the furthest event's reason
    reasons: list[tuple[int, str]]  # (at_ms, reason) of every event
    first_ms: int
    last_ms: int


def parse_before(text: str | None) -> int | None:
    """The cursor's instant in ms: ISO 8601, UTC unless it names an offset."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise LogProblem("before", f"{text!r} is not an ISO 8601 time (e.g. 2026-01-31T09:30:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def reasons_in_order(pairs: list[tuple[int, str]]) -> list[str]:
    """Every reason the send's events gave, oldest first, each once."""
    out: list[str] = []
    for _, reason in sorted(pairs):
        if reason and reason not in out:
            out.append(reason)
    return out


def log_entry(row: SendRow, list_template: str, to: str | None) -> dict:
    """One row of the log (the fields of api/messages.py's MessageRow)."""
    req = {"kind": row.kind or "daily", "trigger": row.trigger or None, "template": row.template or None}
    return {"send_id": row.send_id, "status": row.status, "channel": row.channel, "provider": row.provider or None,
            "list": row.list, "template": template_id(req, list_template), "kind": row.kind or None,
            "lead_id": row.lead_id, "to": to, "subject": None, "reason": row.reason or None,
            "reasons": reasons_in_order(row.reasons), "requested_at": utc_iso(row.first_ms),
            "last_at": utc_iso(row.last_ms)}


def next_cursor(rows: list[SendRow], limit: int) -> dict | None:
    """Where the next page starts, or None after the last page."""
    if len(rows) < limit or not rows:
        return None
    return {"before": utc_iso(rows[-1].first_ms), "before_send": rows[-1].send_id}


def _step(e) -> tuple[int, int]:
    """How far a send event takes the send, then when."""
    return STATUS_RANK[e.event_type.removeprefix("send.")], e.at_ms


def _first(values) -> str:
    return next((v for v in values if v), "")


def send_row(send_id: str, events: list) -> SendRow:
    """The log's row of one send from its events (domain.timeline.EventRow), by the same rule
    as the log query: the furthest event gives the status."""
    own = [e for e in events if e.event_type in SEND_EVENT_TYPES]
    last = max(own, key=_step)
    request = next((e.payload for e in own if e.event_type == "send.requested"), {})
    named = [e for e in own if e.payload.get("provider")]
    provider = max(named, key=_step).payload["provider"] if named else ""
    return SendRow(send_id, last.event_type.removeprefix("send."), _first(e.payload.get("lead_id") for e in own),
                   _first(e.channel for e in own), _first(e.list for e in own), provider,
                   _first(e.payload.get("kind") for e in own), request.get("trigger") or "",
                   request.get("template") or "", last.payload.get("reason") or "",
                   [(e.at_ms, e.payload.get("reason") or "") for e in own],
                   min(e.at_ms for e in own), max(e.at_ms for e in own))


def latest_payload(events: list, event_type: str) -> dict | None:
    """The payload of the send's latest event of this type (the last attempt's request)."""
    found = [e for e in events if e.event_type == event_type]
    if not found:
        return None
    return max(found, key=lambda e: (e.payload.get("attempt") or 0, e.at_ms)).payload
