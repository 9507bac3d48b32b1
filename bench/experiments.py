"""./dev bench experiments [--experiments 10000] [--days 30] [--seed N] [--leads-per-day 1000]

How often the A/B decision (domain.experiment_stats) declares a winner that is not there, when
it is looked at every day, against the usual mistake of re-running a fixed-horizon
chi-squared test at every look. Pure computation: no services are needed.

The simulation, vectorised over experiments with numpy (one call per daily look):
- each experiment has two arms, control A and treatment B, weighted 50/50; every day
  `--leads-per-day` leads (default 1,000) are assigned by a fair coin, so an arm gets about
  500 a day, 15,000 after 30 days;
- each experiment's base conversion rate is drawn uniformly from 4 % to 6 %;
- A/A: both arms convert at the base rate. Lift: B converts at 1.10 x the base rate (a 10 %
  relative lift, 0.5 percentage points on 5 %);
- at each of the `--days` daily looks, on the running totals: the decision
  (`look_statistics`, the function `decide` calls, with its defaults: alpha 0.05, minimum
  100 leads per arm, SRM threshold 0.001, tau^2 = DEFAULT_TAU2 chosen a priori, carrying the
  always-valid p-value from look to look); an experiment stops at its first winner.

value: % of A/A experiments where the sequential decision named a winner (either arm) at some
look. baseline: the same for a chi-squared test (p < 0.05) repeated at every look. ratio =
value / baseline. Also: each method's power on the 10 % lift (% of experiments that named B
the winner within the horizon), the median day of the sequential decision, and the % of A/A
experiments whose sample-ratio check ever flagged (a false alarm, as assignment is fair); for
scale, the sequential power and median day on a 20 % relative lift.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import numpy as np

from bench._common import emit, say
from domain.experiment_stats import DEFAULT_ALPHA, DEFAULT_TAU2, NO_WINNER, look_statistics

WEIGHTS = (0.5, 0.5)
LIFT = 0.10
NEVER = -1


@dataclass(frozen=True)
class Outcome:
    """Per experiment: the first day (1-based) each method named a winner, which arm, and
    whether the sample-ratio check ever flagged."""

    sequential_day: np.ndarray
    sequential_winner: np.ndarray
    chi_squared_day: np.ndarray
    chi_squared_winner: np.ndarray
    srm_ever_flagged: np.ndarray


def simulate(rng: np.random.Generator, experiments: int, days: int, leads_per_day: int, lift: float) -> Outcome:
    """Run every experiment through `days` daily looks; B converts at (1 + lift) x the base."""
    base = rng.uniform(0.04, 0.06, experiments)
    to_a = rng.binomial(leads_per_day, WEIGHTS[0], (experiments, days))
    daily_exposed = np.stack([to_a, leads_per_day - to_a], axis=-1)
    rates = np.stack([base, base * (1 + lift)], axis=-1)[:, None, :]
    exposed = daily_exposed.cumsum(axis=1)
    converted = rng.binomial(daily_exposed, rates).cumsum(axis=1)
    seq_day, seq_winner = np.full(experiments, NEVER), np.full(experiments, NO_WINNER)
    chi_day, chi_winner = np.full(experiments, NEVER), np.full(experiments, NO_WINNER)
    srm_flagged = np.zeros(experiments, dtype=bool)
    carried = np.ones((experiments, 2))
    for day in range(days):
        look = look_statistics(exposed[:, day], converted[:, day], WEIGHTS, carried)
        carried = look.always_valid_p
        srm_flagged |= look.srm_flagged
        seq_new = (seq_day == NEVER) & (look.winner != NO_WINNER)
        seq_day[seq_new], seq_winner[seq_new] = day + 1, look.winner[seq_new]
        chi_new = (chi_day == NEVER) & look.enough_sample & (look.chi_squared_p < DEFAULT_ALPHA)
        chi_day[chi_new] = day + 1
        chi_winner[chi_new] = np.where(look.absolute_lift[chi_new, 1] > 0, 1, 0)
    return Outcome(seq_day, seq_winner, chi_day, chi_winner, srm_flagged)


def percent(mask: np.ndarray) -> float:
    return round(100.0 * float(mask.mean()), 2)


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="./dev bench experiments")
    ap.add_argument("--experiments", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--leads-per-day", type=int, default=1_000, help="leads per experiment per day, both arms")
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args(argv)
    if args.experiments < 1 or args.days < 1 or args.leads_per_day < 2:
        ap.error("--experiments and --days must be at least 1, --leads-per-day at least 2")
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    say(f"A/A: {args.experiments:,} experiments x {args.days} daily looks, {args.leads_per_day:,} leads a day, "
        f"tau^2 = {DEFAULT_TAU2:.3g}")
    null = simulate(rng, args.experiments, args.days, args.leads_per_day, 0.0)
    value = percent(null.sequential_day != NEVER)
    baseline = percent(null.chi_squared_day != NEVER)
    say(f"  false winners: sequential {value} %, chi-squared at every look {baseline} %")
    say(f"lift: the same with B converting {LIFT:.0%} better (relative)")
    lifted = simulate(rng, args.experiments, args.days, args.leads_per_day, LIFT)
    found = lifted.sequential_winner == 1
    power = percent(found)
    chi_power = percent(lifted.chi_squared_winner == 1)
    median_days = float(np.median(lifted.sequential_day[found])) if found.any() else None
    say(f"  B named the winner: sequential {power} % (median day {median_days}), chi-squared {chi_power} %")
    say(f"for scale: the same with a {2 * LIFT:.0%} relative lift")
    doubled = simulate(rng, args.experiments, args.days, args.leads_per_day, 2 * LIFT)
    say(f"  B named the winner: sequential {percent(doubled.sequential_winner == 1)} %")
    seconds = round(time.perf_counter() - started, 2)
    say(f"done in {seconds}s")
    emit({"bench": "experiments", "value": value, "unit": f"% false positives (A/A, {args.days} daily looks)",
          "baseline": baseline, "ratio": round(value / baseline, 3) if baseline else None,
          "target": "<= 5.5", "met": value <= 5.5,
          "power_pct": power, "median_days_to_decision": median_days, "chi_squared_power_pct": chi_power,
          "chi_squared_median_days": float(np.median(lifted.chi_squared_day[lifted.chi_squared_winner == 1]))
          if (lifted.chi_squared_winner == 1).any() else None,
          "srm_false_flag_pct": percent(null.srm_ever_flagged),
          "wrong_direction_pct_on_lift": percent(lifted.sequential_winner == 0),
          "power_pct_at_double_lift": percent(doubled.sequential_winner == 1),
          "median_days_at_double_lift": float(np.median(doubled.sequential_day[doubled.sequential_winner == 1]))
          if (doubled.sequential_winner == 1).any() else None,
          "experiments": args.experiments, "days": args.days, "leads_per_day": args.leads_per_day,
          "base_rate": "4-6 %", "lift_relative": LIFT, "tau2": DEFAULT_TAU2, "alpha": DEFAULT_ALPHA,
          "seed": args.seed, "seconds": seconds})


if __name__ == "__main__":
    main(sys.argv[1:])
