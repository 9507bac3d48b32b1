"""./dev chaos: a fault drill on the running stack, then the invariants, as a table.

A mixed load runs for --minutes: leads through the API's batch endpoint and, beside it,
lead.submitted records produced straight to the intake topic (the queue path); each accepted
lead gets its welcome, so the senders and the SMTP server work too. Meanwhile a schedule drawn
from --seed injects faults one after another: SIGKILL of random workers (the supervisor
restarts them), SIGKILL of the API (restarted as an orchestrator would), Redis restarted,
ClickHouse down, the Kafka broker stopped and started. Then the drill waits for every
consumer group to drain and checks:

  decided once     every lead the API answered 2xx for, and every record Kafka acknowledged on
                   the queue path, is decided exactly once (one decision event in ClickHouse)
                   and has its read model in Redis
  sent once        no send id reached the SMTP server twice
  no 5xx           the API answered no 5xx but 503, and 503 only while Kafka was down (or
                   just after)

It prints one line per fault (what, when, how long until healthy) and per invariant (checked,
violations), and exits non-zero on any violation. What it does not inject or check yet is
listed in the README (Guarantees).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser

import httpx
import redis
from confluent_kafka import Producer

from domain.identity import new_event_id
from domain.lead_input import LeadIn
from domain.submission import build_submitted
from projections.clickhouse import connect
from scaling.client import SupervisorClient
from schemas.codec import default_codec
from stack.services import build_services, start, stop
from streams.settings import Settings, get_settings, load_tenants

TENANT, LIST, PARTNER = "jobsnearby", "daily-jobs", "ziprecruiter"
KAFKA_GRACE_S = 15.0  # after the broker is back, producers reconnect: a 503 then is still the outage's


@dataclass
class Ledger:
    """What the load saw: leads answered, answers by status, 5xx with their time."""

    answered: dict[str, str] = field(default_factory=dict)  # lead id -> "api" | "queue"
    statuses: Counter = field(default_factory=Counter)
    server_errors: list[tuple[float, int]] = field(default_factory=list)
    unreachable: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Fault:
    name: str
    at_s: float = 0.0  # since the drill's start
    down_s: float = 0.0
    recovered_s: float = 0.0  # from the fault to healthy again
    note: str = ""


def _lead(i: int, run: str) -> dict:
    return {"email": f"chaos.{run}.{i}@example.com", "first_name": "Cha", "partner": PARTNER, "list": LIST,
            "location": {"zip": "10001", "country": "US"}, "interests": {"keywords": ["nurse"]}}


def _api_load(s: Settings, key: str, run: str, rate: int, done: threading.Event, ledger: Ledger) -> None:
    i = 0
    with httpx.Client(base_url=s.api_url, timeout=15, headers={"Authorization": f"Bearer {key}"}) as c:
        while not done.is_set():
            tick = time.monotonic()
            batch = [_lead(i + n, run) for n in range(rate)]
            i += rate
            try:
                r = c.post("/v1/leads/batch", json={"leads": batch})
            except httpx.HTTPError:
                with ledger.lock:
                    ledger.unreachable += 1
            else:
                with ledger.lock:
                    ledger.statuses[r.status_code] += 1
                    if r.status_code == 202:
                        ledger.answered.update((x["lead_id"], "api") for x in r.json()["leads"])
                    elif r.status_code >= 500:
                        ledger.server_errors.append((time.monotonic(), r.status_code))
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))


def _queue_load(s: Settings, run: str, rate: int, done: threading.Event, ledger: Ledger) -> None:
    book, codec = load_tenants(s.tenants_file), default_codec()
    tenant = book.tenants[TENANT]
    # log_level 2: the broker's planned outage would print a connection error every half second
    producer = Producer({"bootstrap.servers": s.kafka_bootstrap, "enable.idempotence": True, "linger.ms": 20,
                         "message.timeout.ms": 300_000, "log_level": 2})

    def acked(err, msg):
        if err is None:
            with ledger.lock:
                ledger.answered[msg.key().decode()] = "queue"
    i = 10_000_000
    while not done.is_set():
        tick, now = time.monotonic(), int(time.time() * 1000)
        for _ in range(rate):
            sub = build_submitted(LeadIn.model_validate(_lead(i, run)), tenant, new_event_id(now, os.urandom(10)),
                                  now, "chaos")
            i += 1
            try:
                producer.produce(f"{s.topic_prefix}leads.submitted", codec.encode("lead.submitted", sub),
                                 sub["lead_id"].encode(), on_delivery=acked)
            except BufferError:
                break
        producer.poll(0)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    producer.flush(180)


# ---- faults ------------------------------------------------------------------------------

def _healthy_within(check, timeout: float = 180.0) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if check():
            return time.monotonic() - t0
        time.sleep(0.5)
    raise RuntimeError("did not recover")


def _kill_worker(s: Settings, rng: random.Random, services: dict) -> Fault:
    status = SupervisorClient(s.supervisor_port).status()["agents"]
    workers = [(a, w) for a, st in status.items() for w in st["workers"] if w["pid"] and w["state"] == "running"]
    agent, worker = rng.choice(sorted(workers, key=lambda aw: aw[1]["name"]))
    os.kill(worker["pid"], signal.SIGKILL)

    def back() -> bool:
        now = SupervisorClient(s.supervisor_port).status()["agents"][agent]["workers"]
        return any(w["name"] == worker["name"] and w["pid"] and w["pid"] != worker["pid"] and w["ready"] for w in now)
    return Fault(f"SIGKILL {worker['name']}", recovered_s=_healthy_within(back))


def _kill_api(s: Settings, rng: random.Random, services: dict) -> Fault:
    svc = services["api"]
    os.kill(svc.pid(), signal.SIGKILL)
    t0 = time.monotonic()
    start(svc, _env())  # what an orchestrator does: a new process
    return Fault("SIGKILL the API", recovered_s=time.monotonic() - t0)


def _restart(name: str, down_s: float):
    def fault(s: Settings, rng: random.Random, services: dict) -> Fault:
        svc = services[name]
        t0 = time.monotonic()
        stop(svc)
        time.sleep(down_s)
        start(svc, _env())
        return Fault(f"{name} down", down_s=down_s, recovered_s=time.monotonic() - t0)
    return fault


def _env() -> dict[str, str]:
    from stack.__main__ import child_env
    return child_env()


def schedule(rng: random.Random, minutes: float) -> list[tuple[str, object]]:
    """The faults in the order they come: workers killed throughout, one of each other kind."""
    kinds = [("kill_worker", _kill_worker)] * max(2, int(minutes * 2))
    kinds += [("kill_api", _kill_api), ("redis", _restart("redis", 5.0)),
              ("clickhouse", _restart("clickhouse", 60.0 if minutes >= 5 else 20.0)),
              ("kafka", _restart("kafka", 20.0 if minutes >= 5 else 10.0))]
    rng.shuffle(kinds)
    return kinds


# ---- invariants --------------------------------------------------------------------------

def _drained(s: Settings, timeout: float = 900.0) -> float:
    client, calm, t0, silent_since = SupervisorClient(s.supervisor_port), 0, time.monotonic(), None
    while time.monotonic() - t0 < timeout:
        try:
            lags = [a.get("lag") for a in client.status()["agents"].values()]
            silent_since = None
        except OSError:
            lags, silent_since = [None], silent_since or time.monotonic()
            if time.monotonic() - silent_since > 30:
                raise RuntimeError("the supervisor stopped answering (see .stack/logs/supervisor.log)")
        calm = calm + 1 if all(lag == 0 for lag in lags) else 0
        if calm >= 5:
            return time.monotonic() - t0
        time.sleep(1)
    raise RuntimeError("the backlog did not drain")


def _decided_once(s: Settings, ledger: Ledger) -> tuple[int, list[str]]:
    ch, r = connect(s.clickhouse_host, s.clickhouse_port), redis.Redis.from_url(s.redis_url)
    ids = sorted(ledger.answered)
    counts: dict[str, int] = {}
    for n in range(0, len(ids), 5000):
        chunk = ids[n:n + 5000]
        counts.update(ch.execute(
            f"SELECT lead_id, uniqExact(event_id) FROM {s.clickhouse_database}.events "
            "WHERE tenant = %(t)s AND event_type IN ('lead.accepted', 'lead.rejected') AND lead_id IN %(ids)s "
            "GROUP BY lead_id", {"t": TENANT, "ids": tuple(chunk)}))
    bad = [f"{lid}: {counts.get(lid, 0)} decisions" for lid in ids if counts.get(lid, 0) != 1]
    there = _exists(r, [f"ls:lead:{TENANT}:{lid}" for lid in ids])
    missing = [lid for lid, ok in zip(ids, there) if not ok]
    return len(ids), bad + [f"{lid}: no read model" for lid in missing]


def _exists(r: redis.Redis, keys: list[str]) -> list[bool]:
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.exists(k)
    return [bool(x) for x in pipe.execute()]


def _sent_once(s: Settings, since: float) -> tuple[int, list[str]]:
    parser, seen = BytesHeaderParser(), Counter()
    for path in s.mail_dir.glob("*.eml"):
        if path.stat().st_mtime < since:
            continue
        with open(path, "rb") as f:
            sid = parser.parse(f).get("X-Leadstream-Send")
        if sid:
            seen[sid] += 1
    return sum(seen.values()), [f"{sid}: {n} times" for sid, n in seen.items() if n > 1]


def _no_5xx(ledger: Ledger, kafka_down: list[tuple[float, float]]) -> tuple[int, list[str]]:
    def in_outage(t: float) -> bool:
        return any(a <= t <= b + KAFKA_GRACE_S for a, b in kafka_down)
    bad = [f"{code} at +{t:.0f}s" for t, code in ledger.server_errors if code != 503 or not in_outage(t)]
    return sum(ledger.statuses.values()), bad


# ---- the drill ---------------------------------------------------------------------------

def run(minutes: float, seed: int, rate: int) -> int:
    s = get_settings()
    from stack.__main__ import cmd_up
    cmd_up(quiet=True)
    services = {svc.name: svc for svc in build_services(s)}
    key = load_tenants(s.tenants_file).demo_keys[TENANT]
    rng, run_id = random.Random(seed), f"{seed}-{int(time.time())}"
    ledger, began, wall, done = Ledger(), time.monotonic(), time.time(), threading.Event()
    loads = [threading.Thread(target=_api_load, args=(s, key, run_id, rate, done, ledger), daemon=True),
             threading.Thread(target=_queue_load, args=(s, run_id, max(1, rate // 4), done, ledger), daemon=True)]
    for t in loads:
        t.start()
    plan = schedule(rng, minutes)
    gap = (minutes * 60 * 0.8) / (len(plan) + 1)
    faults, kafka_down = [], []
    print(f"[chaos] {minutes:g} min, seed {seed}: {rate} leads/s by the API, {max(1, rate // 4)}/s by the queue, "
          f"{len(plan)} faults", flush=True)
    for n, (kind, inject) in enumerate(plan, 1):
        time.sleep(max(0.0, began + n * gap - time.monotonic()))
        at = time.monotonic() - began
        t0 = time.monotonic()
        fault = inject(s, rng, services)
        fault.at_s = at
        if kind == "kafka":
            kafka_down.append((t0, time.monotonic()))
        faults.append(fault)
        print(f"[chaos] +{at:5.0f}s  {fault.name:<32} healthy again after {fault.recovered_s:5.1f}s", flush=True)
    # the load goes on for the whole drill and a little after the last fault has recovered
    time.sleep(max(10.0, began + minutes * 60 - time.monotonic()))
    done.set()
    for t in loads:
        t.join()
    print(f"[chaos] load done: {len(ledger.answered)} leads answered; waiting for the backlog to drain", flush=True)
    try:
        drained = _drained(s)
    except RuntimeError as exc:
        print(f"[chaos] VIOLATION: {exc}; the invariants cannot be checked", flush=True)
        print(json.dumps({"chaos": "failed", "minutes": minutes, "seed": seed, "faults": len(faults),
                          "leads_answered": len(ledger.answered), "violations": 1, "why": str(exc)}))
        return 1
    time.sleep(10)  # the last sends reach the SMTP server, the ClickHouse writer flushes
    checks = [("decided once", *_decided_once(s, ledger)), ("sent once", *_sent_once(s, wall)),
              ("no 5xx but 503 while Kafka was down", *_no_5xx(ledger, kafka_down))]
    print(f"\n{'invariant':<40}{'checked':>10}{'violations':>12}")
    for name, checked, bad in checks:
        print(f"{name:<40}{checked:>10}{len(bad):>12}")
        for line in bad[:10]:
            print(f"    {line}")
    violations = sum(len(bad) for _, _, bad in checks)
    print(json.dumps({"chaos": "done", "minutes": minutes, "seed": seed, "faults": len(faults),
                      "leads_answered": len(ledger.answered), "answers": dict(ledger.statuses),
                      "unreachable": ledger.unreachable, "drained_after_s": round(drained, 1),
                      "violations": violations,
                      "recovery_s": {f.name: round(f.recovered_s, 1) for f in faults}}))
    return 1 if violations else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="./dev chaos")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rate", type=int, default=40, help="leads a second through the API (a quarter as many by the queue)")
    args = ap.parse_args(argv)
    return run(args.minutes, args.seed, args.rate)


if __name__ == "__main__":
    raise SystemExit(main())
