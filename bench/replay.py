"""Replay benchmark: seconds to rebuild fresh Redis read models and a fresh ClickHouse from
~1 M events in the topics, with the rebuilt state checked equal to the live one.
./dev bench replay [--events N]

The mix: lead submissions decided live by the intake agent (leads.submitted + leads.events,
~42 %), the sends made for the accepted ones (send.requested, dispatched, delivered: ~48 %)
and their opens and clicks (~10 %). One live worker (intake + analytics) projects them into
Redis and ClickHouse; then runtime.replay rebuilds both into an empty Redis DB and another
ClickHouse database, timed. Baseline: a bare consume + decode of the same topics.
Checked: every lead read model and opt-out equal; ClickHouse counts per event type equal.
"""
from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import sys
import time

import redis
from confluent_kafka import Producer
from rich.progress import Progress

from bench._common import cleanup, emit, env_for, isolated_settings, lead_bodies, prepare, run_id, say, wait_until
from bench.pipeline import encoded_events, fill
from domain.identity import LeadIds, new_event_id
from runtime import replay
from runtime.deps import build
from schemas.codec import SCHEMA_DIR, default_codec
from streams.settings import ROOT
from streams.topics import ENGAGEMENT_EVENTS, SEND_EVENTS, SENDS_BULK

LIVE_DB, REPLAY_DB = 30, 31


def example(name: str) -> dict:
    agg, event = name.split(".", 1)
    newest = sorted((SCHEMA_DIR / agg / "examples").glob(f"{event}.v*.json"), key=lambda p: int(p.stem.split("v")[-1]))
    return json.loads(newest[-1].read_text())


def send_events(n_leads: int, tag: str, now_ms: int, ids: LeadIds) -> list[tuple[str, bytes, bytes]]:
    """(topic, key, value): for the leads of the first n_leads valid bodies, a send requested,
    dispatched and delivered; a quarter opened, an eighth clicked."""
    enc, out = default_codec().encode, []
    shapes = {n: example(n) for n in ("send.requested", "send.dispatched", "send.delivered",
                                      "engagement.opened", "engagement.clicked")}
    topics = {"send.requested": SENDS_BULK, "send.dispatched": SEND_EVENTS, "send.delivered": SEND_EVENTS,
              "engagement.opened": ENGAGEMENT_EVENTS, "engagement.clicked": ENGAGEMENT_EVENTS}
    for i, body in enumerate(lead_bodies(n_leads, 7, tag)):
        email = body["email"].lower()
        if "@example.com" not in email:
            continue
        lid, send_id = ids.of("jobsnearby", "email", email), os.urandom(12).hex()
        names = ["send.requested", "send.dispatched", "send.delivered"]
        names += ["engagement.opened"] * (i % 4 == 0) + ["engagement.clicked"] * (i % 8 == 0)
        for step, name in enumerate(names):
            ev = copy.deepcopy(shapes[name])
            at = now_ms - 3_600_000 + step * 60_000
            ev.update(event_id=new_event_id(at, os.urandom(10)), occurred_at=at, lead_id=lid, send_id=send_id,
                      list=body["list"])
            if "local_date" in ev:
                ev.update(due_at=at, local_date=time.strftime("%Y-%m-%d", time.gmtime(at / 1000)),
                          kind="daily", trigger=None, template="", context="")
            out.append((topics[name], lid.encode(), enc(name, ev)))
    return out


def produce(s, records) -> None:
    p = Producer({"bootstrap.servers": s.kafka_bootstrap, "linger.ms": 20, "compression.type": "lz4"})
    for topic, key, value in records:
        while True:
            try:
                p.produce(f"{s.topic_prefix}{topic}", value, key)
                break
            except BufferError:
                p.poll(0.1)
    assert p.flush(60) == 0


def counts_by_type(s) -> dict[str, int]:
    ch = build(s).clickhouse()
    return dict(ch.execute(f"SELECT event_type, count() FROM {s.clickhouse_database}.events GROUP BY event_type"))


def run_live(s, expected_min: int) -> None:
    """One worker (intake + analytics) until ClickHouse holds every event and stops growing."""
    import subprocess
    log = open(ROOT / ".stack" / "logs" / "bench-replay.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "runtime.worker", "intake,analytics"], env=env_for(s),
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    last = [-1, time.monotonic()]

    def settled() -> bool:
        n = sum(counts_by_type(s).values())
        if n != last[0]:
            last[:] = [n, time.monotonic()]
            return False
        return n >= expected_min and time.monotonic() - last[1] > 15
    try:
        wait_until(settled, 1800, 2)
    finally:
        proc.terminate()
        proc.wait(60)


def redis_state(url: str) -> dict:
    r = redis.Redis.from_url(url)
    leads = {k: json.loads(r.get(k)) for k in r.scan_iter("ls:lead:*", count=5000)}
    optouts = {k: r.smembers(k) for k in r.scan_iter("ls:optout:*", count=5000)}
    return {"leads": leads, "optouts": optouts}


def bare_read(s) -> float:
    """Seconds to consume and decode every event of the replayed topics, doing nothing else."""
    deps = build(s)
    topics = sorted({deps.topic(t) for t in replay.ANALYTICS_TOPICS} | {deps.topic(replay.LEAD_EVENTS)})
    t0 = time.monotonic()
    _, msgs = replay.read_topics(deps, topics)
    decode = deps.codec.decode
    for _, _, _, value in msgs:
        decode(value)
    return time.monotonic() - t0


def timed_replay(s) -> tuple[float, dict]:
    deps = build(s)
    deps.use_bulk_redis()  # as runtime.replay's main does
    t0 = time.monotonic()
    with Progress(disable=True) as progress:
        out = replay.run_replay(deps, progress)  # Redis here, ClickHouse in a child, at once
    return time.monotonic() - t0, out


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    rid = run_id()
    live = isolated_settings(f"bench{rid}r.", LIVE_DB, f"bench{rid}r")
    rebuilt = isolated_settings(f"bench{rid}r.", REPLAY_DB, f"bench{rid}rr")
    n_leads = int(args.events * 0.21)
    try:
        prepare(live)
        prepare(rebuilt, intact=False)  # an empty Redis DB with the configuration, as after a wipe
        say(f"filling the topics: {n_leads:,} lead submissions, their sends and engagement")
        fill(live, encoded_events(n_leads, rid))
        produce(live, send_events(n_leads, rid, int(time.time() * 1000), LeadIds(live.lead_id_secret)))
        say("live: one worker (intake + analytics) projects every event")
        t0 = time.monotonic()
        run_live(live, int(args.events * 0.9))
        live_counts = counts_by_type(live)
        say(f"live projections settled in {time.monotonic() - t0:.0f}s: {sum(live_counts.values()):,} events")
        say("baseline: a bare consume + decode of the same topics")
        base = bare_read(live)
        say("replay: runtime.replay into an empty Redis DB and a fresh ClickHouse database")
        seconds, out = timed_replay(rebuilt)
        replayed_counts = counts_by_type(rebuilt)
        live_state, replayed_state = redis_state(live.redis_url), redis_state(rebuilt.redis_url)
    finally:
        cleanup(live)
        cleanup(rebuilt)
    diff_leads = sum(1 for k in live_state["leads"].keys() | replayed_state["leads"].keys()
                     if live_state["leads"].get(k) != replayed_state["leads"].get(k))
    equal = (diff_leads == 0 and live_state["optouts"] == replayed_state["optouts"]
             and live_counts == replayed_counts)
    events = out["clickhouse"]["events"]
    say(f"replayed {events:,} events in {seconds:.1f}s (bare read {base:.1f}s); leads {len(live_state['leads']):,}, "
        f"differing {diff_leads}; ClickHouse counts equal: {live_counts == replayed_counts}")
    if live_counts != replayed_counts:
        say(f"live {live_counts}\nreplayed {replayed_counts}")
    emit({"bench": "replay", "value": round(seconds, 1), "unit": "s", "baseline": round(base, 1),
          "ratio": round(seconds / base, 2), "target": 60, "events": events,
          "leads": len(live_state["leads"]), "lead_models_differing": diff_leads, "state_equal": equal,
          "redis_events": out["redis"]["events"], "redis_phases_s": out["redis"]["seconds"],
          "clickhouse_s": out["clickhouse"]["seconds"]})
    if not equal:
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
