"""The processor from a configuration event to its row in {db}.config_history (pure).

Secrets (a webhook's signing secret, a person's password hash) never reach ClickHouse:
the row says that they were set or changed, not what they are.
"""
from __future__ import annotations

from datetime import datetime, timezone

import orjson

from domain.config_changes import redact, redact_changes

CONFIG_COLUMNS = ("event_id", "at", "day", "entity", "entity_key", "tenant", "entity_id", "version", "op",
                  "actor", "actor_ip", "user_agent", "source", "data", "before", "change", "ingested_at")


def config_row(name: str, ev: dict, ingested_at: datetime) -> tuple:
    """One row of config_history, in CONFIG_COLUMNS order."""
    at = ev["occurred_at"]
    at = at if isinstance(at, datetime) else datetime.fromtimestamp(at / 1000, tz=timezone.utc)
    at = at.astimezone(timezone.utc).replace(tzinfo=None, microsecond=0)
    kind = ev["entity"]
    return (ev["event_id"], at, at.date(), kind, ev["entity_key"], ev["tenant"], ev["entity_id"], ev["version"],
            name.rsplit(".", 1)[-1], ev["actor"], ev.get("actor_ip") or "", ev.get("user_agent") or "",
            ev["source"], _redacted(kind, ev.get("data")), _redacted(kind, ev.get("before")),
            orjson.dumps(redact_changes(kind, orjson.loads(ev["change"]))).decode(), ingested_at)


def _redacted(kind: str, raw: str | None) -> str:
    if not raw:
        return ""
    return orjson.dumps(redact(kind, orjson.loads(raw)), option=orjson.OPT_SORT_KEYS).decode()
