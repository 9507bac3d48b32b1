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
    """One row of {db}.events, in EVENT_COLUMNS order (the firsts_* arrays are left empty:
    the events writer fills them, see projections/engagement_firsts.py)."""
    occurred = _utc(ev["occurred_at"])
    id_ms = ulid_ms(ev["event_id"])
    event_date = _utc(id_ms).date() if id_ms else occurred.date()
    return (
        ev["event_id"], name, event_date, occurred, ev["tenant"], ev.get("lead_id") or ev.get("author_lead_id") or "",
        ev.get("causation_id") or "", ev.get("source") or "", ev.get("channel") or "",
        ev.get("partner") or "", ev.get("list") or "", ev.get("status") or "",
        ev.get("outcome") or "", list(ev.get("reasons") or ()),
        orjson.dumps(ev, default=_json_default).decode(), topic, partition, offset, ingested_at,
        event_key(ev), [], [], [],
    )


def event_key(ev: dict) -> str:
    """What makes a row new to ClickHouse: the event id, and the revision of a revised one
    (a click found later to be a scanner's is the same event in a later revision)."""
    revision = ev.get("revision") or 0
    return f"{ev['event_id']}#{revision}" if revision else ev["event_id"]
