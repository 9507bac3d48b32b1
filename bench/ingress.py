"""Ingress benchmark: leads/s one API process takes through POST /v1/leads/batch (HTTP,
validation, Avro, Kafka with delivery reports), against a baseline that produces the same
events straight to Kafka with no HTTP and no validation.   ./dev bench ingress [--seconds S]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time

import httpx
import orjson
from confluent_kafka import Producer

from bench._common import cleanup, emit, env_for, free_port, isolated_settings, lead_bodies, prepare, run_id, say
from domain.identity import LeadIds, new_event_id
from domain.lead_input import LeadIn
from domain.submission import build_submitted
from schemas.codec import default_codec
from streams.settings import ROOT, load_tenants

BATCH = 1000


def bodies(tag: str, n_bodies: int) -> list[bytes]:
    leads = lead_bodies(BATCH * n_bodies, 11, tag)
    return [orjson.dumps({"leads": leads[i * BATCH:(i + 1) * BATCH]}) for i in range(n_bodies)]


async def load(url: str, key: str, payloads: list[bytes], seconds: float, conns: int) -> tuple[int, list[float], int]:
    """Post batches from `conns` connections for `seconds`; (leads taken, latencies, errors)."""
    taken, lat, errors = 0, [], 0
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {key}", "content-type": "application/json"}

    async def worker(i: int) -> None:
        nonlocal taken, errors
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:
            j = i
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                r = await c.post("/v1/leads/batch", content=payloads[j % len(payloads)], headers=headers)
                lat.append(time.perf_counter() - t0)
                if r.status_code == 202:
                    taken += BATCH
                else:
                    errors += 1
                j += conns
    t0 = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(conns)))
    return taken, lat, errors, time.monotonic() - t0


def baseline(s, n: int, tag: str) -> float:
    """leads/s produced straight to Kafka (encode + produce + delivery), same events."""
    tenant = load_tenants(s.tenants_file).tenants["jobsnearby"]
    subs = [build_submitted(LeadIn.model_validate(b), tenant, new_event_id(1, os.urandom(10)), 1, "bench",
                            ids=LeadIds(s.lead_id_secret))
            for b in lead_bodies(n, 11, tag)]
    p = Producer({"bootstrap.servers": s.kafka_bootstrap, "linger.ms": 5, "compression.type": "lz4",
                  "enable.idempotence": True, "acks": "all"})
    topic, enc = f"{s.topic_prefix}leads.submitted", default_codec().encode
    t0 = time.monotonic()
    for sub in subs:
        while True:
            try:
                p.produce(topic, enc("lead.submitted", sub), sub["lead_id"].encode())
                break
            except BufferError:
                p.poll(0.05)
    p.flush(60)
    return n / (time.monotonic() - t0)


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--connections", type=int, default=4)
    args = ap.parse_args(argv)
    rid = run_id()
    s = isolated_settings(f"bench{rid}i.", 5, f"bench{rid}i")
    port = free_port()
    s = s.model_copy(update={"api_port": port})
    key = load_tenants(s.tenants_file).demo_keys["jobsnearby"]
    prepare(s)
    env = {**env_for(s), "LEADSTREAM_API_PORT": str(port)}
    log = open(ROOT / ".stack" / "logs" / "bench-ingress.log", "ab")
    api = subprocess.Popen([sys.executable, "-m", "uvicorn", "runtime.api:create_app", "--factory",
                            "--port", str(port), "--no-access-log", "--loop", "uvloop", "--log-level", "warning"],
                           env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        payloads = bodies(rid, 20)
        say("warm-up")
        asyncio.run(load(url, key, payloads, 2, args.connections))
        say(f"posting batches of {BATCH} for {args.seconds:.0f}s over {args.connections} connections")
        taken, lat, errors, elapsed = asyncio.run(load(url, key, payloads, args.seconds, args.connections))
    finally:
        api.terminate()
        api.wait(30)
    say("baseline: the same events produced straight to Kafka")
    base = baseline(s, 100_000, rid)
    cleanup(s)
    value = taken / elapsed
    lat.sort()
    q = statistics.quantiles(lat, n=100)
    say(f"ingress {value:,.0f} leads/s   baseline {base:,.0f} leads/s   errors {errors}")
    emit({"bench": "ingress", "value": round(value), "unit": "leads/s", "baseline": round(base),
          "ratio": round(value / base, 3), "batch": BATCH, "requests": len(lat), "errors": errors,
          "p50_ms": round(q[49] * 1000, 1), "p99_ms": round(q[98] * 1000, 1), "connections": args.connections})


if __name__ == "__main__":
    main(sys.argv[1:])
