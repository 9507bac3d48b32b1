"""Tracking benchmark: how many redirects one tracking-front process answers, and its server
time for redirects and pixels at a fixed 2,000 requests/s.   ./dev bench tracking [--seconds S]

Data: 20,000 link records (10,000 job links, 10,000 pixels) in a private Redis DB, codes
requested at random (so the front's cache is cold at first, then warm). Each answered request
also becomes an engagement.hit on a private topic; the benchmark counts them in Kafka.

- value: redirects/s at saturation, driven by wrk (C, one thread, 64 connections)
- baseline: the same wrk load on a bare ASGI app on the same server stack (uvicorn,
  httptools, uvloop) that answers a fixed 302 without looking anything up or recording it
- p50_ms / p99_ms: server time per request (request in -> response written, measured inside
  the front) for redirects and for pixels, at 2,000 requests/s offered by a paced client
"""
from __future__ import annotations

import argparse
import asyncio
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
import redis
from confluent_kafka import Consumer, TopicPartition

from bench._common import cleanup, emit, env_for, free_port, isolated_settings, prepare, run_id, say
from domain.links import signed_code
from streams.settings import ROOT

N_LINKS = 10_000
RATE = 2000


async def bare_app(scope, receive, send):
    """The baseline: a fixed redirect, nothing looked up, nothing recorded."""
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 302,
                "headers": [(b"location", b"https://jobs.example.com/indeed/1"), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


def seed(s, rid: str) -> tuple[list[str], list[str]]:
    """Link records for N_LINKS job links and N_LINKS pixels; their paths."""
    r = redis.Redis.from_url(s.redis_url)
    key = s.link_key_ring[0]
    clicks, opens = [], []
    pipe = r.pipeline(transaction=False)
    for i in range(2 * N_LINKS):
        code = signed_code(10**9 + i, key)
        kind = "click" if i < N_LINKS else "open"
        rec = {"code": code, "kind": kind, "send_id": f"bench-{rid}-{i // 5}", "tenant": "jobsnearby",
               "lead_id": f"lead{i // 5:07d}", "destination_url": f"https://jobs.example.com/indeed/{i}" if kind == "click" else "",
               "job_key": f"jobsnearby:indeed:{i}" if kind == "click" else "", "position": 1, "cpc_cents": 35,
               "list": "daily-jobs", "template": "t", "campaign": "daily", "creative": "",
               "created_ms": 0, "slot": "job" if kind == "click" else "pixel_top"}
        pipe.set(f"ls:link:{code}", orjson.dumps(rec), ex=3600)
        (clicks if kind == "click" else opens).append(f"/{'c' if kind == 'click' else 'o'}/{code}")
    pipe.execute()
    return clicks, opens


def start(cmd: list[str], env: dict, url: str, log) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, *cmd], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(200):
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{cmd} did not start")


def wrk(url: str, paths: list[str], seconds: float, workdir: Path) -> tuple[float, int]:
    """(requests/s, non-2xx/3xx answers) of wrk requesting random paths."""
    (workdir / "paths.txt").write_text("\n".join(paths) + "\n")
    script = workdir / "paths.lua"
    script.write_text(f"""
local paths = {{}}
for line in io.lines("{workdir / 'paths.txt'}") do paths[#paths + 1] = line end
math.randomseed(7)
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
""")
    out = subprocess.run(["wrk", "-t1", "-c64", f"-d{int(seconds)}s", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, int(bad.group(1)) if bad else 0


async def paced(host: str, port: int, paths: list[str], rate: int, seconds: float, conns: int = 32) -> int:
    """Offer `rate` requests/s over `conns` keep-alive connections; how many were answered."""
    answered = 0
    per_conn = rate / conns
    rng = random.Random(11)

    async def one(i: int) -> None:
        nonlocal answered
        reader, writer = await asyncio.open_connection(host, port)
        start = time.monotonic() + i / rate
        n = 0
        while True:
            due = start + n / per_conn
            if due - start > seconds:
                break
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            path = paths[rng.randrange(len(paths))]
            writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
            if length:
                await reader.readexactly(length)
            answered += 1
            n += 1
        writer.close()
    await asyncio.gather(*(one(i) for i in range(conns)))
    return answered


def hits_in_kafka(s) -> int:
    topic = f"{s.topic_prefix}engagement.observed"
    c = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": "bench-count"})
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    total = sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts)
    c.close()
    return total


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args(argv)
    rid = run_id()
    s = isolated_settings(f"bench{rid}t.", 5, f"bench{rid}t")
    prepare(s)
    clicks, opens = seed(s, rid)
    port, bare_port, internal_port = free_port(), free_port(), free_port()
    internal = f"http://127.0.0.1:{internal_port}"  # the front's /stats and /metrics
    url, bare_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
    work = Path(tempfile.mkdtemp(prefix="bench-tracking-"))
    env = {**env_for(s), "LEADSTREAM_TRACKING_PORT": str(port), "LEADSTREAM_SPOOL_DIR": str(work / "spool"),
           "LEADSTREAM_TRACKING_INTERNAL_PORT": str(internal_port)}
    log = open(ROOT / ".stack" / "logs" / "bench-tracking.log", "ab")
    front = start(["-m", "api.tracking"], env, url, log)
    try:
        say("warm-up")
        wrk(url, clicks, 2, work)
        say(f"wrk: random redirects for {args.seconds:.0f}s, 64 connections")
        rps, bad = wrk(url, clicks, args.seconds, work)
        time.sleep(3)  # let the producer send what wrk's flood queued
        httpx.delete(f"{internal}/stats")
        say(f"paced: {RATE} requests/s (half redirects, half pixels) for {args.seconds:.0f}s")
        answered = asyncio.run(paced("127.0.0.1", port, clicks + opens, RATE, args.seconds))
        stats = httpx.get(f"{internal}/stats").json()
        metrics = httpx.get(f"{internal}/metrics").text
        answered_total = int(sum(float(m) for m in re.findall(
            r'^leadstream_tracking_hits_total\{[^}]*status="ok"[^}]*\} ([\d.e+]+)$', metrics, re.M)))
    finally:
        front.terminate()
        front.wait(30)
    bare = start(["-m", "uvicorn", "bench.tracking:bare_app", "--port", str(bare_port), "--loop", "uvloop",
                  "--http", "httptools", "--no-access-log", "--log-level", "warning"], env, bare_url, log)
    try:
        say("baseline: the same wrk load on a bare fixed redirect")
        wrk(bare_url, clicks, 2, work)
        base, _ = wrk(bare_url, clicks, args.seconds, work)
    finally:
        bare.terminate()
        bare.wait(30)
    kept = hits_in_kafka(s)
    spooled = sum(1 for f in (work / "spool").rglob("*.jsonl") for _ in open(f))
    cleanup(s)
    click, pixel = stats.get("click", {}), stats.get("open", {})
    say(f"tracking {rps:,.0f} redirects/s  baseline {base:,.0f}/s  at {RATE}/s: redirect p99 "
        f"{click.get('p99_ms')} ms, pixel p99 {pixel.get('p99_ms')} ms; hits answered {answered_total:,}, "
        f"in Kafka {kept:,} (+{spooled} spooled)")
    emit({"bench": "tracking", "value": round(rps), "unit": "redirects/s", "baseline": round(base),
          "ratio": round(rps / base, 3), "errors": bad, "p50_ms": click.get("p50_ms"), "p99_ms": click.get("p99_ms"),
          "pixel_p50_ms": pixel.get("p50_ms"), "pixel_p99_ms": pixel.get("p99_ms"), "offered_rps": RATE,
          "answered_at_offered": answered, "hits_answered": answered_total, "hits_in_kafka": kept,
          "hits_spooled": spooled})


if __name__ == "__main__":
    main(sys.argv[1:])
