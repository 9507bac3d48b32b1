"""./dev bench autoscale [--events N] [--max-workers K] [--window S]

A surge of lead.submitted events into the intake agent, drained twice on private topics:
once by a fixed single worker (min = max = 1), once by the supervisor scaling on lag
(1..K workers). value = drain_s_fixed / drain_s_auto: the speed-up the scaling buys.
Also: peak_workers, reaction_s (surge start to first worker added), direction_changes
(up -> down counts 1; more means flapping) and scaled_down_s (back at one worker).
"""
from __future__ import annotations

import argparse
import sys

from bench._common import emit, say
from scaling.drill import Drill, encoded_leads
from streams.settings import get_settings


def drain(s, leads, max_workers: int, window: float, lag_per_worker: int):
    with Drill(s, lag_per_worker, 1, max_workers, window, log=say) as d:
        return d.run(leads, settle_s=window + 30)


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="./dev bench autoscale")
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--max-workers", type=int, default=4)
    ap.add_argument("--window", type=float, default=15.0, help="scale-down stabilisation window (s)")
    ap.add_argument("--lag-per-worker", type=int, default=20_000)
    args = ap.parse_args(argv)
    s = get_settings()
    say(f"encoding {args.events:,} lead.submitted events")
    leads = encoded_leads(s, args.events, "bench")
    say("fixed: one worker drains the surge")
    fixed = drain(s, leads, 1, args.window, args.lag_per_worker)
    say(f"  fixed drained in {fixed.drain_s}s")
    say(f"auto: the supervisor scales 1..{args.max_workers} workers on lag")
    leads = encoded_leads(s, args.events, "bench2")  # new people: the first run's are known now
    auto = drain(s, leads, args.max_workers, args.window, args.lag_per_worker)
    say(f"  auto drained in {auto.drain_s}s, peak {auto.peak_workers} workers, "
        f"back down at {auto.scaled_back_down_s}s")
    for c in auto.decisions:
        say(f"  {c['direction']} {c['from']} -> {c['to']} at lag {c['lag']}: {c['reason']}")
    if not (fixed.drain_s and auto.drain_s):
        sys.exit("a run did not drain within its time limit")
    ratio = fixed.drain_s / auto.drain_s
    emit({"bench": "autoscale", "value": round(ratio, 3), "unit": "x (drain_s_fixed / drain_s_auto)",
          "baseline": 1.0, "ratio": round(ratio, 3), "events": args.events,
          "drain_s_fixed": fixed.drain_s, "drain_s_auto": auto.drain_s, "peak_workers": auto.peak_workers,
          "reaction_s": auto.reaction_s, "direction_changes": auto.direction_changes,
          "scaled_down_s": auto.scaled_back_down_s, "window_s": args.window,
          "max_workers": args.max_workers, "lag_per_worker": args.lag_per_worker})


if __name__ == "__main__":
    main(sys.argv[1:])
