"""Fire-and-forget producing that never loses a record: what Kafka does not take is spooled.

The tracking front must answer a person in milliseconds, so it cannot wait for Kafka's
acknowledgement. It hands each record to `SpoolingProducer.send` (a non-blocking call into
librdkafka's queue). Every record ends either acknowledged by Kafka or appended to a local
spool file: when librdkafka's queue is full, when Kafka refuses it, when its delivery times
out, or when the process shuts down with it still queued (purged, then spooled). A
background loop sends the spool again once Kafka answers; a spool left by a crashed process
is sent by the next one that starts on the same directory.

A process killed outright (SIGKILL, the OOM killer) takes librdkafka's queue with it, so each
record is first written to a journal segment (one write, in the OS's hands before the caller
answers anyone). A segment is closed every few seconds and deleted once every record in it
has had Kafka's verdict (message.timeout.ms after it closed: acknowledged, or failed and
spooled); the segments a dead process left are spooled by the next one that starts.

Spool files are JSON lines {topic, key, value (base64)}; a record may be sent twice (spooled
after a timeout that Kafka in fact took, or journalled by a process killed after Kafka took
it), never zero times: consumers drop duplicates by the event id inside the value.
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
JOURNAL = "journal"
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
        line = _line(topic, key, value)
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


def _line(topic: str, key: bytes | None, value: bytes) -> bytes:
    return orjson.dumps({"topic": topic, "key": key.decode() if key else None,
                         "value": base64.b64encode(value).decode()}) + b"\n"


class Journal:
    """Every record handed to librdkafka, written before it is queued: segment files under one
    directory, the open one rotated every rotate_s, a closed one deleted settle_s after it
    closed (when no record in it can still be waiting for Kafka's verdict)."""

    def __init__(self, directory: Path, settle_s: float, rotate_s: float = 2.0):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.settle_s, self.rotate_s = settle_s, rotate_s
        self._lock = threading.Lock()
        self._fh = None
        self._path: Path | None = None
        self._opened_at = 0.0
        self._closed: list[tuple[float, Path]] = []

    def adopt(self, spool_dir: Path) -> int:
        """Move the segments a dead process left into the spool (they are sent again); how many."""
        left = sorted(self.dir.glob("journal-*.jsonl"))
        for path in left:
            path.rename(Path(spool_dir) / f"spool-{time.time_ns()}-{path.stem}.jsonl")
        return len(left)

    def write(self, topic: str, key: bytes | None, value: bytes) -> None:
        line = _line(topic, key, value)
        with self._lock:
            if self._fh is None:
                self._path = self.dir / f"journal-{time.time_ns()}-{os.getpid()}.jsonl"
                self._fh = open(self._path, "ab", buffering=0)  # each write one write(2): in the OS at once
                self._opened_at = time.monotonic()
            done = self._fh.write(line)
            while done < len(line):  # a regular file takes it whole; were it not, the rest follows
                done += self._fh.write(line[done:])

    def tick(self, now: float) -> None:
        """Close the open segment once it is rotate_s old; delete the settled ones."""
        with self._lock:
            if self._fh is not None and now - self._opened_at >= self.rotate_s:
                self._fh.close()
                self._closed.append((now, self._path))
                self._fh = self._path = None
            settled = [p for at, p in self._closed if now - at >= self.settle_s]
            self._closed = [(at, p) for at, p in self._closed if now - at < self.settle_s]
        for path in settled:
            path.unlink(missing_ok=True)

    def discard(self) -> None:
        """Every record written has its verdict (a clean shutdown): no segment is needed."""
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
            self._closed = []
        for path in self.dir.glob("journal-*.jsonl"):
            path.unlink(missing_ok=True)

    def segments(self) -> list[Path]:
        return sorted(self.dir.glob("journal-*.jsonl"))


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
        # a record waits at most message.timeout.ms for its verdict, then a few seconds for its report
        self.journal = Journal(Path(spool_dir) / JOURNAL, settle_s=float(conf["message.timeout.ms"]) / 1000 + 5)
        if adopted := self.journal.adopt(spool_dir):
            log.warning("spooled %d journal segments a stopped process left (their records are sent again)", adopted)
        self.failed_at = 0.0  # when Kafka last failed us; while recent, records go straight to the spool
        self._running = True
        self._thread = threading.Thread(target=self._serve, name="spool-delivery", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        last_resend = 0.0
        while self._running:
            self.producer.poll(0.05)
            self.journal.tick(time.monotonic())
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
        self.journal.write(topic, key, value)  # survives a SIGKILL that takes librdkafka's queue
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
        if len(self.producer) == 0:  # every record acknowledged or spooled
            self.journal.discard()
