"""The demo's digest chapter: Jobs Nearby's communities, and the digest of what members missed.

This run's accepted Jobs Nearby email leads join one to three of five communities (through
POST /v1/activity/batch; a tenth of them joined months ago and have not been seen since), the
communities post items (one stays silent), a daily digest is defined through the management API,
and the test clock moves a day ahead so every time zone's run is due. Then a table: runs,
members, digested, left out as inactive, nothing new, each path's timing, delivered.
"""
from __future__ import annotations

import asyncio
import random
import time
from datetime import datetime, timezone

import httpx
import redis.asyncio as aioredis
from rich.console import Console
from rich.table import Table

from domain.config_changes import Change
from domain.config_entities import Ref
from domain.digests import DAY_MS, DigestConfig, digest_send_id, latest_period, run_id
from runtime.deps import build
from stack.demo_people import accepted_email_leads
from streams.settings import Settings

TENANT, LIST = "jobsnearby", "daily-jobs"
GROUPS = ("warehouse-crew", "truckers-lounge", "retail-floor", "kitchen-talk", "night-shift")  # the last stays silent
TOPICS = ("Forklift certification tips", "Best routes around Chicago", "Holiday season hiring", "Knife skills",
          "Overtime rules explained", "Union or not?", "First week on the job", "Safety boots that last")


async def run_digests(s: Settings, console: Console, lead_ids: set[str], key: str, run: str, seed: int = 17) -> bool:
    """The chapter; False if something did not happen as it should. The digest is this demo
    run's own (a run of the same digest, zone and day is made once: another demo the same day
    would find it done)."""
    console.rule("[bold]activity digests: what members missed")
    digest = f"community-{run}".lower()
    r = aioredis.Redis.from_url(s.redis_url)
    try:
        people = await _people(r, lead_ids)
        if len(people) < 20:
            console.print(f"  only {len(people)} accepted Jobs Nearby email leads on {LIST}: too few for digests")
            return False
        rng = random.Random(seed)
        cfg = {"list": LIST, "template": "digest", "send_time": "08:00", "top_k": 4, "catch_up_hours": 25,
               "inactive_days": 90, "large_run_members": 20, "priority_active_days": 7}
        await _define(s, digest, cfg)
        await asyncio.sleep(2)  # every process has the new configuration
        async with httpx.AsyncClient(base_url=s.api_url, headers={"authorization": f"Bearer {key}"}, timeout=30) as c:
            plan = await _activity(c, people, rng)
        console.print(f"  {len(people)} people joined Jobs Nearby's communities ({plan['memberships']} memberships, "
                      f"{plan['inactive']} of them last seen months ago); {plan['items']} posts in "
                      f"{len(GROUPS) - 1} communities, {GROUPS[-1]} stayed silent")
        await asyncio.sleep(3)  # the activity worker keeps what came
        now = int(time.time() * 1000)
        skew = DAY_MS + 60_000
        console.print("  a day passes for the digest planner (./dev's test clock): every time zone's 08:00 is due")
        await r.set("ls:clockskew", skew)
        try:
            runs = await _wait_runs(r, digest, DigestConfig.model_validate(cfg), {tz for _, tz in people}, now + skew)
        finally:
            # the digest is switched off again: with the clock back, today's period would be due as well
            await _define(s, digest, {**cfg, "enabled": False})
            await r.set("ls:clockskew", 0)
        delivered, skipped, requested = await _delivered(s, r, digest, runs)
    finally:
        await r.aclose()
    _print(console, runs, delivered, skipped, requested)
    totals = _totals(runs)
    ok = (totals["requested"] > 0 and delivered + sum(skipped.values()) == requested == totals["requested"] and totals["left_out"] > 0
          and all(h.get("finished_at") for h in runs.values()))
    if not ok:
        console.print("  [bold red]expected every run to finish, inactive members left out, and every digest delivered[/]")
    return ok


async def _people(r, lead_ids: set[str]) -> list[tuple[str, str]]:
    """(lead id, time zone) of this run's accepted Jobs Nearby email leads on the list."""
    people = await accepted_email_leads(r, TENANT, lead_ids, LIST)
    return [(st["lead_id"], st.get("timezone") or "America/New_York") for st in people][:300]


async def _define(s: Settings, digest: str, cfg: dict) -> None:
    """The digest template and the digest, written through the control plane (created or replaced;
    the management API does the same: POST /v1/tenants/jobsnearby/digests)."""
    svc = build(s).config_service
    changes = []
    for ref, data in ((Ref("template", TENANT, "digest"), {"channel": "email", "description": "activity digest"}),
                      (Ref("digest", TENANT, digest), cfg)):
        cur = svc.current(ref)
        if cur is None or not cur.live:
            changes.append(Change("create", ref, data, None, actor="demo"))
        else:
            changes.append(Change("replace", ref, data, cur.version, actor="demo"))
    await svc.apply(changes)


async def _activity(c: httpx.AsyncClient, people: list[tuple[str, str]], rng: random.Random) -> dict:
    now = time.time()
    iso = lambda ago_s: datetime.fromtimestamp(now - ago_s, tz=timezone.utc).isoformat()  # noqa: E731
    events, plan = [], {"memberships": 0, "inactive": 0, "items": 0}
    for lid, tz in people:
        stale = rng.random() < 0.1
        plan["inactive"] += stale
        for g in rng.sample(GROUPS, rng.choice((1, 1, 2, 3))):
            events.append({"kind": "joined", "group_id": g, "lead_id": lid, "timezone": tz,
                           "at": iso(120 * 86400 if stale else rng.uniform(3600, 40 * 86400))})
            plan["memberships"] += 1
    posters = [lid for lid, _ in people[:30]]
    for n in range(60):
        g = rng.choice(GROUPS[:-1])
        events.append({"kind": "posted", "group_id": g, "item_id": f"demo-{n}-{rng.randrange(10**9)}",
                       "title": f"{rng.choice(TOPICS)} ({g})", "url": f"https://community.jobsnearby.example/p/{n}",
                       "score": round(rng.uniform(1, 100), 1), "author_lead_id": rng.choice(posters),
                       "at": iso(rng.uniform(60, 3600))})
        plan["items"] += 1
    for i in range(0, len(events), 500):
        resp = await c.post("/v1/activity/batch", json={"events": events[i:i + 500]})
        if resp.status_code != 202:
            raise RuntimeError(f"/v1/activity/batch: {resp.status_code} {resp.text}")
    return plan


async def _wait_runs(r, digest: str, cfg: DigestConfig, zones: set[str], at_ms: int,
                     timeout: float = 120) -> dict[str, dict]:
    """Each zone's run (its Redis hash) once all have finished, or as they are at the timeout."""
    runs = {tz: run_id(TENANT, digest, tz, latest_period(cfg, tz, at_ms).key) for tz in zones}
    deadline, got = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        got = {tz: {k.decode(): v.decode() for k, v in (await r.hgetall(f"ls:dgrun:{run}")).items()}
               for tz, run in runs.items()}
        if all(h.get("finished_at") for h in got.values()):
            break
        await asyncio.sleep(1)
    return got


async def _delivered(s: Settings, r, digest: str, runs: dict[str, dict],
                     timeout: float = 120) -> tuple[int, dict[str, int], int]:
    """(digests the sender marked sent, digests it skipped by reason (members of earlier demos who
    withdrew their consent or unsubscribed since), digests the runs requested): every member of
    each run's snapshot, waiting until the sender has settled all that were requested (or the
    timeout)."""
    ids = []
    for tz, h in runs.items():
        run = run_id(TENANT, digest, tz, h.get("period", ""))
        for path in ("priority", "standard"):
            ids += [digest_send_id(TENANT, digest, m.decode(), h.get("period", ""))
                    for m in await r.zrange(f"ls:dgsnap:{run}:{path}", 0, -1)]
    requested = sum(int(h.get("requested") or 0) for h in runs.values())
    deadline, sent, skipped = time.monotonic() + timeout, 0, {}
    while time.monotonic() < deadline:
        sent = 0
        for i in range(0, len(ids), 1000):
            marks = await r.mget([f"ls:send:{sid}" for sid in ids[i:i + 1000]])
            sent += sum(1 for m in marks if m and m.startswith(b"sent"))
        skipped = await asyncio.to_thread(_skipped, s, ids)
        if sent + sum(skipped.values()) >= requested:
            break
        await asyncio.sleep(1)
    return sent, skipped, requested


def _skipped(s: Settings, send_ids: list[str]) -> dict[str, int]:
    """reason -> digests of these send ids the sender skipped."""
    if not send_ids:
        return {}
    from projections.clickhouse import connect
    return dict(connect(s.clickhouse_host, s.clickhouse_port).execute(
        f"SELECT visitParamExtractString(payload, 'reason') AS reason, "
        f"uniqExact(visitParamExtractString(payload, 'send_id')) FROM {s.clickhouse_database}.events "
        f"WHERE event_type = 'send.skipped' AND visitParamExtractString(payload, 'send_id') IN %(ids)s "
        f"GROUP BY reason", {"ids": tuple(send_ids)}))


def _totals(runs: dict[str, dict]) -> dict[str, int]:
    keys = ("members", "requested", "nothing_new", "left_out", "priority", "standard")
    return {k: sum(int(h.get(k) or 0) for h in runs.values()) for k in keys}


def _print(console: Console, runs: dict[str, dict], delivered: int, skipped: dict[str, int], requested: int) -> None:
    t = _totals(runs)
    timing = [(int(h["priority_done_at"]) - int(h["planned_at"]), int(h["finished_at"]) - int(h["planned_at"]))
              for h in runs.values() if h.get("finished_at") and h.get("priority_done_at") and h.get("planned_at")]
    table = Table(title="the digest of what members missed (Jobs Nearby's communities: this run's people and "
                        "those of earlier demos)", title_justify="left")
    for col in ("runs (time zones)", "members", "digested", "left out: inactive 90+ days", "nothing new",
                "priority path", "standard path", "delivered"):
        table.add_column(col, justify="right")
    pri_ms = max((p for p, _ in timing), default=0)
    std_ms = max((f for _, f in timing), default=0)
    table.add_row(f"{len(runs)}", f"{t['members'] + t['left_out']:,}", f"{t['requested']:,}", f"{t['left_out']:,}",
                  f"{t['nothing_new']:,}", f"{t['priority']:,} done in {pri_ms / 1000:.1f} s",
                  f"{t['standard']:,} done by {std_ms / 1000:.1f} s",
                  f"{delivered:,} of {requested:,}")
    console.print(table)
    if skipped:
        console.print("  not delivered, by the sender's screen (members of earlier demos): "
                      + ", ".join(f"{n:,} {reason}" for reason, n in sorted(skipped.items())))
    console.print("  Members seen in the last week go on the priority path, digested before the standard one; in a "
                  "run of 20+ members those not seen for 90 days are left out. Runs: digests.events (digest.planned, "
                  "chunk_done, run_finished); in ClickHouse: SELECT event_type, count() FROM leadstream.events "
                  "WHERE event_type LIKE 'digest.%' GROUP BY 1")
