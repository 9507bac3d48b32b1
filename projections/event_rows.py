"""The processor from a decoded event to its ClickHouse row (pure)."""
from __future__ import annotations

from datetime import date, datetime, timezone

import orjson

_CROCKFORD = {c: i for i, c in enumerate("0123456789ABCDEFGHJKMNPQRSTVWXYZ")}
_EPOCH = date(1970, 1, 1)


def ulid_ms(ulid: str) -> int:
    """The millisecond timestamp in a ULID's first 10 characters (0 if it is not a ULID)."""
    ms = 0
    for ch in ulid[:10].upper():
        v = _CROCKFORD.get(ch)
        if v is None:
            return 0
        ms = (ms << 5) | v
    return ms


def _utc(ts) -> datetime:
    if isinstance(ts, datetime):
        return ts.astimezone(timezone.utc).replace(tzinfo=None)
    return datetime.fromtimestamp(ts / 1000, tz=timezone.utc).replace(tzinfo=None)


def _json_default(obj):
    if isinstance(obj, datetime):
        return int(obj.timestamp() * 1000)
    raise TypeError(type(obj).__name__)


def event_row(name: str, ev: dict, topic: str, partition: int, offset: int,
              ingested_at: datetime) -> tuple:
    """One row of {db}.events, in EVENT_COLUMNS order."""
    occurred = _utc(ev["occurred_at"])
    id_ms = ulid_ms(ev["event_id"])
    event_date = _utc(id_ms).date() if id_ms else occurred.date()
    return (
        ev["event_id"], name, event_date, occurred, ev["tenant"], ev.get("lead_id") or "",
        ev.get("causation_id") or "", ev.get("source") or "", ev.get("channel") or "",
        ev.get("partner") or "", ev.get("list") or "", ev.get("status") or "",
        ev.get("outcome") or "", list(ev.get("reasons") or ()),
        orjson.dumps(ev, default=_json_default).decode(), topic, partition, offset, ingested_at,
    )
