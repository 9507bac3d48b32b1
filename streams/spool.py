"""Fire-and-forget producing that never loses a record: what Kafka does not take is spooled.

The tracking front must answer a person in milliseconds, so it cannot wait for Kafka's
acknowledgement. It hands each record to `SpoolingProducer.send` (a non-blocking call into
librdkafka's queue). Every record ends either acknowledged by Kafka or appended to a local
spool file: when librdkafka's queue is full, when Kafka refuses it, when its delivery times
out, or when the process shuts down with it still queued (purged, then spooled). A
background loop sends the spool again once Kafka answers; a spool left by a crashed process
is sent by the next one that starts on the same directory.

Spool files are JSON lines {topic, key, value (base64)}; a record may be sent twice (spooled
after a timeout that Kafka in fact took), never zero times: consumers drop duplicates by the
event id inside the value.
"""
from __future__ import annotations

import base64
import logging
import os
import threading
import time
from pathlib import Path

import orjson
from confluent_kafka import KafkaException, Producer
from prometheus_client import Counter

log = logging.getLogger("leadstream.spool")

CURRENT = "current.jsonl"
SPOOLED = Counter("leadstream_spooled_records_total", "Records Kafka did not take, kept in the local spool")
RESENT = Counter("leadstream_spool_resent_records_total", "Spooled records produced again")


class Spool:
    """Append-only JSON-lines files under one directory; thread-safe appends."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fh = None
        self.appended = 0

    def append(self, topic: str, key: bytes | None, value: bytes) -> None:
        line = orjson.dumps({"topic": topic, "key": key.decode() if key else None,
                             "value": base64.b64encode(value).decode()}) + b"\n"
        with self._lock:
            if self._fh is None:
                self._fh = open(self.dir / CURRENT, "ab")
            self._fh.write(line)
            self._fh.flush()  # in the OS's hands: survives this process dying
            self.appended += 1
        SPOOLED.inc()

    def take(self) -> list[Path]:
        """Move the current file aside (new appends go to a fresh one); every file waiting to
        be sent, the oldest first."""
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
            cur = self.dir / CURRENT
            if cur.exists() and cur.stat().st_size:
                cur.rename(self.dir / f"spool-{time.time_ns()}-{os.getpid()}.jsonl")
        return sorted(self.dir.glob("spool-*.jsonl"))

    def pending(self) -> int:
        """Records waiting in spool files (a line count; for metrics and tests)."""
        n = 0
        for path in self.dir.glob("*.jsonl"):
            with open(path, "rb") as fh:
                n += sum(1 for _ in fh)
        return n

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def read_records(path: Path) -> list[tuple[str, bytes | None, bytes]]:
    """The records of one spool file; a torn last line (a crash mid-write) is skipped."""
    out = []
    with open(path, "rb") as fh:
        for line in fh:
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                log.warning("spool %s: skipping a torn line", path.name)
                continue
            key = rec["key"].encode() if rec["key"] is not None else None
            out.append((rec["topic"], key, base64.b64decode(rec["value"])))
    return out


class SpoolingProducer:
    """confluent-kafka producer whose failures land in a Spool instead of being lost."""

    def __init__(self, bootstrap: str, spool_dir: Path, **overrides):
        # only failures report back: a Python callback per delivered hit would take the GIL
        # from the event loop answering people
        conf = {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                "linger.ms": 5, "compression.type": "lz4", "message.timeout.ms": 15000,
                "queue.buffering.max.messages": 200000, "delivery.report.only.error": True}
        conf.update(overrides)
        self.producer = Producer(conf)
        self.spool = Spool(spool_dir)
        self.failed_at = 0.0  # when Kafka last failed us; while recent, records go straight to the spool
        self._running = True
        self._thread = threading.Thread(target=self._serve, name="spool-delivery", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        last_resend = 0.0
        while self._running:
            self.producer.poll(0.05)
            if time.monotonic() - last_resend > 2.0:
                last_resend = time.monotonic()
                self.resend()

    def _report(self, err, msg) -> None:
        if err is None:
            return
        self.failed_at = time.monotonic()
        self.spool.append(msg.topic(), msg.key(), msg.value())

    def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Queue one record without waiting; it ends acknowledged or spooled."""
        if self.failed_at and time.monotonic() - self.failed_at < 2.0:
            self.spool.append(topic, key, value)
            return
        try:
            self.producer.produce(topic, value, key, on_delivery=self._report)
        except (BufferError, KafkaException):
            self.failed_at = time.monotonic()
            self.spool.append(topic, key, value)

    def resend(self) -> int:
        """Send the spooled records again (a failure spools them anew); how many were sent."""
        if self.failed_at and time.monotonic() - self.failed_at < 2.0:
            return 0
        files = self.spool.take()
        n = 0
        for path in files:
            records = read_records(path)
            for topic, key, value in records:
                try:
                    self.producer.produce(topic, value, key, on_delivery=self._report)
                except (BufferError, KafkaException):
                    self.spool.append(topic, key, value)
            self.producer.flush(30)  # each one delivered, or re-spooled by its report
            n += len(records)
            path.unlink()  # a crash before this line sends the file again: duplicates, never loss
        if n:
            RESENT.inc(n)
            log.info("sent %d spooled records again", n)
        return n

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued within timeout_s; spool the rest."""
        self._running = False
        self._thread.join()
        self.producer.flush(timeout_s)
        self.producer.purge()  # what is still queued reports an error -> spooled
        self.producer.poll(0)
        self.producer.flush(0)
        self.spool.close()
