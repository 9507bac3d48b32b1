"""ClickHouse: connection, versioned migrations, and the batched events writer.

The writer inserts only the events ClickHouse does not hold yet (looked up by event key in
{db}.event_keys), so redelivered, replayed and re-sent events are never counted twice and the
rollups fed by materialized views can be plain sums (migrations 006-009).
"""
from __future__ import annotations

import calendar
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import orjson
from clickhouse_driver import Client

from projections.engagement_firsts import Touch, firsts
from streams import metrics

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

EVENT_COLUMNS = ("event_id", "event_type", "event_date", "occurred_at", "tenant", "lead_id",
                 "causation_id", "source", "channel", "partner", "list", "status", "outcome",
                 "reasons", "payload", "topic", "partition", "offset", "ingested_at",
                 "event_key", "firsts_at", "firsts_actor", "firsts_delta")
_TYPE, _OCCURRED, _PAYLOAD, _KEY = (EVENT_COLUMNS.index(c) for c in ("event_type", "occurred_at", "payload",
                                                                       "event_key"))
_FIRSTS = EVENT_COLUMNS.index("firsts_at")
_TOUCHES = {"engagement.opened": "open", "engagement.clicked": "click"}
LOOKUP_CHUNK = 50_000


def connect(host: str, port: int, database: str | None = None) -> Client:
    return Client(host=host, port=port, database=database or "default",
                  connect_timeout=5, send_receive_timeout=60,
                  settings={"insert_block_size": 1_048_576})


def migrate(client: Client, db: str) -> list[str]:
    """Apply the migrations not yet recorded in {db}.schema_migrations; returns their names."""
    client.execute(f"CREATE DATABASE IF NOT EXISTS {db}")
    client.execute(f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
                   f"(version UInt32, name String, applied_at DateTime) "
                   f"ENGINE = ReplacingMergeTree(applied_at) ORDER BY version")
    done = {v for (v,) in client.execute(f"SELECT version FROM {db}.schema_migrations")}
    applied = []
    for path in sorted(MIGRATIONS.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise ValueError(f"migration {path.name} is not named NNN_name.sql")
        version = int(m[1])
        if version in done:
            continue
        for stmt in _statements(path.read_text().replace("{db}", db)):
            client.execute(stmt)
        client.execute(f"INSERT INTO {db}.schema_migrations (version, name, applied_at) VALUES",
                       [(version, path.stem, datetime.now(timezone.utc).replace(tzinfo=None))])
        applied.append(path.stem)
    return applied


def _statements(sql: str) -> list[str]:
    lines = [ln for ln in sql.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


class EventsWriter:
    """Buffers rows in submit(); flush() writes those ClickHouse does not hold yet, once,
    columnar, and empties the buffer.

    Exactly once per event key, given one writer per key at a time (an event's copies share
    its lead's partition, and a partition has one consumer): copies inside a batch are
    dropped, and so are keys already in {db}.event_keys. A crash between the insert and the
    offset commit re-sends a batch whose events are all held: nothing is inserted again.
    """

    def __init__(self, client: Client, db: str):
        self.client = client
        self.db = db
        self.table = f"{db}.events"
        self.rows: list[tuple] = []

    def submit(self, row: tuple) -> None:
        self.rows.append(row)

    def flush(self) -> int:
        """Write the new rows; returns how many were written (copies left out)."""
        if not self.rows:
            return 0
        started = time.perf_counter()
        rows = self._with_firsts(self._unseen(self.rows))
        if rows:
            self.client.execute(f"INSERT INTO {self.table} ({', '.join(EVENT_COLUMNS)}) VALUES",
                                list(zip(*rows)), columnar=True)
        metrics.CLICKHOUSE_INSERT_SECONDS.labels("events").observe(time.perf_counter() - started)
        metrics.CLICKHOUSE_ROWS.labels("events").inc(len(rows))
        self.rows = []
        return len(rows)

    def _unseen(self, rows: list[tuple]) -> list[tuple]:
        """The rows whose event key is neither held by ClickHouse nor earlier in the batch."""
        first: dict[str, tuple] = {}
        for row in rows:
            first.setdefault(row[_KEY], row)
        keys = list(first)
        held: set[str] = set()
        for i in range(0, len(keys), LOOKUP_CHUNK):
            chunk = keys[i:i + LOOKUP_CHUNK]
            held.update(k for (k,) in self.client.execute(
                f"SELECT event_key FROM {self.db}.event_keys WHERE event_key IN batch_keys",
                external_tables=[_strings("batch_keys", "event_key", chunk)]))
        return [row for key, row in first.items() if key not in held]

    def _with_firsts(self, rows: list[tuple]) -> list[tuple]:
        """The rows with the firsts of the messages their opens and clicks change."""
        idx = [i for i, row in enumerate(rows) if row[_TYPE] in _TOUCHES]
        if not idx:
            return rows
        new = [_touch(rows[i]) for i in idx]
        sends = sorted({t.send_id for t in new if t.send_id})
        held = []
        for i in range(0, len(sends), LOOKUP_CHUNK):
            held += [Touch(*r[:5], bool(r[5])) for r in self.client.execute(
                f"SELECT send_id, kind, event_id, revision, at_ms, machine FROM {self.db}.send_engagement "
                f"WHERE send_id IN batch_sends",
                external_tables=[_strings("batch_sends", "send_id", sends[i:i + LOOKUP_CHUNK])])]
        rows = list(rows)
        for j, deltas in firsts(held, new).items():
            i = idx[j]
            rows[i] = rows[i][:_FIRSTS] + ([_utc_s(at) for at, _, _ in deltas], [a for _, a, _ in deltas],
                                           [d for _, _, d in deltas])
        return rows


def _touch(row: tuple) -> Touch:
    """An open or click as the firsts see it; its time to the second, as send_engagement keeps it."""
    ev = orjson.loads(row[_PAYLOAD])
    at_ms = calendar.timegm(row[_OCCURRED].timetuple()) * 1000
    return Touch(ev.get("send_id") or "", _TOUCHES[row[_TYPE]], ev["event_id"], int(ev.get("revision") or 0),
                 at_ms, bool(ev.get("is_bot")))


def _utc_s(ms: int) -> datetime:
    return datetime.fromtimestamp(ms // 1000, tz=timezone.utc).replace(tzinfo=None)


def _strings(name: str, column: str, values: list[str]) -> dict:
    """A one-column external table for `x IN name` (no query-size limit, unlike a literal list)."""
    return {"name": name, "structure": [(column, "String")], "data": [{column: v} for v in values]}
