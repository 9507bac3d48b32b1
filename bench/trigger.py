"""./dev bench trigger [--rate 500] [--seconds 20] [--absent 300]

Trigger-to-send latency: product events offered through the API at a steady rate, each from a
lead the platform has (its state and data key made first, as ingress would have), each starting
a trigger whose email goes now; value = p99 ms from the API answering 202 for the event to the
SMTP server accepting the message (the write time of the message's file at Postfix's smtp-sink,
the MTA-grade server of ./dev bench send, in its own process). Also p50, the count delivered against the count expected (no loss, no
duplicates: one message per send id), and the lateness of absence timers (events whose
"absent within 2s" window closes while the load runs: p99 ms from the deadline to the
trigger firing).

baseline: the same messages (read back from the sink) pushed one at a time at the same rate
straight through channels.smtp_pool to the same server: p99 ms of delivery alone, the floor of
"accepted by the SMTP server". ratio = value / baseline (how much the event path adds).
machine_busy: the share of the machine's CPU (all cores, every process) busy while the events
were offered: near 1, the path waits for CPU, not for a timer or a batch window.
One API process and one worker of each agent (intake, triggers, sender_priority, retry).
"""
from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import re
import shutil
import sys
import time
from pathlib import Path

import aiohttp
import orjson

from bench._bare_smtp import dumped, read_dump, sink_folder, start_sink
from bench._common import busy_share, cpu_jiffies, emit, free_port, say, wait_until
from channels.base import EmailMessage
from channels.smtp_pool import SmtpPool
from domain.config_changes import Change
from domain.config_entities import Ref
from domain.intake import LeadState
from domain.triggers import trigger_send_id
from projections.redis_leads import lead_key
from stack.isolated import IsolatedPlatform
from streams.settings import ROOT
from streams.topic_tail import TopicTail

TENANT, LIST = "jobsnearby", "daily-jobs"
SEND = re.compile(rb"X-Leadstream-Send: ([0-9a-f]{24})")


def configure(p: IsolatedPlatform) -> None:
    """The bench's triggers: one that sends now, one that waits for an absence window."""
    from runtime.deps import build
    svc = build(p.settings).config_service
    tenant = svc.current(Ref("tenant", None, TENANT))
    data = {**tenant.data, "triggering": {"unknown_person": "reject", "per_day": 100, "per_week": 500,
                                          "quiet_hours": None, "max_property_bytes": 4096}}
    changes = [Change("replace", tenant.ref, data, tenant.version, actor="bench"),
               Change("create", Ref("trigger", TENANT, "bench-now"), {
                   "when": {"event": "bench_ping"}, "cooldown": "0s",
                   "action": {"template": "saved-job-reminder", "channel": "email"}}, None, actor="bench"),
               Change("create", Ref("trigger", TENANT, "bench-absent"), {
                   "when": {"event": "bench_started"}, "cooldown": "0s",
                   "conditions": [{"absent": {"event": "bench_done", "within": "2s"}}],
                   "action": {"template": "saved-job-reminder", "channel": "email"}}, None, actor="bench")]
    asyncio.run(svc.apply(changes))


def leads(n: int, tag: str) -> list[LeadState]:
    return [LeadState(TENANT, f"{tag}{i:016x}", "email", f"t{i}.{tag}@example.com", "accepted", lists=[LIST],
                      first_name="Sam", updated_ms=1, timezone="America/New_York",
                      profile={"zip": "10001", "keywords": ["warehouse"], "categories": []}) for i in range(n)]


async def data_keys(p: IsolatedPlatform, lead_ids: list[str]) -> None:
    """Each person's data key, made (and durable on privacy.keys) as the ingress makes it when
    the lead is first taken: a product event comes from a lead the platform has, whose key
    exists. (Without it the API made a key for every event, a Kafka write each, which no
    real person's second event costs.)"""
    from runtime.deps import build
    deps = build(p.settings)
    try:
        keys = deps.data_keys()
        for i in range(0, len(lead_ids), 1000):
            await keys.keys_for(TENANT, lead_ids[i:i + 1000], int(time.time() * 1000))
    finally:
        deps.producer.close(10)
        await deps.redis.aclose()


async def offer(api: str, key: str, people: list[LeadState], rate: int, name: str) -> dict[str, tuple[str, float]]:
    """One event per person at `rate` per second; send id -> (lead, wall-clock time of the 202).
    The client is aiohttp: httpx's client spent ~5 ms of CPU a request and, not the API, capped
    the offered rate near 150/s on this machine."""
    trigger = "bench-now" if name == "bench_ping" else "bench-absent"
    out: dict[str, tuple[str, float]] = {}
    failures: list[str] = []
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    async with aiohttp.ClientSession(api, connector=aiohttp.TCPConnector(limit=128), headers=headers) as client:
        async def one(state: LeadState) -> None:
            body = orjson.dumps({"lead_id": state.lead_id, "name": name, "properties": {"job_title": "Forklift Driver"}})
            async with client.post("/v1/events", data=body) as r:
                answer = await r.read()
                accepted = time.time()
            if r.status != 202:
                failures.append(f"{r.status} {answer[:200]!r}")
                return
            sid = trigger_send_id(TENANT, trigger, state.lead_id, orjson.loads(answer)["event_id"])
            out[sid] = (state.lead_id, accepted)
        tasks, start = [], time.perf_counter()
        for i, state in enumerate(people):
            due = start + i / rate
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(one(state)))
        await asyncio.gather(*tasks)
        took = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{len(failures)} events refused, e.g. {failures[:3]}")
    say(f"  offered {len(people):,} {name} events in {took:.1f}s ({len(people) / took:,.0f}/s)")
    return out


def arrivals(folder: Path) -> dict[str, list[float]]:
    """send id -> the times (s) the SMTP server wrote each message with that id."""
    out: dict[str, list[float]] = {}
    for path in dumped(folder):
        m = SEND.search(path.read_bytes()[:8000])
        if m:
            out.setdefault(m.group(1).decode(), []).append(path.stat().st_mtime_ns / 1e9)
    return out


def fired(p: IsolatedPlatform) -> tuple[list[float], dict[str, float]]:
    """ms from each absence deadline (cause + 2 s) to its trigger.fired, and when (s) each send id fired."""
    tail = TopicTail(p.settings.kafka_bootstrap, f"{p.prefix}triggers.events")
    events = tail.events(60)
    tail.close()
    late = [ev["occurred_at"].timestamp() * 1000 - (ev["cause_at"].timestamp() * 1000 + 2000)
            for name, ev in events if name == "trigger.fired" and ev["trigger"] == "bench-absent"]
    when = {ev["send_id"]: ev["occurred_at"].timestamp() for name, ev in events if name == "trigger.fired"}
    return late, when


def deferrals(p: IsolatedPlatform) -> dict[str, int]:
    """send.deferred by reason on the private sends.events (what made messages wait)."""
    tail = TopicTail(p.settings.kafka_bootstrap, f"{p.prefix}sends.events")
    events = tail.events(60)
    tail.close()
    out: dict[str, int] = {}
    for name, ev in events:
        if name == "send.deferred":
            reason = ev["reason"].split(":")[0]
            out[reason] = out.get(reason, 0) + 1
    return out


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


async def baseline(port: int, msgs: list[EmailMessage], rate: int) -> list[float]:
    """Each message alone through the SMTP pool at the same rate: ms until the server accepted it."""
    pool = SmtpPool("127.0.0.1", port, size=8)
    times: list[float] = []

    async def one(m: EmailMessage) -> None:
        t0 = time.perf_counter()
        [o] = await pool.send_many([m])
        assert o.ok, o
        times.append((time.perf_counter() - t0) * 1000)
    tasks, start = [], time.perf_counter()
    for i, m in enumerate(msgs):
        if (wait := start + i / rate - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(m)))
    await asyncio.gather(*tasks)
    await pool.close()
    return times


def read_back(folder: Path, limit: int) -> list[EmailMessage]:
    out = []
    for n, path in enumerate(sorted(dumped(folder))[:limit]):
        m = email.message_from_bytes(read_dump(path)[2], policy=email.policy.default)
        out.append(EmailMessage(f"base-{n:08d}", "alerts@jobsnearby.example", "Jobs Nearby", str(m["To"]),
                                str(m["Subject"]), m.get_body(("html",)).get_content(),
                                m.get_body(("plain",)).get_content(), {}))
    return out


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="./dev bench trigger")
    ap.add_argument("--rate", type=int, default=500, help="events offered per second")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--absent", type=int, default=300, help="absence timers started during the load")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of load first, not measured (template "
                                                             "compiles, connections, first fetches)")
    ap.add_argument("--redis-db", type=int, default=13)
    ap.add_argument("--senders", type=int, default=1, help="sender_priority workers")
    args = ap.parse_args(argv)
    n = int(args.rate * args.seconds)
    folder = sink_folder("leadstream-bench-trigger-")
    port = free_port()
    sink = start_sink(folder, port)
    try:
        wait_until(lambda: _open(port), 20)
        env = {"LEADSTREAM_SMTP_PORT": str(port)}
        agents = ("intake", "triggers", "sender_priority", "retry")
        with IsolatedPlatform(args.redis_db, agents=agents, env=env, fronts=("api",),
                              fixed={"sender_priority": args.senders}) as p:
            configure(p)
            time.sleep(3)  # the workers read the configuration change
            tag = p.tag[:8]
            warm = int(args.rate * args.warmup)
            people = leads(n + args.absent + warm, tag)
            for i in range(0, len(people), 20_000):
                p.redis.mset({lead_key(s.tenant, s.lead_id): orjson.dumps(s) for s in people[i:i + 20_000]})
            asyncio.run(data_keys(p, [s.lead_id for s in people]))
            key = _demo_key()
            say(f"{n:,} product events at {args.rate}/s through the API, each sending one email now; "
                f"{args.absent} absence timers (2 s) started alongside")

            if warm:
                say(f"warm-up: {warm:,} events at {args.rate}/s, not measured")
                warmed = asyncio.run(offer(p.api_url, key, people[n + args.absent:], args.rate, "bench_ping"))
                wait_until(lambda: len(arrivals(folder)) >= len(warmed), 120, 0.5)
                for f in dumped(folder):
                    f.unlink()

            async def load():
                return await asyncio.gather(offer(p.api_url, key, people[:n], args.rate, "bench_ping"),
                                            offer(p.api_url, key, people[n:n + args.absent],
                                                  max(1, args.absent // 10),
                                                  "bench_started"))
            before = cpu_jiffies()
            sent, absent = asyncio.run(load())
            busy = busy_share(before, cpu_jiffies())
            expected = {**sent, **absent}
            wait_until(lambda: len(arrivals(folder)) >= len(expected), 300, 1.0)
            time.sleep(3)  # anything sent twice would land now
            got = arrivals(folder)
            lateness, fired_at = fired(p)
            waited = deferrals(p)
        order = sorted((at, sid) for sid, (_, at) in sent.items() if sid in got)
        latencies = [(min(got[sid]) - at) * 1000 for at, sid in order]
        engine = [(fired_at[sid] - at) * 1000 for at, sid in order if sid in fired_at]
        say(f"  of which the trigger engine (API 202 -> trigger.fired): p50 {pct(engine, 0.5):.0f} ms, "
            f"p99 {pct(engine, 0.99):.0f} ms; the rest is sends.priority -> sender -> SMTP")
        tenth = max(1, len(latencies) // 10)
        say(f"  over the run: p50 of the first tenth {pct(latencies[:tenth], 0.5):.0f} ms, of the last tenth "
            f"{pct(latencies[-tenth:], 0.5):.0f} ms")
        dupes = sum(len(v) - 1 for v in got.values())
        unexpected = len(set(got) - set(expected))
        value, p50 = pct(latencies, 0.99), pct(latencies, 0.50)
        say(f"  delivered {len(got):,} of {len(expected):,} expected; duplicates {dupes}; unexpected {unexpected}; "
            f"sends deferred on the way: {waited or 'none'}")
        say(f"  the machine's CPU {busy:.0%} busy while the events were offered (all cores, every process)")
        say(f"  trigger-to-SMTP: p50 {p50:.0f} ms, p99 {value:.0f} ms; absence timers fired p99 "
            f"{pct(lateness, 0.99):.0f} ms after their deadline ({len(lateness)} fired)")
        say("baseline: the same messages, one at a time at the same rate, straight to the SMTP server")
        msgs = read_back(folder, n)
        for f in dumped(folder):
            f.unlink()
        base = asyncio.run(baseline(port, msgs, args.rate))
        say(f"  bare SMTP delivery: p50 {pct(base, 0.5):.0f} ms, p99 {pct(base, 0.99):.0f} ms")
    finally:
        sink.terminate()
        sink.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
    emit({"bench": "trigger", "value": round(value), "unit": "ms p99 API 202 -> SMTP accepted",
          "baseline": round(pct(base, 0.99)), "ratio": round(value / max(pct(base, 0.99), 1e-9), 2),
          "p50_ms": round(p50), "target_ms": 200, "offered_per_s": args.rate, "events": n,
          "expected": len(expected), "delivered": len(set(got) & set(expected)), "duplicates": dupes,
          "unexpected": unexpected, "absence_timers": len(lateness),
          "absence_lateness_p99_ms": round(pct(lateness, 0.99)), "deferred": waited, "engine_p50_ms": round(pct(engine, 0.5)), "engine_p99_ms": round(pct(engine, 0.99)), "absence_lateness_p50_ms": round(pct(lateness, 0.5)), "senders": args.senders,
          "machine_busy": busy})


def _demo_key() -> str:
    """jobsnearby's demo API key from the tenant file."""
    import yaml
    doc = yaml.safe_load((ROOT / "tenants" / "demo.yaml").read_text())
    return doc["tenants"][TENANT]["demo_key"]


def _open(port: int) -> bool:
    import socket
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    main(sys.argv[1:])
