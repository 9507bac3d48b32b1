"""ClickHouse: connection, versioned migrations, and the batched events writer."""
from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from pathlib import Path

from clickhouse_driver import Client

from streams import metrics

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

EVENT_COLUMNS = ("event_id", "event_type", "event_date", "occurred_at", "tenant", "lead_id",
                 "causation_id", "source", "channel", "partner", "list", "status", "outcome",
                 "reasons", "payload", "topic", "partition", "offset", "ingested_at")


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
    """Buffers rows in submit(); flush() writes them once, columnar, and empties the buffer."""

    def __init__(self, client: Client, db: str):
        self.client = client
        self.table = f"{db}.events"
        self.rows: list[tuple] = []

    def submit(self, row: tuple) -> None:
        self.rows.append(row)

    def flush(self) -> int:
        if not self.rows:
            return 0
        columns = list(zip(*self.rows))
        started = time.perf_counter()
        self.client.execute(f"INSERT INTO {self.table} ({', '.join(EVENT_COLUMNS)}) VALUES",
                            columns, columnar=True)
        n = len(self.rows)
        metrics.CLICKHOUSE_INSERT_SECONDS.labels("events").observe(time.perf_counter() - started)
        metrics.CLICKHOUSE_ROWS.labels("events").inc(n)
        self.rows = []
        return n
