"""./dev bench send [--emails N]

Emails per second composed and delivered to a local SMTP server by one bulk sender worker:
N send.requested on a private sends.bulk topic, for N accepted leads with jobs to match,
through the real agent (screen, claim, cap, rate limit, match, compose with the MJML template,
store links, SMTP pool, settle, events) until N send.dispatched are on the private
sends.events topic. The SMTP server is the project's aiosmtpd sink in its own process.
baseline: the very messages the pipeline delivered (read back from the sink) pushed straight
through channels.smtp_pool to the same server (the delivery ceiling), so ratio = value /
baseline shows what the rest of the pipeline costs.
"""
from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from confluent_kafka import Consumer, TopicPartition

from bench._common import emit, free_port, say, wait_until
from channels.base import EmailMessage
from channels.smtp_pool import SmtpPool
from domain.identity import new_event_id
from domain.intake import LeadState
from domain.schedule import send_id
from projections.redis_leads import lead_key
from schemas.codec import default_codec
from stack.isolated import IsolatedPlatform
from streams.settings import ROOT

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


def composed_messages(folder: Path) -> list[EmailMessage]:
    """The emails the pipeline delivered, read back from the sink, as ready messages again."""
    out = []
    for path in sorted(folder.glob("*.eml")):
        m = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        headers = {k: str(m[k]) for k in ("List-Unsubscribe", "List-Unsubscribe-Post", "X-Leadstream-Send")}
        out.append(EmailMessage(f"base-{path.stem[:24]}", "alerts@jobsnearby.example", "Jobs Nearby",
                                str(m["To"]), str(m["Subject"]), m.get_body(("html",)).get_content(),
                                m.get_body(("plain",)).get_content(), headers))
    return out


async def baseline(port: int, msgs: list[EmailMessage]) -> float:
    """The same messages straight through the SMTP pool to the same server: delivery alone."""
    pool = SmtpPool("127.0.0.1", port, size=8)
    n = len(msgs)
    t0 = time.perf_counter()
    for i in range(0, n, 500):
        outcomes = await pool.send_many(msgs[i:i + 500])
        assert all(o.ok for o in outcomes), [o for o in outcomes if not o.ok][:1]
    took = time.perf_counter() - t0
    await pool.close()
    return n / took


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="./dev bench send")
    ap.add_argument("--emails", type=int, default=10_000)
    ap.add_argument("--redis-db", type=int, default=10)
    args = ap.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="leadstream-bench-mail-"))
    port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "stack.standins.smtp_sink", "--port", str(port),
                             "--dir", str(folder)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _open(port), 20)
        env = {"LEADSTREAM_SMTP_PORT": str(port), "LEADSTREAM_MAIL_DIR": str(folder)}
        with IsolatedPlatform(args.redis_db, agents=("jobs", "sender_bulk"), env=env) as p:
            p.poll_feeds()
            wait_until(lambda: p.redis.hlen(f"ls:jobs:{TENANT}") >= 6000, 60, 0.2)
            states, records = requests(args.emails, p.tag[:8])
            for i in range(0, len(states), 20_000):
                p.redis.mset({lead_key(s.tenant, s.lead_id): orjson.dumps(s) for s in states[i:i + 20_000]})
            say(f"{args.emails:,} send requests into sends.bulk; one sender_bulk worker")
            t0 = time.monotonic()
            p.produce("sends.bulk", records)
            value = args.emails / (count_dispatched(p, args.emails, 600) - t0)
            files = sum(1 for _ in folder.glob("*.eml"))
        say(f"  {value:,.0f} emails/s through the agent; {files:,} .eml files at the sink")
        say("baseline: the very same messages (read back from the sink) straight through the SMTP pool")
        msgs = composed_messages(folder)
        for f in folder.glob("*.eml"):
            f.unlink()
        base = asyncio.run(baseline(port, msgs))
    finally:
        sink.terminate()
        sink.wait(10)
        for f in folder.glob("*"):
            f.unlink()
        folder.rmdir()
    emit({"bench": "send", "value": round(value), "unit": "emails/s", "baseline": round(base),
          "ratio": round(value / base, 3), "emails": args.emails, "delivered_files": files, "workers": 1})


def _open(port: int) -> bool:
    import socket
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    main(sys.argv[1:])
