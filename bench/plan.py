"""./dev bench plan [--leads N]

Seconds to plan one day's sends for N leads (default 1,000,000), the real way: N accepted
leads' read models and schedule members in a private Redis database, then the planner's
pass (agents.planner.plan_due) at the end of the day: read the due members, read the leads,
emit N send.requested to Kafka (acknowledged), move every member on to its next instant.
baseline: the pure planning arithmetic alone (domain.schedule.plan_day over the same leads),
so ratio = value / baseline shows what Redis and Kafka add to the computation.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time

import orjson

from bench._common import emit, isolated_settings, prepare, cleanup, run_id, say
from domain.intake import LeadState
from domain.planning import schedule_for
from domain.schedule import plan_day
from projections.redis_leads import lead_key
from projections.redis_schedule import Schedule
from runtime.deps import build

TENANT, LISTS = "jobsnearby", ("daily-jobs", "warehouse")
ZONES = ["America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Phoenix",
         "America/Anchorage", "Pacific/Honolulu", None]


def leads(n: int, seed: int) -> list[LeadState]:
    rnd = random.Random(seed)
    return [LeadState(TENANT, f"{i:024x}", "email", f"p{i}@example.com", "accepted",
                      lists=[rnd.choice(LISTS)], timezone=rnd.choice(ZONES), updated_ms=1)
            for i in range(n)]


async def load(deps, states: list[LeadState], day_start_ms: int, chunk: int = 20_000) -> None:
    """The read models and the schedule, as the intake and the planner agent would leave them."""
    r, tenant = deps.redis, deps.tenants.tenants[TENANT]
    schedule = Schedule(r)
    for i in range(0, len(states), chunk):
        part = states[i:i + chunk]
        await r.mset({lead_key(s.tenant, s.lead_id): orjson.dumps(s) for s in part})
        await schedule.set_entries([(TENANT, [e for s in part for e in schedule_for(s, tenant, day_start_ms)], [])])


async def run(deps, states: list[LeadState], day_start: int) -> tuple[int, float]:
    """Load, then time the planner's passes at each of the day's send instants, in order, as
    the running planner makes them through the day."""
    from agents.planner import plan_due
    await load(deps, states, day_start)
    instants = sorted({int(sc) for _, sc in await deps.redis.zrange(f"ls:due:{TENANT}", 0, -1, withscores=True)})
    say(f"planning the day: {len(instants)} send instants, the planner's pass at each")
    t0, requested = time.perf_counter(), 0
    for at in instants:
        requested += await plan_due(deps, at)
    await asyncio.to_thread(deps.producer.close)
    return requested, time.perf_counter() - t0


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="./dev bench plan")
    ap.add_argument("--leads", type=int, default=1_000_000)
    ap.add_argument("--redis-db", type=int, default=9)
    args = ap.parse_args(argv)
    rid = run_id()
    s = isolated_settings(f"bench-plan-{rid}.", args.redis_db, f"bench_plan_{rid}")
    prepare(s)
    deps = build(s)
    day_start = int(time.time() * 1000) // 86_400_000 * 86_400_000
    day_end = day_start + 86_400_000
    say(f"making {args.leads:,} accepted leads and their schedule in Redis db {args.redis_db}")
    states = leads(args.leads, 7)
    requested, value = asyncio.run(run(deps, states, day_start))
    say(f"  {requested:,} send requests emitted in {value:.1f}s")
    say("baseline: domain.schedule.plan_day over the same leads, no I/O")
    lists = {TENANT: deps.tenants.tenants[TENANT].lists}
    tuples = [(st.lead_id, TENANT, st.lists[0], st.timezone) for st in states]
    t0 = time.perf_counter()
    planned = plan_day(tuples, day_start, day_end, lists)
    base = time.perf_counter() - t0
    cleanup(s)
    emit({"bench": "plan", "value": round(value, 2), "unit": "s", "baseline": round(base, 2),
          "ratio": round(value / base, 2) if base else None, "leads": args.leads, "requested": requested,
          "planned_pure": len(planned), "requests_per_s": round(requested / value)})


if __name__ == "__main__":
    main(sys.argv[1:])
