"""The fault drill's faults: each injects one, waits until the platform is healthy again and
says what it did, how long it took, and which alerts it should raise.

    kill_worker    SIGKILL of a random running worker (any agent); the supervisor restarts it
    crash_loop     the same agent's worker killed three times, each after it came back:
                   LeadstreamWorkerCrashLooping for that agent
    kill_api       SIGKILL of the API, a new process started (what an orchestrator does)
    kill_tracking  SIGKILL of the tracking front, a new process started
    poison         a record no agent can decode, into the intake's topic: LeadstreamDeadLetters
    redis          Redis stopped, started again after a few seconds
    redis_wipe     Redis loses everything (FLUSHDB): LeadstreamRedisStateLost; on that alert the
                   runbook: the workers stopped (the supervisor), `runtime.replay --redis`, the
                   workers started again
    clickhouse     ClickHouse down for a minute (45 s in a short drill): LeadstreamStoreDown
    kafka          the broker stopped and started again
    provider       the brand's mail relay (the SMTP stand-in) throttles (451 4.7.1) while its
                   fallback (the Mailgun stand-in) throttles too (429 + Retry-After), then the
                   relay is slow (each message held before its answer), then the relay
                   throttles again while the network to the fallback is slowed (Toxiproxy:
                   latency, jitter and a bandwidth cap both ways, stack/netem.py): sends wait
                   and retry, none is lost or sent twice
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import httpx
import redis
from confluent_kafka import Producer

from scaling.client import SupervisorClient
from stack import netem
from stack.services import start, stop
from streams.settings import ROOT, Settings


SLOW_NETWORK = {"latency_ms": 400, "jitter_ms": 200, "kb_per_s": 16}


@dataclass
class Fault:
    name: str
    kind: str = ""
    at_s: float = 0.0  # since the drill's start
    down_s: float = 0.0
    recovered_s: float = 0.0  # from the fault to healthy again
    began: float = 0.0  # monotonic
    ended: float = 0.0
    expects: list[tuple[str, str]] = field(default_factory=list)  # (alert name, text it names)


def _healthy_within(check, timeout: float = 180.0) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if check():
                return time.monotonic() - t0
        except OSError:  # the supervisor busy or restarting its listener: ask again
            pass
        time.sleep(0.5)
    raise RuntimeError("did not recover")


def _running(s: Settings) -> list[tuple[str, dict]]:
    status = SupervisorClient(s.supervisor_port).status()["agents"]
    return sorted(((a, w) for a, st in status.items() for w in st["workers"]
                   if w["pid"] and w["state"] == "running" and w["ready"]), key=lambda aw: aw[1]["name"])


def _kill_and_wait(s: Settings, agent: str, worker: dict) -> float:
    os.kill(worker["pid"], signal.SIGKILL)

    def back() -> bool:
        now = SupervisorClient(s.supervisor_port).status()["agents"][agent]["workers"]
        return any(w["name"] == worker["name"] and w["pid"] and w["pid"] != worker["pid"] and w["ready"] for w in now)
    return _healthy_within(back)


def kill_worker(s: Settings, rng: random.Random, services: dict) -> Fault:
    agent, worker = rng.choice(_running(s))
    return Fault(f"SIGKILL {worker['name']}", recovered_s=_kill_and_wait(s, agent, worker))


def crash_loop(s: Settings, rng: random.Random, services: dict) -> Fault:
    agent, worker = rng.choice(_running(s))
    took = 0.0
    for _ in range(3):
        now = {w["name"]: w for a, w in _running(s) if a == agent}
        took += _kill_and_wait(s, agent, now.get(worker["name"], worker))
    return Fault(f"SIGKILL {worker['name']} 3 times", recovered_s=took,
                 expects=[("LeadstreamWorkerCrashLooping", f"{agent}:")])


def _kill_process(name: str, title: str):
    def fault(s: Settings, rng: random.Random, services: dict) -> Fault:
        svc = services[name]
        os.kill(svc.pid(), signal.SIGKILL)
        t0 = time.monotonic()
        start(svc, _env())
        return Fault(title, recovered_s=time.monotonic() - t0)
    return fault


def poison(s: Settings, rng: random.Random, services: dict) -> Fault:
    p = Producer({"bootstrap.servers": s.kafka_bootstrap})
    p.produce(f"{s.topic_prefix}leads.submitted", b"\x00chaos: not an event", b"chaos-poison")
    left = p.flush(30)
    if left:
        raise RuntimeError("the poison record could not be produced")
    return Fault("a record no agent can decode", expects=[("LeadstreamDeadLetters", "intake:")])


def _restart(name: str, down_s: float, expects: list[tuple[str, str]] | None = None):
    def fault(s: Settings, rng: random.Random, services: dict) -> Fault:
        svc = services[name]
        t0 = time.monotonic()
        stop(svc)
        time.sleep(down_s)
        start(svc, _env())
        return Fault(f"{name} down", down_s=down_s, recovered_s=time.monotonic() - t0, expects=list(expects or []))
    return fault


def redis_wipe(s: Settings, rng: random.Random, services: dict) -> Fault:
    """Redis loses every key of the platform, then the runbook brings it back: the workers
    stopped (with the supervisor; gracefully, offsets committed), the replay rebuilds what the
    topics hold, the workers started again. The API and the tracking front run throughout; the
    workers run on the empty Redis until the alert comes (as they would until someone acts)."""
    t0, wall = time.monotonic(), time.time()
    redis.Redis.from_url(s.redis_url).flushdb()
    _alert_came(s, "LeadstreamRedisStateLost", wall, 120.0)
    stop(services["supervisor"], timeout=60)
    out = subprocess.run([sys.executable, "-m", "runtime.replay", "--redis"], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=1200)
    if out.returncode != 0:
        raise RuntimeError(f"the replay failed after the wipe:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    rebuilt = time.monotonic() - t0
    start(services["supervisor"], _env())

    def ready() -> bool:
        agents = SupervisorClient(s.supervisor_port).status()["agents"].values()
        return all(any(w["ready"] for w in a["workers"]) or a["config"]["min_workers"] == 0 for a in agents)
    _healthy_within(ready, 300)
    return Fault(f"Redis wiped, rebuilt in {rebuilt:.0f}s", down_s=rebuilt, recovered_s=time.monotonic() - t0,
                 expects=[("LeadstreamRedisStateLost", "Redis lost the platform")])


def provider(s: Settings, rng: random.Random, services: dict, phase_s: float = 20.0) -> Fault:
    control = s.mail_dir / "control.json"
    mailgun = f"{s.providers_url}/control/mailgun"
    t0 = time.monotonic()
    try:
        control.write_text(json.dumps({"throttle": True}))
        httpx.post(mailgun, json={"mode": "throttle", "retry_after_s": 2}, timeout=10).raise_for_status()
        time.sleep(phase_s)
        control.write_text(json.dumps({"delay_s": 0.5}))
        httpx.post(mailgun, json={"mode": "ok"}, timeout=10).raise_for_status()
        time.sleep(phase_s)
        control.write_text(json.dumps({"throttle": True}))  # the mail goes to the fallback, over a slow network
        before = _mailgun_sent(s)
        netem.slow(s, "mailgun", **SLOW_NETWORK)
        time.sleep(phase_s)
        netem.clear(s, "mailgun")
        through_slow = _mailgun_sent(s) - before
    finally:
        control.write_text("{}")
        httpx.post(mailgun, json={"mode": "ok"}, timeout=10)
        netem.clear(s, "mailgun")
    restored = time.time()

    def mail_again() -> bool:  # a message stored after the relay behaves again (the folder changed)
        return s.mail_dir.stat().st_mtime > restored + 0.01
    _healthy_within(mail_again, 300)
    return Fault(f"mail relay throttling, then slow, then the network to its fallback slowed "
                 f"({SLOW_NETWORK['latency_ms']}±{SLOW_NETWORK['jitter_ms']} ms, {SLOW_NETWORK['kb_per_s']} KB/s "
                 f"each way: {through_slow} messages through it)",
                 down_s=3 * phase_s, recovered_s=time.monotonic() - t0)


def _mailgun_sent(s: Settings) -> int:
    return len(httpx.get(f"{s.providers_url}/sent/mailgun", timeout=60).json())


def _alert_came(s: Settings, name: str, since: float, timeout: float) -> bool:
    """Whether the Slack stand-in got `name` firing since `since` (waits up to timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = httpx.get(f"{s.hooks_url}/received/alerts", timeout=10).json()
        except httpx.HTTPError:
            got = []
        if any(m["received_at"] >= since and a.get("title", "") == f"firing: {name}"
               for m in got for a in (m["body"] or {}).get("attachments", [])):
            return True
        time.sleep(2)
    return False


def _env() -> dict[str, str]:
    from stack.__main__ import child_env
    return child_env()


def schedule(rng: random.Random, minutes: float) -> list[tuple[str, object]]:
    """The faults in the order they come: workers killed throughout, one of each other kind.

    A short drill (under 5 minutes, the one in ./dev test) leaves out the crash loop and the
    poison record: their alerts look back 15 and 5 minutes, so they resolve only that long
    after; the full drill waits for that.
    """
    short = minutes < 5
    kinds = [("kill_worker", kill_worker)] * max(1, int(minutes * 1.5))
    kinds += [("kill_api", _kill_process("api", "SIGKILL the API")),
              ("kill_tracking", _kill_process("tracking", "SIGKILL the tracking front")),
              ("redis", _restart("redis", 5.0)),
              ("redis_wipe", redis_wipe),
              ("clickhouse", _restart("clickhouse", 45.0 if short else 60.0, [("LeadstreamStoreDown", "clickhouse does not answer")])),
              ("kafka", _restart("kafka", 10.0 if short else 20.0)),
              ("provider", lambda s, r, sv: provider(s, r, sv, 15.0 if short else 30.0))]
    if not short:
        kinds += [("crash_loop", crash_loop), ("poison", poison)]
    rng.shuffle(kinds)
    return kinds


def inject(kind: str, fn, s: Settings, rng: random.Random, services: dict, began: float) -> Fault:
    t0 = time.monotonic()
    fault = fn(s, rng, services)
    fault.kind, fault.at_s, fault.began, fault.ended = kind, t0 - began, t0, time.monotonic()
    return fault
