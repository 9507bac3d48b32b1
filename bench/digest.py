"""./dev bench digest [--members 1000000] [--items 5000000] [--inactive 0.1] [--priority 0.2]

Members digested per second: one group of --members members (a tenth not seen for 100+ days,
a fifth seen within the week) and --items activity items over the week before the send time,
kept by the digest store as the activity agent keeps them (written straight to Redis: the setup
is not measured). A weekly digest of the group is defined through the control plane; the test
clock moves the planner to the send time and the platform's own workers (one activity worker,
which plans, and one worker per digest path) digest the run into send.requested on sends.bulk.

value = members digested (priority + standard) / seconds from the run planned to its last
chunk settled. Also:
  peak_rss_mb   the largest RSS of the digest workers (sampled every 0.2 s; target < 300 MB, and
                flat in the number of members: run with --members 100000 to compare)
  duplicates    send.requested of the run for a member already asked for (must be 0), counted
                from the topic by member (the message key)
  lateness_p99_s  p99 of (the request's Kafka time - the members' local send time)
  priority_s / standard_s  when each path finished, from the send time
  left_out      inactive members left out of the (large) run

baseline: a bare loop over the same snapshot in the same process shape: pages of 1,000
members read from Redis, the same send.requested built and Avro-encoded, produced by a plain
confluent-kafka producer. ratio = value / baseline.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import sys
import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
import redis as sync_redis
import redis.asyncio as aioredis
from confluent_kafka import Consumer, Producer, TopicPartition

from bench._common import emit, say, wait_until
from bench.soak import rss_mb
from domain.config_changes import Change
from domain.config_entities import Ref
from domain.digests import DAY_MS, HOUR_MS, DigestConfig, Item, Period, digest_context, latest_period, run_id, send_request
from projections.redis_digests import DigestStore
from schemas.codec import default_codec
from stack.isolated import IsolatedPlatform

TENANT, GROUP, TZ, DIGEST = "jobsnearby", "big-community", "America/Chicago", "bench-weekly"
AGENTS = ("activity", "digests_priority", "digests_standard")


def configure(p: IsolatedPlatform, send_time: str, weekday: str) -> DigestConfig:
    from runtime.deps import build
    svc = build(p.settings).config_service
    cfg = {"list": "daily-jobs", "template": "digest", "cadence": "weekly", "weekday": weekday,
           "send_time": send_time, "top_k": 5, "group_kinds": ["community"], "catch_up_hours": 2}
    changes = [Change("create", Ref("template", TENANT, "digest"), {"channel": "email"}, None, actor="bench"),
               Change("create", Ref("digest", TENANT, DIGEST), cfg, None, actor="bench")]
    asyncio.run(svc.apply(changes))
    return DigestConfig.model_validate(cfg)


async def load(url: str, members: int, items: int, inactive: float, priority: float, send_at: int,
               seed: int = 11) -> None:
    """The group's members and the week's items, written as the activity agent writes them."""
    rng = random.Random(seed)
    client = aioredis.Redis.from_url(url)
    store = DigestStore(client)
    changes = []
    joined = send_at - 400 * DAY_MS  # everyone a member for a year; last seen as drawn
    for n in range(members):
        roll = rng.random()
        seen = (send_at - rng.randint(100, 300) * DAY_MS if roll < inactive
                else send_at - rng.randint(0, 6 * DAY_MS) if roll < inactive + priority
                else send_at - rng.randint(8 * DAY_MS, 80 * DAY_MS))
        changes += [("join", f"m{n:07d}", GROUP, "community", TZ, joined), ("seen", f"m{n:07d}", "", "", "", seen)]
        if len(changes) >= 5000:
            await store.change_memberships(TENANT, changes)
            changes = []
            if n % 200_000 < 5000:
                say(f"members: {n + 1:,}")
    await store.change_memberships(TENANT, changes)
    week = 7 * DAY_MS
    batch = []
    for n in range(items):
        at = send_at - week + rng.randint(0, week - HOUR_MS - 1)
        batch.append(Item(f"it{n:08d}", GROUP, round(rng.random() * 1000, 3), at, f"Post {n}",
                          f"https://community.example/p/{n}", ""))
        if len(batch) == 10_000:
            await store.post_items(TENANT, batch)
            batch = []
            if n % 1_000_000 < 10_000:
                say(f"items: {n + 1:,}")
    await store.post_items(TENANT, batch)
    await client.aclose()


def sample_rss(p: IsolatedPlatform, stop: threading.Event, peak: dict) -> None:
    while not stop.is_set():
        for agent in ("digests_priority", "digests_standard"):
            for w in p.supervisor.workers(agent):
                mb = rss_mb(w["pid"]) or 0
                peak[agent] = max(peak.get(agent, 0), mb)
        stop.wait(0.2)


def requests_of(p: IsolatedPlatform, send_at: int) -> tuple[int, int, list[float]]:
    """(requests, distinct members, lateness in s of each) on sends.bulk."""
    name = f"{p.prefix}sends.bulk"
    c = Consumer({"bootstrap.servers": p.settings.kafka_bootstrap, "group.id": f"bench-digest-{p.tag}",
                  "enable.auto.commit": False})
    keys, late, total = set(), [], 0
    for part in c.list_topics(name, timeout=10).topics[name].partitions:
        lo, hi = c.get_watermark_offsets(TopicPartition(name, part), timeout=10)
        c.assign([TopicPartition(name, part, lo)])
        got = 0
        while got < hi - lo:
            for m in c.consume(10_000, timeout=2):
                if m.error():
                    continue
                got += 1
                total += 1
                keys.add(m.key())
                late.append(m.timestamp()[1] / 1000 - send_at / 1000)
    c.close()
    return total, len(keys), late


def bare(url: str, p: IsolatedPlatform, run: str, cfg: DigestConfig, period: Period, members: int) -> float:
    """Members / s of the bare loop over the run's snapshot (both paths)."""
    r = sync_redis.Redis.from_url(url)
    codec = default_codec()
    producer = Producer({"bootstrap.servers": p.settings.kafka_bootstrap, "linger.ms": 5, "acks": "all"})
    topic = f"{p.prefix}bench.bare"
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": p.settings.kafka_bootstrap})
    for f in admin.create_topics([NewTopic(topic, p.settings.partitions, 1)]).values():
        f.result(30)
    items = [Item(f"x{n}", GROUP, float(n), period.send_at_ms - HOUR_MS, f"Post {n}", f"https://c.example/{n}")
             for n in range(cfg.top_k)]
    context = orjson.dumps(digest_context(DIGEST, period, items)).decode()
    t0, done = time.perf_counter(), 0
    for path in ("priority", "standard"):
        start = 0
        while True:
            page = r.zrange(f"ls:dgsnap:{run}:{path}", start, start + 999, withscores=True)
            if not page:
                break
            groups = r.pipeline(transaction=False)
            for lead, _ in page:
                groups.zrange(f"ls:dgmem:{TENANT}:{lead.decode()}", 0, -1, withscores=True)
            groups.execute()
            for lead, _ in page:
                lid = lead.decode()
                ev = send_request(TENANT, DIGEST, cfg, lid, "", period, items, run, "2026-01-01",
                                  int(time.time() * 1000), context)
                producer.produce(topic, codec.encode("send.requested", ev), lid.encode())
                producer.poll(0)
            done += len(page)
            start += 1000
    producer.flush(60)
    return done / (time.perf_counter() - t0)


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="./dev bench digest")
    ap.add_argument("--members", type=int, default=1_000_000)
    ap.add_argument("--items", type=int, default=5_000_000)
    ap.add_argument("--inactive", type=float, default=0.1)
    ap.add_argument("--priority", type=float, default=0.2)
    ap.add_argument("--redis-db", type=int, default=33)
    args = ap.parse_args(argv)
    env = {"LEADSTREAM_TEST_CLOCK": "1", "LEADSTREAM_DIGEST_TICK_S": "1"}
    with IsolatedPlatform(args.redis_db, agents=AGENTS, env=env, metrics=True,
                          fixed={"digests_priority": 1, "digests_standard": 1}) as p:
        url = p.settings.redis_url
        send_at = (int(time.time() * 1000) // HOUR_MS + 3) * HOUR_MS  # three hours ahead, on the hour
        local = datetime.fromtimestamp(send_at / 1000, ZoneInfo(TZ))
        hhmm = local.strftime("%H:%M")
        cfg = configure(p, hhmm, ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[local.weekday()])
        period = latest_period(cfg, TZ, send_at)
        if period.send_at_ms != send_at:
            sys.exit(f"the bench's send time {hhmm} {TZ} did not fall on {send_at}: {period}")
        say(f"loading {args.members:,} members and {args.items:,} items (not measured)")
        t0 = time.monotonic()
        asyncio.run(load(url, args.members, args.items, args.inactive, args.priority, send_at))
        say(f"loaded in {time.monotonic() - t0:.0f} s; moving the clock to the send time")
        run = run_id(TENANT, DIGEST, TZ, period.key)
        r = sync_redis.Redis.from_url(url)
        stop, peak = threading.Event(), {}
        sampler = threading.Thread(target=sample_rss, args=(p, stop, peak), daemon=True)
        sampler.start()
        skew = send_at - int(time.time() * 1000)  # the platform's clock jumps to the send time
        r.set("ls:clockskew", skew)
        h = wait_until(lambda: (h := {k.decode(): v.decode() for k, v in r.hgetall(f"ls:dgrun:{run}").items()})
                       .get("finished_at") and h, timeout=3600, every=0.5)
        stop.set()
        sampler.join()
        members = int(h["members"])
        seconds = (int(h["finished_at"]) - int(h["planned_at"])) / 1000
        value = members / seconds
        total, distinct, late = requests_of(p, send_at - skew)  # Kafka's times are the real clock's
        late.sort()
        say(f"digested {members:,} members in {seconds:.1f} s; measuring the bare loop")
        baseline = bare(url, p, run, cfg, period, members)
        pri_done = int(h.get("priority_done_at") or h["finished_at"])
        emit({"bench": "digest", "value": round(value, 1), "unit": "members/s", "baseline": round(baseline, 1),
              "ratio": round(value / baseline, 3), "members": members, "requested": int(h["requested"]),
              "nothing_new": int(h["nothing_new"]), "left_out": int(h["left_out"]),
              "priority": int(h["priority"]), "standard": int(h["standard"]),
              "seconds": round(seconds, 1), "peak_rss_mb": round(max(peak.values(), default=0), 1),
              "peak_rss_by_path_mb": {k: round(v, 1) for k, v in peak.items()},
              "duplicates": total - distinct, "requests_on_topic": total,
              "lateness_p99_s": round(late[int(0.99 * (len(late) - 1))], 1) if late else None,
              "priority_s": round((pri_done - send_at) / 1000, 1),
              "standard_s": round((int(h["finished_at"]) - send_at) / 1000, 1),
              "items": args.items, "inactive_share": args.inactive})


if __name__ == "__main__":
    main(sys.argv[1:])
