"""./dev bench send [--emails N] [--workers W]

Emails per second composed and delivered by one bulk sender worker (or W) to a real MTA-grade SMTP
server: Postfix's smtp-sink (C, event-driven, PIPELINING; Debian's postfix package, which
./dev installs), keeping every message it receives as a file in memory (/dev/shm). N send.requested go onto a
private sends.bulk topic, for N accepted leads with jobs to match, through the real agent
(screen, claim, cap, rate limit, match, compose the ~25 KB MJML email, store links, DKIM-sign,
SMTP pool, settle, events) until N send.dispatched are on the private sends.events topic.
baseline: the very message bytes the pipeline delivered (read back from smtp-sink's files)
pushed by a bare pipelining SMTP client (bench/_bare_smtp.py) over the same number of
connections as the worker's pool, so ratio = value / baseline shows what composing and the
rest of the pipeline cost on top of delivery alone.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import time

import orjson
from confluent_kafka import Consumer, TopicPartition

from bench._bare_smtp import dumped, push, read_dump, sink_folder, start_sink
from bench._common import emit, free_port, say, wait_until
from domain.identity import new_event_id
from domain.intake import LeadState
from domain.schedule import send_id
from projections.redis_leads import lead_key
from schemas.codec import default_codec
from stack.isolated import IsolatedPlatform
from streams.settings import get_settings

TENANT, LIST = "jobsnearby", "warehouse"


def requests(n: int, tag: str) -> tuple[list[LeadState], list[tuple[bytes, bytes]]]:
    codec, now = default_codec(), int(time.time() * 1000)
    states, records = [], []
    for i in range(n):
        lid = f"{tag}{i:016x}"
        states.append(LeadState(TENANT, lid, "email", f"b{i}.{tag}@example.com", "accepted", lists=[LIST],
                                first_name="Sam", updated_ms=1,
                                profile={"zip": "10001", "keywords": ["warehouse"], "categories": []}))
        sid = send_id(TENANT, lid, LIST, "2026-11-26")
        req = {"event_id": new_event_id(now, os.urandom(10)), "tenant": TENANT, "occurred_at": now,
               "schema": "send.requested@1", "causation_id": None, "source": "bench", "lead_id": lid,
               "send_id": sid, "channel": "email", "list": LIST, "kind": "daily", "due_at": now,
               "local_date": "2026-11-26", "attempt": 0, "not_before": None, "trigger": None}
        records.append((lid.encode(), codec.encode("send.requested", req)))
    return states, records


def count_dispatched(p: IsolatedPlatform, n: int, timeout: float) -> float:
    """Seconds until n send.dispatched are on the private sends.events topic."""
    topic = f"{p.prefix}sends.events"
    c = Consumer({"bootstrap.servers": p.settings.kafka_bootstrap, "group.id": f"bench-{p.tag}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    c.assign([TopicPartition(topic, q, 0) for q in parts])
    seen, other, deadline = 0, {}, time.monotonic() + timeout
    while seen < n and time.monotonic() < deadline:
        for m in c.consume(5000, timeout=0.5):
            if m.error():
                continue
            name, _ = default_codec().decode(m.value())
            if name == "send.dispatched":
                seen += 1
            else:
                other[name] = other.get(name, 0) + 1
    c.close()
    if seen < n:
        raise RuntimeError(f"only {seen} of {n} dispatched within {timeout}s; other events: {other}")
    return time.monotonic()


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="./dev bench send")
    ap.add_argument("--emails", type=int, default=10_000)
    ap.add_argument("--redis-db", type=int, default=10)
    ap.add_argument("--workers", type=int, default=1, help="sender_bulk workers (the topic's partitions split among them)")
    args = ap.parse_args(argv)
    folder = sink_folder("leadstream-bench-mail-")
    port, connections = free_port(), get_settings().smtp_pool_size
    sink = start_sink(folder, port)
    try:
        wait_until(lambda: _open(port), 20)
        with IsolatedPlatform(args.redis_db, agents=("jobs", "sender_bulk"), fixed={"sender_bulk": args.workers},
                              env={"LEADSTREAM_SMTP_PORT": str(port)}) as p:
            p.supervisor.wait(lambda st: sum(w["ready"] for w in st["workers"]) >= args.workers, "sender_bulk", 120,
                              f"{args.workers} sender_bulk workers to be ready")
            p.poll_feeds()
            wait_until(lambda: p.redis.hlen(f"ls:jobs:{TENANT}") >= 6000, 60, 0.2)
            states, records = requests(args.emails, p.tag[:8])
            for i in range(0, len(states), 20_000):
                p.redis.mset({lead_key(s.tenant, s.lead_id): orjson.dumps(s) for s in states[i:i + 20_000]})
            say(f"{args.emails:,} send requests into sends.bulk; {args.workers} sender_bulk worker(s); smtp-sink on :{port}")
            t0 = time.monotonic()
            p.produce("sends.bulk", records)
            value = args.emails / (count_dispatched(p, args.emails, 600) - t0)
        wait_until(lambda: len(dumped(folder)) >= args.emails, 30, 0.2)
        msgs = [read_dump(f) for f in dumped(folder)]
        files, size_kb = len(msgs), sum(len(m[2]) for m in msgs) / max(1, len(msgs)) / 1024
        say(f"  {value:,.0f} emails/s through the agent; {files:,} messages at smtp-sink, {size_kb:.1f} KB each")
        say(f"baseline: the same bytes pushed by a bare pipelining SMTP client over {connections} connections")
        for f in dumped(folder):
            f.unlink()
        t1 = time.perf_counter()
        asyncio.run(push("127.0.0.1", port, msgs, connections))
        base = len(msgs) / (time.perf_counter() - t1)
        wait_until(lambda: len(dumped(folder)) >= len(msgs), 30, 0.2)
    finally:
        sink.terminate()
        sink.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
    say(f"  {base:,.0f} emails/s bare")
    emit({"bench": "send", "value": round(value), "unit": "emails/s", "baseline": round(base),
          "ratio": round(value / base, 3), "emails": args.emails, "delivered_files": files,
          "message_kb": round(size_kb, 1), "connections": connections, "server": "smtp-sink", "workers": args.workers})


def _open(port: int) -> bool:
    import socket
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    main(sys.argv[1:])
