"""The demo's recommendations chapter: jobsnearby's daily alerts show a "Recommended for you"
block of three jobs beside the matched ones. Before the morning the brand's recommender is
trained (the scheduled job's use case) on its live jobs and the people's job clicks so far: on
a fresh stack nobody has clicked yet, so every lead is a cold start (its interests, place and
the jobs' popularity). After the afternoon: the people's clicks on matched and on recommended
jobs, and a new version trained with them."""
from __future__ import annotations

import time
from datetime import datetime, timezone

from rich.console import Console

from domain.config_changes import Change
from domain.config_entities import Ref
from projections.clickhouse import connect
from runtime.deps import build
from streams.settings import Settings

TENANT, LIST, SHOWN = "jobsnearby", "daily-jobs", 3


async def start_recommendations(s: Settings, console: Console) -> None:
    """Show SHOWN recommendations in the list's alerts and train the brand's model now."""
    deps = build(s)
    svc = deps.config_service
    ref = Ref("list", TENANT, LIST)
    current = svc.current(ref)
    if current is not None and current.data and current.data.get("recommendations") != SHOWN:
        await svc.apply([Change("replace", ref, {**current.data, "recommendations": SHOWN}, current.version,
                                actor="demo")])
    model = await deps.recommender_training().train(TENANT, int(time.time() * 1000))
    clickers = int((model.clickers > 0).sum())
    console.print(f"\n[bold]recommendations[/]: {TENANT}'s {LIST} alerts show {SHOWN} recommended jobs beside the "
                  f"matched ones; recommender {model.version} trained on {int(model.has_content.sum()):,} jobs and "
                  f"{clickers:,} clicked jobs" + ("" if clickers else " (nobody has clicked yet: every lead is a "
                                                  "cold start, ranked on its interests, place and popularity)"))
    await deps.redis.aclose()


async def report_recommendations(s: Settings, console: Console, since: float) -> bool:
    """People's clicks since `since` on matched and recommended jobs; retrain with them."""
    ch = connect(s.clickhouse_host, s.clickhouse_port)
    try:
        rows = dict(ch.execute(
            f"SELECT visitParamExtractString(payload, 'slot') AS slot, count() FROM {s.clickhouse_database}.events "
            f"PREWHERE tenant = %(t)s AND event_type = 'engagement.clicked' "
            f"WHERE occurred_at >= %(since)s AND visitParamExtractBool(payload, 'is_bot') = 0 GROUP BY slot",
            {"t": TENANT, "since": datetime.fromtimestamp(since, timezone.utc).replace(tzinfo=None)}))
    finally:
        ch.disconnect()
    deps = build(s)
    model = await deps.recommender_training().train(TENANT, int(time.time() * 1000))
    await deps.redis.aclose()
    console.print(f"  people's clicks on {TENANT}'s jobs this afternoon: {rows.get('job', 0):,} on matched jobs, "
                  f"{rows.get('recommended', 0):,} on recommended ones; retrained as {model.version} with "
                  f"{int((model.clickers > 0).sum()):,} clicked jobs (the next alerts use it). The afternoon's "
                  f"people click at random among an email's jobs: this shows the clicks tracked and learned from, "
                  f"not which ranking is better (./dev bench recommend measures that)")
    return True
