"""The demo's consent chapter: people change their minds, and the ledger keeps every word.

Some of this run's Jobs Nearby email leads withdraw their marketing consent on the preference
centre (POST /v1/consent/batch), a third of them give it again a minute later, and an import of
last year's signup forms for others arrives after their withdrawal (older records: they change
nothing). Then a table from GET /v1/consent: who may be sent to, and a look at ClickHouse: the
records' ip addresses are sealed with each lead's data key (no clear ip anywhere). The morning
that follows skips the withdrawn ones with reason consent_withdrawn.
"""
from __future__ import annotations

import asyncio
import random
import time

import httpx
import orjson
import redis.asyncio as aioredis
from rich.console import Console
from rich.table import Table

from projections.clickhouse import connect
from stack.demo_people import accepted_email_leads
from streams.settings import Settings

TENANT, LIST = "jobsnearby", "daily-jobs"
PEOPLE = 24


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + "Z"


async def run_consent(s: Settings, console: Console, lead_ids: set[str], key: str, seed: int = 5) -> bool:
    """The chapter; False if the ledger did not end as it should."""
    console.rule("[bold]consent: the ledger")
    r = aioredis.Redis.from_url(s.redis_url)
    try:
        people = await _people(r, lead_ids)
    finally:
        await r.aclose()
    if len(people) < PEOPLE:
        console.print(f"  only {len(people)} accepted Jobs Nearby email leads on {LIST}: too few for the chapter")
        return False
    rng = random.Random(seed)
    chosen = rng.sample(people, PEOPLE)
    back, forms = chosen[:PEOPLE // 3], chosen[PEOPLE // 3:2 * PEOPLE // 3]
    now = int(time.time() * 1000)
    ip = lambda: f"198.51.100.{rng.randrange(1, 255)}"  # noqa: E731
    withdrawn = [{"lead_id": lid, "granted": False, "via": "preference_center", "ip": ip(), "at": _iso(now - 60_000)}
                 for lid in chosen]
    again = [{"lead_id": lid, "granted": True, "via": "signup_form", "ip": ip(), "at": _iso(now),
              "text": "Yes, send me job alerts by email. I can unsubscribe at any time."} for lid in back]
    old = [{"lead_id": lid, "granted": True, "via": "import", "at": _iso(now - 300 * 86_400_000),
            "text": "Job alerts by email (form of last year)"} for lid in forms]
    async with httpx.AsyncClient(base_url=s.api_url, headers={"authorization": f"Bearer {key}"}, timeout=30) as c:
        for records in (withdrawn, again, old):
            resp = await c.post("/v1/consent/batch", json={"records": records})
            if resp.status_code != 202:
                console.print(f"  [bold red]the API refused the records: {resp.status_code} {resp.text[:300]}[/]")
                return False
        states = await _settled(c, chosen, len(chosen) - len(back))
    console.print(f"  {len(chosen)} people withdrew their marketing consent on the preference centre; "
                  f"{len(back)} gave it again a minute later; last year's signup forms of {len(forms)} others "
                  f"were imported after their withdrawal")
    clear_ips, sealed = await asyncio.to_thread(_sealed_in_clickhouse, s, [w["ip"] for w in withdrawn], chosen)
    _print(console, states, back, forms, clear_ips, sealed)
    ok = (sum(1 for st in states.values() if not st["sending_allowed"]) == len(chosen) - len(back)
          and all(states[lid]["sending_allowed"] for lid in back)
          and not any(states[lid]["sending_allowed"] for lid in forms) and clear_ips == 0 and sealed > 0)
    if not ok:
        console.print("  [bold red]expected the re-consented to be sendable, everyone else withdrawn whatever "
                      "old form came after, and no clear ip in ClickHouse[/]")
    return ok


async def _people(r, lead_ids: set[str]) -> list[str]:
    return [st["lead_id"] for st in await accepted_email_leads(r, TENANT, lead_ids, LIST)]


async def _settled(c: httpx.AsyncClient, leads: list[str], expect_withdrawn: int, timeout: float = 60) -> dict:
    """Each lead's current consent, once the hygiene agent folded every record."""
    deadline = time.monotonic() + timeout
    while True:
        states = {}
        for lid in leads:
            resp = await c.get("/v1/consent", params={"lead_id": lid})
            states[lid] = resp.json() if resp.status_code == 200 else {"sending_allowed": True, "purposes": {}}
        folded = all(st["purposes"].get("marketing", {}).get("via") in ("preference_center", "signup_form")
                     for st in states.values())
        withdrawn = sum(1 for st in states.values() if not st["sending_allowed"])
        if (folded and withdrawn == expect_withdrawn) or time.monotonic() > deadline:
            return states
        await asyncio.sleep(0.5)


def _sealed_in_clickhouse(s: Settings, ips: list[str], leads: list[str]) -> tuple[int, int]:
    """(consent rows of these leads with a clear ip, rows with a sealed one), once they arrived."""
    ch = connect(s.clickhouse_host, s.clickhouse_port)
    deadline = time.monotonic() + 60
    while True:
        rows = ch.execute(f"SELECT payload FROM {s.clickhouse_database}.events FINAL WHERE event_type LIKE 'consent.%%' "
                          f"AND lead_id IN %(l)s", {"l": tuple(leads)})
        if len(rows) >= len(leads) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    payloads = [orjson.loads(p) for (p,) in rows]
    clear = sum(1 for p in payloads if p.get("ip") in ips)
    sealed = sum(1 for p in payloads if str(p.get("ip") or "").startswith("ls1."))
    return clear, sealed


def _print(console: Console, states: dict, back: list[str], forms: list[str], clear_ips: int, sealed: int) -> None:
    table = Table(box=None, padding=(0, 2))
    for col in ("who", "people", "may be sent to", "current marketing consent via"):
        table.add_column(col, justify="left" if col in ("who", "current marketing consent via") else "right")
    groups = (("withdrew, then gave it again", back), ("withdrew, then an older form was imported", forms),
              ("withdrew", [lid for lid in states if lid not in back and lid not in forms]))
    for label, leads in groups:
        allowed = sum(1 for lid in leads if states[lid]["sending_allowed"])
        vias = sorted({states[lid]["purposes"].get("marketing", {}).get("via", "-") for lid in leads})
        table.add_row(label, str(len(leads)), str(allowed), ", ".join(vias))
    console.print(table)
    console.print(f"  in ClickHouse: {sealed} records with the ip sealed by the lead's data key, {clear_ips} with a "
                  f"clear ip; the morning skips the withdrawn with reason consent_withdrawn")
