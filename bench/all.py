"""./dev bench all [--only a,b] [--skip a,b] [--soak-minutes M]

Runs every benchmark in turn (each as `python -m bench.NAME`, its progress on stderr as it
goes), then prints a table (bench, value, unit, baseline, ratio, target, met) and every
benchmark's JSON line. A benchmark that fails or prints no JSON is a row marked "failed".
The last line is this run's own JSON: value = targets met, baseline = benchmarks with a target.
About 90 minutes with the soak (30) and analytics (10 M leads); --skip soak,analytics for a quick pass.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Callable

from bench._common import emit, say
from streams.settings import ROOT

# bench -> (target as written, check over its JSON): the issues' targets
TARGETS: dict[str, tuple[str, Callable[[dict], bool]]] = {
    "ingress": (">= 20,000 leads/s", lambda r: r["value"] >= 20_000),
    "pipeline": (">= 20,000 events/s and >= 0.8 of bare", lambda r: r["value"] >= 20_000 and r["ratio"] >= 0.8),
    "send": (">= 1,000 emails/s", lambda r: r["value"] >= 1_000),
    "tracking": (">= 0.5 of bare, p99 < 5 ms", lambda r: r["ratio"] >= 0.5 and r["p99_ms"] < 5),
    "replay": ("< 60 s, state equal", lambda r: r["value"] < 60 and r["state_equal"]),
    "trigger": ("p99 < 500 ms, none lost", lambda r: r["value"] < 500 and r.get("delivered") == r.get("expected")),
    "experiments": ("<= 5.5 % false winners", lambda r: r["value"] <= 5.5),
    "dashboard": ("< 1,000 ms per page", lambda r: r["value"] < 1_000),
    "analytics": ("p95 < 1,000 ms, answers equal", lambda r: r["value"] < 1_000 and r.get("matched", True)),
    "digest": ("workers < 300 MB, 0 duplicates", lambda r: r["peak_rss_mb"] < 300 and r["duplicates"] == 0),
    "export": ("< 60 s for a year of history", lambda r: r["value"] < 60 and r["sealed_opened"] > 0),
    "soak": ("< 10 % RSS growth, workers < 300 MB",
             lambda r: r["value"] < 10 and r.get("max_worker_rss_mb", 0) < 300),
}
NEEDS_PLATFORM = ("dashboard", "soak", "export")  # they measure the running platform


def available() -> list[str]:
    return sorted(p.stem for p in (ROOT / "bench").glob("*.py") if not p.stem.startswith("_") and p.stem != "all")


def run_one(name: str, extra: list[str]) -> tuple[dict | None, float]:
    """The benchmark's JSON line (None if it failed or printed none) and its seconds."""
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", f"bench.{name}", *extra], cwd=ROOT, stdout=subprocess.PIPE,
                          text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    result = None
    if proc.returncode == 0 and lines:
        try:
            result = json.loads(lines[-1])
        except json.JSONDecodeError:
            result = None
    elif lines:  # a benchmark that found its check false still printed its figures
        try:
            result = {**json.loads(lines[-1]), "exit": proc.returncode}
        except json.JSONDecodeError:
            result = None
    return result, time.monotonic() - t0


def verdict(name: str, result: dict | None) -> tuple[str, str]:
    """(target, met) for the table: met is yes / no / - (no target) / failed."""
    target, check = TARGETS.get(name, ("-", None))
    if result is None:
        return target, "failed"
    if check is None:
        return target, "-"
    try:
        return target, "yes" if check(result) and "exit" not in result else "no"
    except (KeyError, TypeError):
        return target, "no"


def table(rows: list[tuple[str, dict | None, float]]) -> str:
    head = ("bench", "value", "unit", "baseline", "ratio", "target", "met", "took")
    out = [head]
    for name, r, took in rows:
        target, met = verdict(name, r)
        r = r or {}
        out.append((name, str(r.get("value", "-")), str(r.get("unit", "-")), str(r.get("baseline", "-")),
                    str(r.get("ratio", "-")), target, met, f"{took:.0f}s"))
    widths = [max(len(row[i]) for row in out) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in out)


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="", help="comma-separated benchmarks to run (default: every one)")
    ap.add_argument("--skip", default="", help="comma-separated benchmarks to leave out")
    ap.add_argument("--soak-minutes", type=float, default=30)
    args = ap.parse_args(argv)
    names = [n for n in (args.only.split(",") if args.only else available()) if n]
    unknown = sorted(set(names) - set(available()))
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available())}")
    names = [n for n in names if n not in set(args.skip.split(","))]
    rows = []
    for i, name in enumerate(names, 1):
        if name in NEEDS_PLATFORM:
            subprocess.run([sys.executable, "-m", "stack", "up"], cwd=ROOT, stdout=subprocess.DEVNULL, check=False)
        say(f"({i}/{len(names)}) {name}")
        extra = ["--minutes", str(args.soak_minutes)] if name == "soak" else []
        result, took = run_one(name, extra)
        rows.append((name, result, took))
        say(f"{name}: " + (json.dumps(result) if result else "failed (no JSON line)"))
    print(table(rows))
    for _, r, _ in rows:
        if r is not None:
            print(json.dumps(r))
    with_target = [(n, r) for n, r, _ in rows if n in TARGETS]
    met = sum(verdict(n, r)[1] == "yes" for n, r in with_target)
    emit({"bench": "all", "value": met, "unit": "targets met", "baseline": len(with_target),
          "ratio": round(met / len(with_target), 2) if with_target else None, "ran": len(rows),
          "failed": [n for n, r, _ in rows if r is None]})


if __name__ == "__main__":
    main(sys.argv[1:])
