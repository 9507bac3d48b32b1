"""Shared set-up for benchmarks: isolated topics, Redis DBs and ClickHouse databases."""
from __future__ import annotations

import json
import os
import random
import socket
import sys
import time
import uuid

from streams.settings import ROOT, Settings, get_settings


def run_id() -> str:
    return uuid.uuid4().hex[:6]


def isolated_settings(prefix: str, redis_db: int, ch_db: str) -> Settings:
    base = get_settings()
    url = base.redis_url.rsplit("/", 1)[0] + f"/{redis_db}"
    return base.model_copy(update={"topic_prefix": prefix, "redis_url": url, "clickhouse_database": ch_db})


def env_for(s: Settings) -> dict[str, str]:
    """Environment that makes a child process build exactly these settings."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "LEADSTREAM_TOPIC_PREFIX": s.topic_prefix,
            "LEADSTREAM_REDIS_URL": s.redis_url, "LEADSTREAM_CLICKHOUSE_DATABASE": s.clickhouse_database,
            "LEADSTREAM_BATCH_SIZE": str(s.batch_size)}


def prepare(s: Settings, intact: bool = True) -> None:
    """Topics under the prefix (the demo tenant file imported into its configuration topic), a
    fresh ClickHouse database, an empty Redis DB with the blocklist, marked as holding the
    platform's state (`intact`, as runtime.bootstrap marks an empty log; a DB the replay is to
    rebuild stays unmarked until the replay marks it)."""
    import asyncio

    from projections.clickhouse import migrate
    from projections.redis_keys import INTACT
    from runtime.bootstrap import blocklist_entries, create_topics, seed_config
    from runtime.deps import build
    create_topics(s)
    deps = build(s)
    ch = deps.clickhouse()
    ch.execute(f"DROP DATABASE IF EXISTS {s.clickhouse_database}")
    migrate(ch, s.clickhouse_database)

    async def reset_redis():
        await deps.redis.flushdb()
        await seed_config(deps)
        await deps.leads.sync_blocklist(blocklist_entries(deps))
        if intact:
            await deps.redis.set(INTACT, "bench")
    asyncio.run(reset_redis())


def cleanup(s: Settings) -> None:
    """Drop what a benchmark made: its topics, ClickHouse database and Redis DB."""
    import redis
    from confluent_kafka.admin import AdminClient

    from runtime.deps import build
    admin = AdminClient({"bootstrap.servers": s.kafka_bootstrap})
    mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(s.topic_prefix)]
    if mine and s.topic_prefix:
        for f in admin.delete_topics(mine, operation_timeout=30).values():
            try:
                f.result()
            except Exception:
                pass
    build(s).clickhouse().execute(f"DROP DATABASE IF EXISTS {s.clickhouse_database}")
    redis.Redis.from_url(s.redis_url).flushdb()


def lead_bodies(n: int, seed: int, tag: str) -> list[dict]:
    """n realistic lead bodies for the demo tenant jobsnearby: ~80 % valid and new, ~10 %
    duplicates, ~10 % invalid or disposable."""
    rnd = random.Random(seed)
    first = ["ann", "bob", "carla", "dev", "eli", "fay", "gus", "hana", "ivan", "jo"]
    lists = ["daily-jobs", "warehouse"]
    partners = ["indeed-xml", "ziprecruiter", "careerbuilder", "landing-page"]
    out = []
    for i in range(n):
        roll = rnd.random()
        if roll < 0.10 and i > 10:
            j = rnd.randrange(i)
            email = f"{first[j % 10]}.{j}.{tag}@example.com"
        elif roll < 0.15:
            email = f"{first[i % 10]}.{i}.{tag}@mailinator.com"
        elif roll < 0.20:
            email = f"{first[i % 10]}.{i}.{tag}@@broken"
        else:
            email = f"{first[i % 10]}.{i}.{tag}@example.com"
        out.append({"email": email, "first_name": first[i % 10].title(), "partner": rnd.choice(partners),
                    "list": rnd.choice(lists), "location": {"zip": f"{10001 + i % 900:05d}", "country": "US"},
                    "interests": {"keywords": ["warehouse", "forklift"][: 1 + i % 2], "categories": ["logistics"]},
                    "attribution": {"utm_source": rnd.choice(["fb", "google", "email"])}})
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_jiffies() -> tuple[int, int]:
    """(busy, all) CPU time of the whole machine so far, every core (/proc/stat's first line)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of the machine's CPU time busy between two cpu_jiffies() readings (0..1)."""
    return round((after[0] - before[0]) / max(1, after[1] - before[1]), 3)


def emit(result: dict) -> None:
    """Print the benchmark's JSON line (always the last line of output)."""
    print(json.dumps(result), flush=True)


def say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def wait_until(fn, timeout: float, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(every)
    raise TimeoutError("benchmark condition not reached")
