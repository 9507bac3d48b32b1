"""A producing process killed outright (SIGKILL) right after handing records to librdkafka:
what it had queued, not yet sent, reaches Kafka through its journal, sent by the next process
on the same spool directory. The tracking front answers people before Kafka has a hit; this
is what keeps a hit it answered when it is killed a moment later."""
from __future__ import annotations

import subprocess
import sys
import time
import uuid

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from streams.spool import SpoolingProducer

CHILD = """
import os, signal, sys
from pathlib import Path
from streams.spool import SpoolingProducer
bootstrap, spool, topic, n = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
p = SpoolingProducer(bootstrap, spool, **{"linger.ms": 5000})  # nothing leaves before the kill
for i in range(n):
    p.send(topic, f"k{i}".encode(), f"v{i}".encode())
print("queued", len(p.producer), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _values(bootstrap: str, topic: str, want: int, timeout: float = 60.0) -> list[bytes]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4().hex}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    got, deadline = [], time.monotonic() + timeout
    try:
        while len(set(got)) < want and time.monotonic() < deadline:
            got += [m.value() for m in c.consume(500, timeout=0.5) if not m.error()]
    finally:
        c.close()
    return got


def test_records_queued_by_a_killed_process_reach_kafka_through_its_journal(settings, tmp_path):
    topic, n = f"test-journal-{uuid.uuid4().hex[:10]}", 300
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result()
    try:
        out = subprocess.run([sys.executable, "-c", CHILD, settings.kafka_bootstrap, str(tmp_path), topic, str(n)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == -9 and f"queued {n}" in out.stdout, out.stderr[-2000:]
        assert _values(settings.kafka_bootstrap, topic, 1, timeout=3) == []  # librdkafka's queue died with it
        assert len(list((tmp_path / "journal").glob("journal-*.jsonl"))) == 1

        p = SpoolingProducer(settings.kafka_bootstrap, tmp_path)  # the next process on the same directory
        try:
            got = _values(settings.kafka_bootstrap, topic, n)
        finally:
            p.close()
        assert sorted(set(got)) == sorted(f"v{i}".encode() for i in range(n))
        assert len(got) == n  # each once: the journal was spooled, sent, and its file removed
        assert not list(tmp_path.glob("*.jsonl")) and not list((tmp_path / "journal").glob("*.jsonl"))
    finally:
        admin.delete_topics([topic])
