"""Pipeline benchmark: events/s through validate + dedupe + project (Redis + ClickHouse)
for one worker process running the Faust agents, against the same work in a bare
confluent-kafka loop over the same messages (baseline), and a bare consume-and-decode loop
doing no work (ceiling).   ./dev bench pipeline [--events N]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from confluent_kafka import Consumer, Producer

from bench._common import (cleanup, emit, env_for, isolated_settings, lead_bodies, prepare, run_id,
                           say, wait_until)
from domain.identity import LeadIds, new_event_id
from domain.lead_input import LeadIn
from domain.submission import build_submitted
from schemas.codec import default_codec
from streams.settings import ROOT, load_tenants
from streams.topics import SUBMITTED
from runtime.deps import build


def encoded_events(n: int, tag: str) -> list[tuple[bytes, bytes]]:
    s = isolated_settings("", 0, "x")
    tenant = load_tenants(s.tenants_file).tenants["jobsnearby"]
    enc, now = default_codec().encode, int(time.time() * 1000)
    out, ids = [], LeadIds(s.lead_id_secret)
    for body in lead_bodies(n, 7, tag):
        sub = build_submitted(LeadIn.model_validate(body), tenant, new_event_id(now, os.urandom(10)), now, "bench",
                              ids=ids)
        out.append((sub["lead_id"].encode(), enc("lead.submitted", sub)))
    return out


def fill(s, events) -> None:
    p = Producer({"bootstrap.servers": s.kafka_bootstrap, "linger.ms": 20, "compression.type": "lz4"})
    topic = f"{s.topic_prefix}{SUBMITTED}"
    for i, (k, v) in enumerate(events):
        while True:
            try:
                p.produce(topic, v, k)
                break
            except BufferError:
                p.poll(0.1)
    assert p.flush(60) == 0


def timed_run(s, cmd: list[str], target: int, timeout: float) -> float:
    """Start the process, wait until it is ready, then time until ClickHouse holds target rows."""
    ready = ROOT / ".stack" / "run" / f"bench-{s.topic_prefix.strip('.')}.ready"
    ready.unlink(missing_ok=True)
    env = {**env_for(s), "LEADSTREAM_READY_FILE": str(ready)}
    log = open(ROOT / ".stack" / "logs" / "bench-pipeline.log", "ab")
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    ch = build(s).clickhouse()
    try:
        wait_until(lambda: ready.exists() or proc.poll() is not None, 120)
        if proc.poll() is not None:
            raise SystemExit(f"{cmd} exited early; see .stack/logs/bench-pipeline.log")
        t0 = time.monotonic()
        count = lambda: ch.execute(f"SELECT count() FROM {s.clickhouse_database}.events")[0][0]
        wait_until(lambda: count() >= target, timeout, 0.05)
        return time.monotonic() - t0
    finally:
        proc.terminate()
        proc.wait(30)


def ceiling(s, n: int) -> float:
    """events/s of a bare consume + decode loop over the same topic."""
    c = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": f"{s.topic_prefix}ceiling",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([f"{s.topic_prefix}{SUBMITTED}"])
    decode, seen, t0 = default_codec().decode, 0, None
    while seen < n:
        for m in c.consume(2000, timeout=1.0):
            if m.error():
                continue
            t0 = t0 or time.monotonic()
            decode(m.value())
            seen += 1
    dt = time.monotonic() - t0
    c.close()
    return n / dt


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    args = ap.parse_args(argv)
    n, rid = args.events, run_id()
    agent_s = isolated_settings(f"bench{rid}a.", 1, f"bench{rid}a")
    bare_s = isolated_settings(f"bench{rid}b.", 2, f"bench{rid}b")
    say(f"encoding {n} lead.submitted events")
    events = encoded_events(n, rid)
    results = {}
    try:
        for name, s in (("agent", agent_s), ("bare", bare_s)):
            prepare(s)
            fill(s, events)
        say("ceiling: bare consume + decode")
        results["ceiling"] = ceiling(agent_s, n)
        say("baseline: bare confluent-kafka loop doing validate + dedupe + project")
        results["bare_s"] = timed_run(bare_s, [sys.executable, "-m", "bench._bare_loop"], 2 * n, 600)
        say("agents: one Faust worker running intake + analytics")
        results["agent_s"] = timed_run(agent_s, [sys.executable, "-m", "runtime.worker", "intake,analytics"],
                                       2 * n, 600)
    finally:
        for s in (agent_s, bare_s):
            cleanup(s)
    value, baseline = n / results["agent_s"], n / results["bare_s"]
    say(f"agent {value:,.0f} ev/s   bare {baseline:,.0f} ev/s   ceiling {results['ceiling']:,.0f} ev/s")
    emit({"bench": "pipeline", "value": round(value), "unit": "events/s", "baseline": round(baseline),
          "ratio": round(value / baseline, 3), "ceiling": round(results["ceiling"]), "events": n,
          "agent_seconds": round(results["agent_s"], 2), "baseline_seconds": round(results["bare_s"], 2)})


if __name__ == "__main__":
    main(sys.argv[1:])
