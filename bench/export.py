"""./dev bench export [--events 20000] [--runs 5]

Seconds to export one person with a year of history (target < 60 s), on the running platform.
One lead is submitted through the API; a year of its history is written straight into
ClickHouse (the setup is not measured): --events rows of a realistic mix (daily alerts requested,
dispatched, delivered, opened, clicked; product events; consent records sealed with the lead's
data key). Then POST /v1/subjects/export as a brand admin, --runs times.

value = median seconds of the export; baseline = median seconds of the bare ClickHouse read of
the same rows (SELECT payload ... + JSON parse) in this process; ratio = baseline / value.
Also: events (in the document), sealed_opened (consent ips the export opened), bytes.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from datetime import datetime, timezone

import httpx
import redis
import orjson

from bench._common import emit, say, wait_until
from domain.identity import LeadIds, new_event_id
from domain.sealing import seal_event
from projections.clickhouse import EventsWriter
from projections.event_rows import event_row
from runtime.deps import build
from stack.demo_logins import demo_logins
from streams.settings import get_settings, load_tenants

TENANT = "jobsnearby"
MIX = (("send.requested", 0.18), ("send.dispatched", 0.18), ("send.delivered", 0.17), ("engagement.opened", 0.15),
       ("engagement.clicked", 0.07), ("product.tracked", 0.22), ("consent.given", 0.03))


def _history(lid: str, address: str, n: int, dek: bytes, now_ms: int) -> list[tuple[str, dict]]:
    year_ms, out = 365 * 86_400_000, []
    kinds = [k for k, share in MIX for _ in range(int(share * 100))]
    for i in range(n):
        at = now_ms - year_ms + i * year_ms // n
        kind = kinds[i % len(kinds)]
        ev = {"event_id": new_event_id(at, os.urandom(10)), "tenant": TENANT, "occurred_at": at,
              "schema": f"{kind}@1", "causation_id": None, "source": "bench", "lead_id": lid, "channel": "email",
              "list": "daily-jobs", "partner": "ziprecruiter", "send_id": f"s-{i // 5}", "address": address}
        if kind == "product.tracked":
            ev |= {"name": "job_viewed", "properties": orjson.dumps({"job": f"J{i}", "source": "search"}).decode()}
        if kind == "consent.given":
            ev = seal_event(kind, ev | {"purpose": "marketing", "at": at, "via": "signup_form",
                                        "text": "Jobs by email", "ip": f"203.0.113.{i % 250}"}, dek,
                            lambda: os.urandom(12))
        out.append((kind, ev))
    return out


def main() -> None:
    p = argparse.ArgumentParser(prog="./dev bench export")
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    s = get_settings()
    deps = build(s)
    role, email, password = next(x for x in demo_logins(s.tenants_file) if x[0] == "brand_admin")
    client = httpx.Client(base_url=s.api_url, timeout=120)
    r = client.post("/v1/session", json={"email": email, "password": password})
    r.raise_for_status()
    client.headers["X-CSRF-Token"] = r.json()["csrf"]
    address = f"export.{uuid.uuid4().hex[:8]}@example.com"
    key = load_tenants(s.tenants_file).demo_keys[TENANT]
    r = httpx.post(f"{s.api_url}/v1/leads", json={"email": address, "partner": "ziprecruiter", "list": "daily-jobs"},
                   headers={"Authorization": f"Bearer {key}"}, timeout=30)
    r.raise_for_status()
    lid = LeadIds(s.lead_id_secret).of(TENANT, "email", address)
    sync_redis = redis.Redis.from_url(s.redis_url)
    wait_until(lambda: sync_redis.exists(f"ls:lead:{TENANT}:{lid}"), 60, 0.2)

    async def dek() -> bytes:
        d = build(s)
        try:
            return (await d.data_keys().keys_for(TENANT, [lid], int(time.time() * 1000)))[lid]
        finally:
            await d.redis.aclose()
            d.producer.close()
    say(f"writing a year of history for one lead: {args.events:,} events into ClickHouse")
    ch = deps.clickhouse()
    writer = EventsWriter(ch, s.clickhouse_database)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    for offset, (kind, ev) in enumerate(_history(lid, address, args.events, asyncio.run(dek()),
                                                 int(time.time() * 1000))):
        writer.submit(event_row(kind, ev, "bench.export", 0, offset, now))
    writer.flush()

    def bare() -> float:
        t0 = time.perf_counter()
        rows = ch.execute(f"SELECT payload FROM {s.clickhouse_database}.events PREWHERE tenant = %(t)s "
                          f"AND lead_id = %(l)s", {"t": TENANT, "l": lid})
        [orjson.loads(x) for (x,) in rows]
        return time.perf_counter() - t0

    def export() -> tuple[float, dict, int]:
        t0 = time.perf_counter()
        r = client.post("/v1/subjects/export", json={"email": address})
        r.raise_for_status()
        return time.perf_counter() - t0, r.json(), len(r.content)
    export()  # warm
    timed = [export() for _ in range(args.runs)]
    base = statistics.median(bare() for _ in range(args.runs))
    value = statistics.median(t for t, _, _ in timed)
    doc = timed[-1][1]["leads"][0]
    opened = sum(1 for e in doc["events"] if e["event_type"] == "consent.given"
                 and str(e["payload"].get("ip", "")).startswith("203.0.113."))
    say(f"export of {len(doc['events']):,} events: {value:.2f} s (bare read {base:.2f} s)")
    emit({"bench": "export", "value": round(value, 3), "unit": "s", "baseline": round(base, 3),
          "ratio": round(base / value, 3), "events": len(doc["events"]), "sealed_opened": opened,
          "bytes": timed[-1][2]})


if __name__ == "__main__":
    main()
