"""`./dev replay --clickhouse` rebuilds the analytics: the known history (with its copies)
is produced to topics of a prefix of its own, runtime.replay refills a fresh database
from them, and every rollup equals what the analytics agent's writer made of the same events
batch by batch. (The live stack's workers, topics and database are not touched.)"""
from __future__ import annotations

import os
from datetime import datetime

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from rich.progress import Progress

from agents.analytics import TOPICS
from projections.clickhouse import EventsWriter, connect, migrate
from projections.event_rows import event_row
from runtime.replay import rebuild_clickhouse
from schemas.codec import default_codec
from streams.settings import Settings
from streams.topics import ENGAGEMENT_EVENTS, LEAD_EVENTS, SEND_EVENTS, SENDS_BULK, SUBMITTED
from runtime.deps import build
from tests.projections import analytics_dataset as data

PREFIX = f"an-replay-{os.getpid()}-"
REPLAYED, DIRECT = f"an_test_replay_{os.getpid()}", f"an_test_replay_direct_{os.getpid()}"
ROLLUPS = ["lead_hourly", "lead_daily", "lead_daily_detail", "lead_daily_keyword", "lead_daily_category",
           "send_hourly", "send_daily", "send_daily_detail", "engagement_hourly", "engagement_daily",
           "engagement_daily_detail"]


def _topic(name: str) -> str:
    if name == "lead.submitted":
        return SUBMITTED
    if name.startswith("lead."):
        return LEAD_EVENTS
    if name == "send.requested":
        return SENDS_BULK
    return SEND_EVENTS if name.startswith("send.") else ENGAGEMENT_EVENTS


@pytest.fixture(scope="module")
def settings():
    s = Settings(topic_prefix=PREFIX, clickhouse_database=REPLAYED, partitions=2,
                 redis_url="redis://127.0.0.1:16379/40")
    admin = AdminClient({"bootstrap.servers": s.kafka_bootstrap})
    for f in admin.create_topics([NewTopic(PREFIX + t, 2, 1) for t in TOPICS], operation_timeout=30).values():
        f.result()
    yield s
    for f in admin.delete_topics([PREFIX + t for t in TOPICS], operation_timeout=30).values():
        f.result()
    ch = connect(s.clickhouse_host, s.clickhouse_port)
    for db in (REPLAYED, DIRECT):
        ch.execute(f"DROP DATABASE IF EXISTS {db}")
    ch.disconnect()


def _sums(ch, db: str, table: str) -> list[tuple]:
    """A rollup's contents, summed per key (merges may not have happened yet)."""
    cols = [c[0] for c in ch.execute(f"DESCRIBE TABLE {db}.{table}") if c[0] not in ("n", "cents")]
    measures = "sum(n)" + (", sum(cents)" if table.startswith("engagement") else "")
    return ch.execute(f"SELECT {', '.join(cols)}, {measures} FROM {db}.{table} GROUP BY {', '.join(cols)} "
                      f"HAVING {measures.replace(', ', ' != 0 OR ')} != 0 ORDER BY {', '.join(cols)}")


def test_replay_rebuilds_every_rollup(settings):
    codec = default_codec()
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    decoded = []
    for batch in data.batches():
        for name, ev in batch:
            value = codec.encode(name, ev)
            producer.produce(PREFIX + _topic(name), value, ev["lead_id"].encode())
            decoded.append(codec.decode(value))
    assert producer.flush(30) == 0

    deps = build(settings)
    with Progress(disable=True) as progress:
        result = rebuild_clickhouse(deps, progress)
    assert result["events"] == len(decoded) and result["undecodable"] == 0
    assert result["rows"] == len({(ev["event_id"], ev.get("revision") or 0) for _, ev in decoded})

    ch = connect(settings.clickhouse_host, settings.clickhouse_port)
    ch.execute(f"DROP DATABASE IF EXISTS {DIRECT}")
    migrate(ch, DIRECT)
    writer = EventsWriter(ch, DIRECT)
    for i in range(0, len(decoded), 250):  # the agent's way: batch by batch, copies and all
        for name, ev in decoded[i:i + 250]:
            writer.submit(event_row(name, ev, "t", 0, i, datetime(2025, 12, 1)))
        writer.flush()
    for table in ROLLUPS:
        replayed = _sums(ch, REPLAYED, table)
        assert replayed and replayed == _sums(ch, DIRECT, table), table
    ch.disconnect()
