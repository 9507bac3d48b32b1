"""The demo's product-events chapter: HireFlow's job board tells the platform what people do
(they view jobs, start applications, some finish), through POST /v1/events/batch with the
brand's key. The trigger engine sends the "viewed 3 nursing jobs" follow-up at once and the
abandoned-application reminder when its 2-hour window closes (the demo moves the engine's
test clock forward instead of waiting), and says what it held back: the cooldown, the daily
cap on triggered email, the quiet hours of each person's own time zone, finished applications.
"""
from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import datetime, timezone

import httpx
import redis.asyncio as aioredis
from rich.console import Console
from rich.table import Table

from stack.demo_people import accepted_email_leads
from streams.settings import Settings
from streams.topic_tail import TopicTail

TENANT = "hireflow"
TRIGGERS = ("viewed-3-nursing", "abandoned-application")
NURSING = ("ICU Nurse", "Ward Nurse", "Night Nurse", "Pediatric Nurse", "Travel Nurse", "Charge Nurse")
HOUR_MS = 3_600_000


async def run_triggers(s: Settings, console: Console, lead_ids: set[str], demo_key: str, seed: int = 7) -> bool:
    """The chapter; False if something did not happen as it should."""
    console.rule("[bold]product events: triggered messages")
    r = aioredis.Redis.from_url(s.redis_url)
    try:
        people = await _people(r, lead_ids)
        if len(people) < 10:
            console.print(f"  only {len(people)} accepted HireFlow email leads from this run: too few to show triggers")
            return False
        rng = random.Random(seed)
        events, plan = _activity(people, rng)
        events.append({"email": f"visitor-{uuid.uuid4().hex[:8]}@example.com", "name": "job_viewed",
                       "properties": {"category": "nursing", "title": "ICU Nurse"}})  # someone we do not know
        started = int(time.time() * 1000)
        taken = await _send(s, demo_key, events)
        console.print(f"  HireFlow's board sent {len(events):,} events for {len(people)} people: "
                      f"{plan['viewers']} looked at nursing jobs ({plan['three_plus']} viewed 3 or more, "
                      f"{plan['four']} a 4th), {plan['started']} started an application, {plan['finished']} "
                      f"finished it; 1 event named a visitor the platform does not know "
                      f"({taken.get('recorded_unknown', 0)} recorded as unknown)")
        await asyncio.sleep(4)
        console.print("  two hours pass for the trigger engine's timers (./dev's test clock: Redis ls:clockskew)")
        await r.set("ls:clockskew", 2 * HOUR_MS + 10_000)
        leads = {p for p, _ in people}
        try:
            outcome = await _wait_outcomes(s, leads, started, plan["started"])
            if outcome["deferred"]:
                morning = max(outcome["deferred"].values())
                console.print(f"  {len(outcome['deferred'])} messages wait for the end of their person's quiet hours "
                              f"(21:00-08:00 local); the clock moves on to the last of those mornings")
                await r.set("ls:clockskew", morning - int(time.time() * 1000) + 5_000)
                outcome = await _wait_settled(s, leads, started, set(outcome["deferred"]))
        finally:
            await r.set("ls:clockskew", 0)
        delivered = await _delivered(r, outcome["fired_ids"])
    finally:
        await r.aclose()
    _print(console, outcome, delivered)
    fired = outcome["by"]
    ok = all(fired.get((t, "fired"), 0) > 0 for t in TRIGGERS) and delivered == len(outcome["fired_ids"])
    if not ok:
        console.print("  [bold red]expected both triggers to send and every triggered message to be delivered[/]")
    return ok


async def _people(r, lead_ids: set[str]) -> list[tuple[str, str]]:
    """(lead id, timezone) of this run's accepted HireFlow email leads."""
    return [(st["lead_id"], st.get("timezone") or "") for st in await accepted_email_leads(r, TENANT, lead_ids)][:160]


def _activity(people: list[tuple[str, str]], rng: random.Random) -> tuple[list[dict], dict]:
    """What people did on the board: nursing views (1 to 4), applications started, some finished."""
    events, plan = [], {"viewers": 0, "three_plus": 0, "four": 0, "started": 0, "finished": 0}
    now = time.time()

    def ago(minutes: float) -> str:  # a visit of the last half hour, in order
        return datetime.fromtimestamp(now - minutes * 60, tz=timezone.utc).isoformat()
    for lid, _ in people:
        if rng.random() < 0.55:
            views = rng.choice((1, 2, 3, 3, 4))
            plan["viewers"] += 1
            plan["three_plus"] += views >= 3
            plan["four"] += views == 4
            for v in range(views):
                events.append({"lead_id": lid, "name": "job_viewed", "at": ago(30 - 3 * v),
                               "properties": {"category": "nursing", "title": rng.choice(NURSING)}})
        if rng.random() < 0.5:
            job = f"J{rng.randrange(10_000, 99_999)}"
            title = rng.choice(NURSING)
            plan["started"] += 1
            events.append({"lead_id": lid, "name": "application_started", "at": ago(12),
                           "properties": {"job_id": job, "job_title": title, "company": "Mercy General"}})
            if rng.random() < 0.4:
                plan["finished"] += 1
                events.append({"lead_id": lid, "name": "application_completed", "at": ago(rng.uniform(2, 8)),
                               "properties": {"job_id": job}})
    return events, plan


async def _send(s: Settings, key: str, events: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=s.api_url, headers={"authorization": f"Bearer {key}"}, timeout=30) as c:
        for i in range(0, len(events), 200):
            resp = await c.post("/v1/events/batch", json={"events": events[i:i + 200]})
            resp.raise_for_status()
            for e in resp.json()["events"]:
                out[e["outcome"]] = out.get(e["outcome"], 0) + 1
    return out


async def _wait_outcomes(s: Settings, leads: set[str], since_ms: int, started: int) -> dict:
    """The trigger engine's events about these people, once every started application is decided."""
    deadline, outcome = time.monotonic() + 90, {}
    while time.monotonic() < deadline:
        outcome = await asyncio.to_thread(_read_outcomes, s, leads, since_ms)
        decided = sum(n for (t, what), n in outcome["by"].items() if t == "abandoned-application"
                      and what in ("fired", "cooldown", "capped_day", "capped_week", "completed", "goal_reached",
                                   "deferred"))
        if decided >= started:
            break
        await asyncio.sleep(1)
    return outcome


async def _wait_settled(s: Settings, leads: set[str], since_ms: int, deferred: set[str]) -> dict:
    """The outcomes once every deferred message has fired or been held back."""
    deadline, outcome = time.monotonic() + 90, {}
    while time.monotonic() < deadline:
        outcome = await asyncio.to_thread(_read_outcomes, s, leads, since_ms)
        if deferred <= outcome["settled"]:
            break
        await asyncio.sleep(1)
    return outcome


def _read_outcomes(s: Settings, leads: set[str], since_ms: int) -> dict:
    tail = TopicTail(s.kafka_bootstrap, f"{s.topic_prefix}triggers.events")
    events = tail.events()
    tail.close()
    by: dict[tuple[str, str], int] = {}
    fired_ids: list[str] = []
    deferred: dict[str, int] = {}
    by_trigger: dict[str, set[str]] = {}
    settled: set[str] = set()
    for name, ev in events:
        if ev["lead_id"] not in leads or ev["occurred_at"].timestamp() * 1000 < since_ms - 1000:
            continue
        if name == "trigger.fired":
            key = "fired"
            fired_ids.append(ev["send_id"])
            by_trigger.setdefault(ev["trigger"], set()).add(ev["send_id"])
            settled.add(ev["send_id"])
        elif name == "trigger.suppressed":
            key = ev["reason"]
            settled.add(ev["send_id"])
        elif name == "trigger.deferred":
            key = "deferred"
            deferred[ev["send_id"]] = int(ev["until"].timestamp() * 1000)
        else:
            continue
        by[(ev["trigger"], key)] = by.get((ev["trigger"], key), 0) + 1
    return {"by": by, "fired_ids": sorted(set(fired_ids)), "deferred": {k: v for k, v in deferred.items()
                                                                      if k not in settled}, "settled": settled,
            "quiet": set(deferred), "by_trigger": by_trigger}


async def _delivered(r, send_ids: list[str]) -> int:
    """How many of the triggered messages the sender marked sent (the provider took them)."""
    deadline, n = time.monotonic() + 60, 0
    while time.monotonic() < deadline:
        marks = await r.mget([f"ls:send:{sid}" for sid in send_ids]) if send_ids else []
        n = sum(1 for m in marks if m and m.startswith(b"sent"))
        if n >= len(send_ids):
            break
        await asyncio.sleep(1)
    return n


def _print(console: Console, outcome: dict, delivered: int) -> None:
    by = outcome["by"]
    table = Table(title="what the trigger engine did (HireFlow, this run's people)", title_justify="left")
    for col in ("trigger", "triggered", "of them after quiet hours", "held: cooldown", "held: daily cap",
                "ended: finished / goal"):
        table.add_column(col, justify="left" if col == "trigger" else "right")
    for t in TRIGGERS:
        table.add_row(t, f"{by.get((t, 'fired'), 0):,}",
                      f"{len(outcome['quiet'] & outcome['by_trigger'].get(t, set())):,}",
                      f"{by.get((t, 'cooldown'), 0):,}",
                      f"{by.get((t, 'capped_day'), 0) + by.get((t, 'capped_week'), 0):,}",
                      f"{by.get((t, 'completed'), 0) + by.get((t, 'goal_reached'), 0):,}")
    console.print(table)
    console.print(f"  {delivered:,} of {len(outcome['fired_ids']):,} triggered emails delivered (Postmark, the "
                  f"nurses list's provider). "
                  f"See them: GET /v1/tenants/hireflow/segments/nursing-interest/members, or in ClickHouse: "
                  f"SELECT event_type, count() FROM leadstream.events WHERE event_type LIKE 'trigger.%' GROUP BY 1")
