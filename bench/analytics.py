"""./dev bench analytics [--leads N] [--days D] [--repeat R] [--baseline-repeat B] [--keep]

Dashboard queries over a synthetic history: N leads (default 10,000,000) over D days (90),
~5.7 events per lead (bench/_analytics_history.py: the real event mix and cardinalities),
generated inside ClickHouse into a fresh database of its own (an_bench_analytics_<id>) so
that the materialized views fill the rollups as in production. Then a fixed set of dashboard
queries (overview totals, daily series, breakdowns by partner / list and template / country /
keyword / job feed, a partner's view, an hourly view, weekly send outcomes) runs R times each
through projections.analytics (SQL and shaping, as the API answers them).

value: p95 ms over every run of every query (target < 1,000 ms). baseline: p95 ms of the same
answers computed by scanning the events table (bench/_analytics_baseline.py), run B times
each; both answers are compared, and `matched` says whether every query gave equal answers.
ratio = baseline / value. The database is dropped at the end unless --keep.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date, datetime, timedelta, timezone

from clickhouse_driver import Client

from bench._analytics_baseline import baseline_plan
from bench._analytics_history import steps
from bench._common import emit, run_id, say
from domain.analytics import ADMIN, authorize, brand_scope, parse_request, partner_scope
from projections.analytics import Analytics, ClientPool
from projections.clickhouse import connect, migrate
from streams.settings import get_settings

CHUNK = 2_000_000
SCAN_SETTINGS = {"max_bytes_before_external_group_by": 1_500_000_000}
FIRST_DAY = date(2025, 9, 1)
SHARES = {"jobsnearby": 0.7, "hireflow": 0.6, "shiftly": 0.65, "nursefinder": 0.7, "truckerjobs": 0.5,
          "retailnow": 0.7, "techhire": 0.75, "careboard": 0.7, "gigsy": 0.6, "campusjobs": 0.7, "remotely": 0.7,
          "warehousepro": 0.55}


def dashboard(first: date, last: date) -> list[tuple[str, str, object, dict]]:
    """(name, series|breakdown, scope, request) of the fixed dashboard queries."""
    month = last - timedelta(days=29)
    overview = ["leads_submitted", "leads_accepted", "leads_rejected", "leads_duplicate", "unsubscribes",
                "sends_dispatched", "sends_delivered", "bounces_hard", "opens_human_unique", "clicks_human_unique",
                "ctr_human", "click_to_open_human", "complaints", "revenue_cents", "brand_share_cents",
                "platform_share_cents", "ecpm_cents"]
    return [
        ("overview_totals_90d", "breakdown", ADMIN, dict(metrics=overview, since=first, until=last)),
        ("brand_overview_by_tenant_90d", "breakdown", ADMIN,
         dict(metrics=overview, since=first, until=last, group_by=["tenant"])),
        ("daily_series_by_tenant_90d", "series", ADMIN,
         dict(metrics=["leads_accepted", "sends_dispatched", "clicks_human_unique", "revenue_cents"],
              since=first, until=last, group_by=["tenant"])),
        ("brand_daily_funnel_30d", "series", brand_scope("hireflow"),
         dict(metrics=["leads_submitted", "leads_accepted", "sends_dispatched", "opens_human", "opens_machine",
                       "opens_human_unique", "clicks_human", "clicks_machine", "clicks_human_unique", "ctr_human"],
              since=month, until=last)),
        ("brand_by_partner_30d", "breakdown", brand_scope("jobsnearby"),
         dict(metrics=["leads_submitted", "leads_accepted", "leads_rejected", "leads_duplicate", "sends_dispatched",
                       "opens_human_unique", "clicks_human_unique", "ctr_human", "revenue_cents", "unsubscribes"],
              since=month, until=last, group_by=["partner"])),
        ("by_list_and_template_30d", "breakdown", ADMIN,
         dict(metrics=["sends_dispatched", "sends_delivered", "opens_human_unique", "clicks_human_unique", "ctr_human",
                       "click_to_open_human", "ecpm_cents"], since=month, until=last, group_by=["list", "template"])),
        ("leads_by_country_state_90d", "breakdown", ADMIN,
         dict(metrics=["leads_submitted", "leads_accepted", "acceptance_rate"], since=first, until=last,
              group_by=["country", "state"])),
        ("partner_view_daily_30d", "series", partner_scope("jobsnearby", "ziprecruiter"),
         dict(metrics=["leads_submitted", "leads_accepted", "leads_rejected", "sends_dispatched",
                       "opens_human_unique", "clicks_human_unique", "ctr_human"],
              since=month, until=last, group_by=["list"])),
        ("hourly_by_channel_2d", "series", ADMIN,
         dict(metrics=["sends_dispatched", "opens_human", "clicks_human", "clicks_machine"],
              since=last - timedelta(days=1), until=last, granularity="hour", group_by=["channel"])),
        ("top_keywords_30d", "breakdown", ADMIN,
         dict(metrics=["leads_accepted", "leads_submitted"], since=month, until=last, group_by=["keyword"],
              limit=50)),
        ("weekly_send_outcomes_by_kind_90d", "series", ADMIN,
         dict(metrics=["sends_requested", "sends_dispatched", "sends_failed", "sends_deferred",
                       "sends_skipped_daily_cap", "sends_skipped_no_matching_jobs"],
              since=first, until=last, granularity="week", group_by=["kind"])),
        ("clicks_by_job_feed_and_creative_30d", "breakdown", ADMIN,
         dict(metrics=["clicks_human", "clicks_machine", "revenue_cents", "machine_click_cents"],
              since=month, until=last, group_by=["job_source", "creative"])),
        ("rejections_by_reason_per_partner_90d", "breakdown", brand_scope("shiftly"),
         dict(metrics=["leads_rejected", "leads_rejected_invalid_email", "leads_rejected_disposable_email",
                       "leads_rejected_blocklisted", "leads_rejected_invalid_phone", "unsubscribes_link",
                       "unsubscribes_inactive"], since=first, until=last, group_by=["partner"])),
    ]


def generate(ch, db: str, leads: int, days: int) -> tuple[int, float]:
    """Write the history chunk by chunk (progress on stderr); returns (events, seconds)."""
    start = int(datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=timezone.utc).timestamp())
    t0 = time.monotonic()
    plan = steps(db, leads, start, days)
    total_rows = sum(s.rows for s in plan)
    walked = 0
    for step in plan:
        for off in range(0, step.rows, CHUNK):
            count = min(CHUNK, step.rows - off)
            ch.execute(step.sql.replace("{off}", str(off)).replace("{count}", str(count)))
            walked += count
            (n,) = ch.execute(f"SELECT count() FROM {db}.events")[0]
            elapsed = time.monotonic() - t0
            say(f"  {step.label:<36} {off + count:>11,}/{step.rows:,}   events {n:>11,}   "
                f"{elapsed:6.0f}s  ({walked / total_rows:5.1%} walked)")
    (n,) = ch.execute(f"SELECT count() FROM {db}.events")[0]
    return n, time.monotonic() - t0


def wait_for_merges(ch, db: str, limit_s: float) -> float:
    """Let background merges settle (a loaded table in steady state), at most limit_s."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        (busy,) = ch.execute(f"SELECT count() FROM system.merges WHERE database = '{db}'")[0]
        if not busy:
            break
        time.sleep(5)
    return time.monotonic() - t0


def timed(engine: Analytics, kind: str, scope, request) -> tuple[float, dict]:
    t0 = time.perf_counter()
    answer = getattr(engine, kind)(request, scope)
    return (time.perf_counter() - t0) * 1000, answer


def p95(values: list[float]) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(0.95 * len(s))) - 1))]


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="./dev bench analytics")
    ap.add_argument("--leads", type=int, default=10_000_000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--repeat", type=int, default=9, help="runs of each dashboard query (rollups)")
    ap.add_argument("--baseline-repeat", type=int, default=3, help="runs of each query by scanning events")
    ap.add_argument("--merge-wait", type=float, default=600, help="seconds to let background merges settle")
    ap.add_argument("--database", help="use this existing database (from an earlier --keep) instead of generating")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = ap.parse_args(argv)
    s = get_settings()
    ch = connect(s.clickhouse_host, s.clickhouse_port)
    db = args.database or f"an_bench_analytics_{run_id()}"
    if not db.startswith("an_"):
        sys.exit("the benchmark's database name must start with an_")
    generated = args.database is None
    last = FIRST_DAY + timedelta(days=args.days - 1)
    queries = [(name, kind, scope, parse_request(**kw)) for name, kind, scope, kw in dashboard(FIRST_DAY, last)]
    for _, _, scope, req in queries:  # a mistake in the fixed set fails now, not after generating
        authorize(req, scope)
    events, gen_s, merge_s = None, 0.0, 0.0
    try:
        if generated:
            say(f"generating {args.leads:,} leads over {args.days} days into {db} (inside ClickHouse)")
            ch.execute(f"DROP DATABASE IF EXISTS {db}")
            migrate(ch, db)
            events, gen_s = generate(ch, db, args.leads, args.days)
            say(f"{events:,} events in {gen_s:.0f}s; letting merges settle")
            merge_s = wait_for_merges(ch, db, args.merge_wait)
        else:
            (events,) = ch.execute(f"SELECT count() FROM {db}.events")[0]
        mix = dict(ch.execute(f"SELECT event_type, count() FROM {db}.events GROUP BY event_type ORDER BY event_type"))
        leads = ch.execute(f"SELECT uniqExact(lead_id) FROM {db}.events WHERE event_type = 'lead.submitted'")[0][0]
        rollup_rows = dict(ch.execute(f"SELECT table, sum(rows) FROM system.parts WHERE database = '{db}' AND active "
                                      f"GROUP BY table ORDER BY table"))
        fast = Analytics(ClientPool(lambda: connect(s.clickhouse_host, s.clickhouse_port)), db, SHARES)
        # the scans group by event id over millions of events: let big GROUP BYs spill to disk
        slow = Analytics(ClientPool(lambda: Client(host=s.clickhouse_host, port=s.clickhouse_port,
                                                   send_receive_timeout=600, settings=SCAN_SETTINGS)),
                         db, SHARES, planner=baseline_plan)
        per_query, all_fast, all_slow, matched = {}, [], [], True
        for name, kind, scope, req in queries:
            runs, answer = [], None
            for _ in range(args.repeat):
                ms, answer = timed(fast, kind, scope, req)
                runs.append(ms)
            base_runs, base_answer = [], None
            for _ in range(args.baseline_repeat):
                ms, base_answer = timed(slow, kind, scope, req)
                base_runs.append(ms)
            same = answer == base_answer
            matched &= same
            all_fast += runs
            all_slow += base_runs
            per_query[name] = {"p50_ms": round(statistics.median(runs), 1), "p95_ms": round(p95(runs), 1),
                               "baseline_p50_ms": round(statistics.median(base_runs), 1),
                               "baseline_p95_ms": round(p95(base_runs), 1), "matched": same,
                               "tables": sorted(fast.last_timings)}
            say(f"  {name:<40} p50 {statistics.median(runs):7.1f} ms  p95 {p95(runs):7.1f} ms   "
                f"scan p50 {statistics.median(base_runs):9.1f} ms   {'matched' if same else 'DIFFERENT'}")
        value, baseline = p95(all_fast), p95(all_slow)
        say(f"dashboard p95 {value:.1f} ms (p50 {statistics.median(all_fast):.1f}); scanning events p95 "
            f"{baseline:.1f} ms; answers {'matched' if matched else 'DIFFERED'}")
        emit({"bench": "analytics", "value": round(value, 1), "unit": "ms", "baseline": round(baseline, 1),
              "ratio": round(baseline / value, 1) if value else None, "p50_ms": round(statistics.median(all_fast), 1),
              "baseline_p50_ms": round(statistics.median(all_slow), 1), "target_ms": 1000, "matched": matched,
              "events": events, "leads": leads, "days": args.days, "queries": len(per_query),
              "runs_per_query": args.repeat, "baseline_runs_per_query": args.baseline_repeat,
              "generate_s": round(gen_s), "merge_wait_s": round(merge_s), "mix": mix, "rows": rollup_rows,
              "per_query": per_query})
    finally:
        if not args.keep and generated:
            ch.execute(f"DROP DATABASE IF EXISTS {db}")
            say(f"dropped {db}")
        elif generated:
            say(f"kept {db} (run again with --database {db})")
        ch.disconnect()


if __name__ == "__main__":
    main(sys.argv[1:])
