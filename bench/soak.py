"""Soak: steady mixed load on the running platform; memory must stay flat, latency stable.
    ./dev bench soak [--minutes 30] [--rate 40]

Load (stack/chaos_load.py, no faults): --rate leads/s through the API's batch endpoint (one
batch a second), a quarter as many produced straight to the intake topic, and tracking hits
(pixel and one link) on the welcome emails those leads receive, each answered request timed.
Every 15 s the resident memory (VmRSS) of each platform process is read from /proc: the API,
the tracking front, the supervisor and every worker it runs (by worker name; a restarted worker
is reported). Kafka, Redis and ClickHouse are sampled too and reported, not scored.

- value: the largest RSS growth, in %, of any platform process from minute 5 to the end
  (target: < 10 %, flat)
- baseline: 10 (the target); ratio = value / baseline (<= 1 passes)
- max_worker_rss_mb: the largest RSS of any worker at any sample (target: < 300 MB)
- windows: per 5-minute window, p99 of the API's batch answer and of a tracking hit, in ms
"""
from __future__ import annotations

import argparse
import threading
import time

from bench._common import emit, say
from scaling.client import SupervisorClient
from stack.chaos_load import TENANT, Ledger, api_load, queue_load, tracking_load
from stack.services import build_services
from streams.settings import get_settings, load_tenants

PLATFORM, INFRA = ("api", "tracking", "supervisor"), ("kafka", "redis", "clickhouse")
SAMPLE_S, WARMUP_MIN, WINDOW_MIN = 15.0, 5.0, 5.0


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def processes(s, services: dict) -> dict[str, tuple[str, int]]:
    """name -> (group: platform | worker | infra, pid) of everything running now."""
    out = {}
    for name in PLATFORM + INFRA:
        pid = services[name].pid()
        if pid:
            out[name] = ("infra" if name in INFRA else "platform", pid)
    for agent in SupervisorClient(s.supervisor_port).status()["agents"].values():
        for w in agent["workers"]:
            if w["pid"]:
                out[w["name"]] = ("worker", w["pid"])
    return out


def p99(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1)


def windows(ledger: Ledger, began: float, minutes: float) -> list[dict]:
    out = []
    for w in range(int(minutes // WINDOW_MIN) or 1):
        a, b = began + w * WINDOW_MIN * 60, began + (w + 1) * WINDOW_MIN * 60
        out.append({"minutes": f"{w * WINDOW_MIN:g}-{(w + 1) * WINDOW_MIN:g}",
                    "ingress_p99_ms": p99([ms for t, ms in ledger.api_ms if a <= t < b]),
                    "redirect_p99_ms": p99([ms for t, ms in ledger.hit_ms if a <= t < b]),
                    "leads": sum(1 for t, _ in ledger.api_ms if a <= t < b)})
    return out


def growth(samples: dict[str, list[tuple[float, int, float]]], began: float, group: dict[str, str]) -> dict:
    """Per process: RSS once warm and at the end, growth in %, and whether its pid changed. Warm
    is minute 5 of the run and of the process's own life: a worker the supervisor starts during
    the run (scaling up, or restarting one) is measured from its fifth minute, not from a sample
    taken while it was still loading (one such sample, 80 MB, once read as 236 % growth)."""
    out = {}
    for name, rows in samples.items():
        born = {}
        for t, pid, _ in rows:
            born.setdefault(pid, t)
        pid = rows[-1][1]  # a restarted process is measured in its last life
        after = [r for r in rows if r[1] == pid and r[0] - began >= WARMUP_MIN * 60
                 and r[0] - born[pid] >= WARMUP_MIN * 60]
        if len(after) < 2:
            continue
        first, last = after[0], after[-1]
        out[name] = {"group": group[name], "mb_at_5min": round(first[2], 1), "mb_end": round(last[2], 1),
                     "growth_pct": round((last[2] / first[2] - 1) * 100, 1), "max_mb": round(max(r[2] for r in rows), 1),
                     "restarted": len({r[1] for r in rows}) > 1}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(prog="./dev bench soak")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--rate", type=int, default=40)
    args = ap.parse_args()
    s = get_settings()
    from stack.__main__ import cmd_up
    cmd_up(quiet=True)  # the soak needs the whole platform, not only the infrastructure
    services = {svc.name: svc for svc in build_services(s)}
    key = load_tenants(s.tenants_file).demo_keys[TENANT]
    run = f"soak-{int(time.time())}"
    ledger, done, began, wall = Ledger(), threading.Event(), time.monotonic(), time.time()
    loads = [threading.Thread(target=api_load, args=(s, key, run, args.rate, done, ledger), daemon=True),
             threading.Thread(target=queue_load, args=(s, run, max(1, args.rate // 4), done, ledger), daemon=True),
             threading.Thread(target=tracking_load, args=(s, run, max(2, args.rate // 2), wall, done, ledger), daemon=True)]
    for t in loads:
        t.start()
    samples: dict[str, list[tuple[float, int, float]]] = {}
    group: dict[str, str] = {}
    end = began + args.minutes * 60
    while time.monotonic() < end:
        now = time.monotonic()
        for name, (grp, pid) in processes(s, services).items():
            mb = rss_mb(pid)
            if mb is not None:
                samples.setdefault(name, []).append((now, pid, mb))
                group[name] = grp
        minute = (now - began) / 60
        if int(minute * 4) % 4 == 0:
            say(f"minute {minute:4.1f}: {len(ledger.answered)} leads answered, {len(ledger.hits)} hits, "
                f"{sum(1 for g in group.values() if g == 'worker')} workers")
        time.sleep(max(0.0, SAMPLE_S - (time.monotonic() - now)))
    done.set()
    for t in loads:
        t.join(60)
    per = growth(samples, began, group)
    scored = {n: g for n, g in per.items() if g["group"] != "infra"}
    worst = max(scored, key=lambda n: scored[n]["growth_pct"]) if scored else None
    value = scored[worst]["growth_pct"] if worst else None
    worker_max = max((g["max_mb"] for g in per.values() if g["group"] == "worker"), default=None)
    for name in sorted(per):
        g = per[name]
        say(f"{name:<28}{g['group']:<9}{g['mb_at_5min']:>8} MB -> {g['mb_end']:>8} MB  {g['growth_pct']:>6}%"
            + ("  (restarted)" if g["restarted"] else ""))
    emit({"bench": "soak", "value": value, "unit": "% RSS growth, worst platform process, minute 5 to end",
          "baseline": 10, "ratio": round(value / 10, 2) if value is not None else None, "worst": worst,
          "max_worker_rss_mb": worker_max, "minutes": args.minutes, "rate": args.rate,
          "leads_answered": len(ledger.answered), "hits_answered": len(ledger.hits),
          "errors": {"api_5xx": len(ledger.server_errors), "api_unreachable": len(ledger.unreachable),
                     "hit_failures": len(ledger.hit_failures)},
          "windows": windows(ledger, began, args.minutes), "processes": per})


if __name__ == "__main__":
    main()
