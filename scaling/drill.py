"""A surge drill: one agent, a private set of topics, a supervisor of its own, a big backlog.

Used by the autoscale test and `./dev bench autoscale`. It creates topics under a fresh
prefix, starts `python -m scaling.supervisor intake` with a scaling file of its own, produces
a surge of lead.submitted events as fast as Kafka takes them, and samples the supervisor's
status until the backlog is drained and (optionally) the workers are scaled back down.
Everything it made (topics, the Redis read models of its leads) is removed at the end.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from domain.identity import LeadIds, new_event_id
from domain.lead_input import LeadIn
from domain.submission import build_submitted
from scaling.client import SupervisorClient
from schemas.codec import default_codec
from streams.settings import ROOT, Settings, load_tenants
from streams.topics import all_topics

TENANT, LIST = "hireflow", "nurses"


@dataclass
class Sample:
    t: float  # seconds since the surge started
    lag: int | None
    desired: int | None
    running: int


@dataclass
class DrillResult:
    events: int
    produce_s: float
    drain_s: float | None  # surge start -> lag 0 after the last event was produced
    reaction_s: float | None  # surge start -> first worker added
    peak_workers: int
    scaled_back_down_s: float | None  # surge start -> back at min_workers after draining
    direction_changes: int  # how often the desired count changed direction (up->down = 1)
    decisions: list[dict] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)


def stop_process_group(proc: subprocess.Popen | None) -> None:
    """SIGTERM a supervisor's process group (it and its workers), SIGKILL after a minute."""
    if proc and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def delete_topics(bootstrap: str, prefix: str) -> None:
    """Delete every catalogue topic under this prefix (the ones that exist)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [f"{prefix}{t.name}" for t in all_topics()]
    for f in admin.delete_topics(names, operation_timeout=30).values():
        try:
            f.result()
        except Exception:
            pass  # a topic the run did not create: nothing to remove


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scaling_file(path: Path, lag_per_worker: int, min_workers: int, max_workers: int,
                 window_s: float) -> Path:
    """A scaling file for the intake agent alone."""
    path.write_text(yaml.safe_dump({"agents": {"intake": {
        "topics": ["leads.submitted"], "lag_per_worker": lag_per_worker, "activation_lag": 1,
        "min_workers": min_workers, "max_workers": max_workers,
        "scale_down_window_s": window_s, "stall_after_s": 60}}}))
    return path


def encoded_leads(s: Settings, n: int, tag: str) -> list[tuple[bytes, bytes]]:
    """(key, value) of n distinct valid lead.submitted events of one tenant."""
    tenant = load_tenants(s.tenants_file).tenants[TENANT]
    enc, now = default_codec().encode, int(time.time() * 1000)
    ids = LeadIds(s.lead_id_secret)
    out = []
    for i in range(n):
        sub = build_submitted(LeadIn(email=f"s{i}.{tag}@example.com", partner="surge", list=LIST),
                              tenant, new_event_id(now, os.urandom(10)), now, "drill", ids=ids)
        out.append((sub["lead_id"].encode(), enc("lead.submitted", sub)))
    return out


class Drill:
    """One run: its own prefix, topics, supervisor process and scaling file."""

    def __init__(self, s: Settings, lag_per_worker: int, min_workers: int, max_workers: int,
                 window_s: float, interval_s: float = 1.0, log=print):
        self.s, self.log = s, log
        self.tag = uuid.uuid4().hex[:8]
        self.prefix = f"drill-{self.tag}."
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="leadstream-drill-"))
        self.min_workers = min_workers
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "LEADSTREAM_TOPIC_PREFIX": self.prefix,
                    "LEADSTREAM_SUPERVISOR_PORT": str(self.port),
                    "LEADSTREAM_WORKER_METRICS_BASE_PORT": "0",
                    "LEADSTREAM_RUN_DIR": str(self.tmp), "LEADSTREAM_LOG_DIR": str(self.tmp),
                    "LEADSTREAM_SCALING_INTERVAL_S": str(interval_s),
                    "LEADSTREAM_SCALING_FILE": str(scaling_file(self.tmp / "agents.yaml", lag_per_worker,
                                                                min_workers, max_workers, window_s))}
        self.client = SupervisorClient(self.port)
        self.proc: subprocess.Popen | None = None
        self.lead_ids: list[bytes] = []

    def __enter__(self) -> "Drill":
        out = subprocess.run([sys.executable, "-m", "runtime.bootstrap"], env=self.env, cwd=ROOT,
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"bootstrap of the drill's topics failed: {out.stderr or out.stdout}")
        self.proc = subprocess.Popen([sys.executable, "-m", "scaling.supervisor", "intake"], env=self.env,
                                     cwd=ROOT, stdout=open(self.tmp / "supervisor.log", "wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.client.wait(lambda a: sum(w["ready"] for w in a["workers"]) >= max(self.min_workers, 1),
                         "intake", 120, "the drill's first worker")
        return self

    def run(self, leads: list[tuple[bytes, bytes]], settle_s: float, timeout_s: float = 600) -> DrillResult:
        """Produce the surge, then sample until drained and back at min (or settle_s after)."""
        self.lead_ids = [k for k, _ in leads]
        produced: list[float] = []  # filled by the producer thread when Kafka has every event
        t0 = time.monotonic()
        producer = threading.Thread(target=lambda: produced.append(self._produce(leads)), daemon=True)
        producer.start()
        samples, drained_at, down_at, ticks_at_end = [], None, None, None
        deadline = t0 + timeout_s
        while time.monotonic() < deadline:
            if not producer.is_alive() and not produced:
                raise RuntimeError("the surge could not be produced to Kafka")
            status = self.client.status()
            a, t = status["agents"]["intake"], time.monotonic() - t0
            if produced and ticks_at_end is None:
                ticks_at_end = status["ticks"]
            samples.append(Sample(round(t, 2), a["lag"], a["desired"], a["running"]))
            # a lag of 0 counts only if measured by a tick that began after the last event was in
            measured_after = ticks_at_end is not None and status["ticks"] >= ticks_at_end + 2
            if drained_at is None and measured_after and a["lag"] == 0:
                drained_at = t
                self.log(f"  drained at {t:.1f}s")
            if drained_at is not None and (a["desired"] or 0) <= self.min_workers and a["running"] <= self.min_workers:
                down_at = down_at or t
            if drained_at is not None and (down_at is not None or t - drained_at > settle_s):
                break
            time.sleep(0.5)
        producer.join(60)
        if not produced:
            raise RuntimeError("the surge could not be produced to Kafka")
        status = self.client.status()["agents"]["intake"]
        return summarise(len(leads), produced[0], drained_at, down_at, samples, status["changes"])

    def _produce(self, leads: list[tuple[bytes, bytes]]) -> float:
        p = Producer({"bootstrap.servers": self.s.kafka_bootstrap, "linger.ms": 20,
                      "compression.type": "lz4", "queue.buffering.max.messages": 1_000_000})
        topic = f"{self.prefix}leads.submitted"
        errors = []

        def delivered(err, _msg):
            if err is not None:
                errors.append(err)
        t0 = time.monotonic()
        for i, (k, v) in enumerate(leads):
            p.produce(topic, v, k, on_delivery=delivered)
            if i % 20000 == 0:
                p.poll(0)
        left = p.flush(60)
        if left or errors:
            raise RuntimeError(f"{left} surge events still queued, {len(errors)} failed "
                               f"(first: {errors[:1]}) producing to {topic}")
        return time.monotonic() - t0

    def __exit__(self, *exc) -> None:
        stop_process_group(self.proc)
        self._cleanup()

    def _cleanup(self) -> None:
        delete_topics(self.s.kafka_bootstrap, self.prefix)
        import redis
        r = redis.Redis.from_url(self.s.redis_url)
        keys = [f"ls:lead:{TENANT}:{k.decode()}" for k in self.lead_ids]
        for i in range(0, len(keys), 10000):
            r.delete(*keys[i:i + 10000])
        r.close()

    def supervisor_log(self) -> str:
        return (self.tmp / "supervisor.log").read_text(errors="replace")


def summarise(n: int, produce_s: float, drained_at: float | None, down_at: float | None,
              samples: list[Sample], changes: list[dict]) -> DrillResult:
    """The figures of one drill from its samples and the supervisor's recorded changes."""
    changes = [c for c in changes if c["from"] > 0 or c["direction"] == "down"]  # not the start
    first_up = next((x.t for x in samples if (x.desired or 0) > (samples[0].desired or 1)), None)
    directions = [c["direction"] for c in changes]
    turns = sum(1 for a, b in zip(directions, directions[1:]) if a != b)
    peak = max((x.running for x in samples), default=0)
    return DrillResult(n, round(produce_s, 2), drained_at and round(drained_at, 2), first_up,
                       peak, down_at and round(down_at, 2), turns, changes, samples)
