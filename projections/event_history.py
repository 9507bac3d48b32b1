"""What ClickHouse holds about one lead or one send: their events, one row per event id (the
latest revision of a revised click), in domain.timeline.EventRow form.

The events table is keyed by (tenant, event_type, event_id): these reads scan one tenant's
events for the lead id (PREWHERE reads that column alone first).
"""
from __future__ import annotations

import orjson

from domain.timeline import EventRow

# An event's time in ms. The DateTime column keeps seconds; the payload's occurred_at keeps
# the milliseconds (ISO 8601 "…:SS.ffffff+00:00", or a number when it was written as one).
AT_MS = ("toUInt64(occurred_at) * 1000 + "
         "toUInt16OrZero(substring(visitParamExtractString(payload, 'occurred_at'), 21, 3))")

_COLUMNS = f"event_id, event_type, {AT_MS} AS at_ms, channel, list, status, outcome, reasons, causation_id, payload"


def lead_events(client, db: str, tenant: str, lead_id: str, limit: int) -> list[EventRow]:
    """The lead's newest `limit` events (newest first by time; ties in no order)."""
    rows = client.execute(
        f"SELECT * FROM (SELECT {_COLUMNS} FROM {db}.events PREWHERE tenant = %(tenant)s AND lead_id = %(lead)s "
        f"ORDER BY ingested_at DESC LIMIT 1 BY event_id) ORDER BY at_ms DESC LIMIT %(limit)s",
        {"tenant": tenant, "lead": lead_id, "limit": int(limit)})
    return [_row(r) for r in rows]


def send_events(client, db: str, tenant: str, send_id: str, limit: int = 1000) -> list[EventRow]:
    """Every event naming the send (its requests and outcomes, opens and clicks, triggers)."""
    rows = client.execute(
        f"SELECT * FROM (SELECT {_COLUMNS} FROM {db}.events PREWHERE tenant = %(tenant)s "
        f"WHERE visitParamExtractString(payload, 'send_id') = %(send)s "
        f"ORDER BY ingested_at DESC LIMIT 1 BY event_id) ORDER BY at_ms DESC LIMIT %(limit)s",
        {"tenant": tenant, "send": send_id, "limit": int(limit)})
    return [_row(r) for r in rows]


def _row(r: tuple) -> EventRow:
    event_id, event_type, at_ms, channel, list_, status, outcome, reasons, causation_id, payload = r
    return EventRow(event_id, event_type, int(at_ms), channel, list_, status, outcome, list(reasons),
                    causation_id, orjson.loads(payload) if payload else {})
