"""The demo's CRM chapter: Hire Flow's HubSpot (the stand-in ./dev up runs) connected through
the control plane by its brand admin; contacts its users create become leads through the normal
intake, what we know of each goes back on its contact (written back by the crm agent), a CRM
user's rename reaches the lead within seconds (a signed webhook asks for a poll), and one person
asks to be erased: the answer says what went, and their contact keeps nothing we wrote.
"""
from __future__ import annotations

import asyncio
import time

import httpx
import redis.asyncio as aioredis
from rich.console import Console
from rich.table import Table

from domain.identity import LeadIds, identity_email
from stack.control_plane_demo import _demo_login
from streams.settings import Settings

TENANT, LIST = "hireflow", "nurses"
NAMES = ["Ada", "Bea", "Cleo", "Dina", "Elsa", "Faye", "Gina", "Hana", "Iris", "Joy", "Kira", "Lena",
         "Mia", "Nora", "Olga", "Pia", "Rosa", "Sara", "Tess", "Uma"]


async def _until(check, timeout: float) -> float | None:
    """Seconds until check() held (None: it did not within the timeout)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if await check():
            return time.monotonic() - t0
        await asyncio.sleep(0.3)
    return None


async def run_crm(s: Settings, console: Console, run_id: str) -> bool:
    """The chapter; False if something did not happen as it should."""
    console.rule("[bold]the CRM bridge: HubSpot contacts in, engagement out, an erasure")
    people = [(n, f"{n.lower()}.{run_id.lower()}@example.com") for n in NAMES]
    ids = [LeadIds(s.lead_id_secret).of(TENANT, "email", identity_email(e)) for _, e in people]
    r = aioredis.Redis.from_url(s.redis_url)
    async with httpx.AsyncClient(base_url=s.api_url, timeout=60) as brand, \
            httpx.AsyncClient(base_url=s.crm_url, timeout=30) as hub:
        email, password = _demo_login("brand_admin", TENANT)
        me = await brand.post("/v1/session", json={"email": email, "password": password})
        csrf = {"X-CSRF-Token": me.json()["csrf"]}
        etag = (await brand.get(f"/v1/tenants/{TENANT}")).headers["etag"]
        conf = {"base_url": s.crm_url, "token": "file:hubspot-standin-token", "app_id": "777",
                "app_secret": "file:hubspot-standin-app-secret", "list": LIST, "partner": "crm",
                "every_s": 300, "lookback_s": 600, "out": "crm_contacts"}
        resp = await brand.patch(f"/v1/tenants/{TENANT}", json={"crm": conf}, headers={"If-Match": etag, **csrf})
        if resp.status_code != 200:
            console.print(f"  [bold red]the CRM settings were refused: {resp.status_code} {resp.text[:300]}[/]")
            return False
        await hub.post("/_control", json={"webhook_target": f"{s.api_url}/webhooks/crm/hubspot/{TENANT}"})
        console.print(f"  {email} connected HubSpot ({s.crm_url}): contacts join [cyan]{LIST}[/], engagement "
                      "goes back on them; secrets by reference")
        await hub.post("/_control/contacts", json={"contacts": [{"email": e, "properties": {"firstname": n}}
                                                                for n, e in people]})

        async def all_leads() -> bool:
            return all(await r.mget([f"ls:lead:{TENANT}:{lid}" for lid in ids]))

        async def written_back() -> bool:
            mine = {c["properties"]["email"]: c["properties"] for c in (await hub.get("/_control/contacts")).json()}
            return all(mine.get(e, {}).get("leadstream_status") == "accepted" for _, e in people)
        took_in = await _until(all_leads, 120)
        took_out = await _until(written_back, 120) if took_in is not None else None
        renamed = None
        if took_out is not None:
            await hub.post("/_control/contacts", json={"contacts": [{"email": people[0][1],
                                                                     "properties": {"firstname": "Adaline"}}]})

            async def is_renamed() -> bool:
                raw = await r.get(f"ls:lead:{TENANT}:{ids[0]}")
                return bool(raw) and b'"first_name":"Adaline"' in raw
            renamed = await _until(is_renamed, 60)
        erased = None
        if renamed is not None:
            resp = await brand.post("/v1/subjects/erase", headers=csrf,
                                    json={"email": people[1][1], "reason": "asked by email (demo)"})
            erased = resp.json()["leads"][0] if resp.status_code == 200 else None
        kept = {}
        if erased:
            contact = next(c["properties"] for c in (await hub.get("/_control/contacts")).json()
                           if c["properties"]["email"] == people[1][1])
            kept = {k: v for k, v in contact.items() if k.startswith("leadstream_") and v}
        counts = (await hub.get("/_control")).json()["counts"]
        await brand.delete("/v1/session", headers=csrf)
    await r.aclose()
    table = Table(title="Hire Flow's CRM", show_edge=False)
    for col in ("step", "what happened"):
        table.add_column(col)
    table.add_row("in", _secs(took_in, f"{len(people)} contacts -> {len(people)} leads on {LIST} (the intake's rules)"))
    table.add_row("out", _secs(took_out, f"leadstream_status and score on every contact "
                                         f"({counts.get('upsert', 0)} upsert requests of up to 100)"))
    table.add_row("rename", _secs(renamed, "a CRM user renamed Ada -> Adaline: the lead follows (webhook, poll)"))
    table.add_row("erase", "not done" if not erased else
                  f"Bea: crm contact emptied ({erased['crm_contacts_cleared']}), {erased['redis_traces_removed']} "
                  f"Redis traces removed, {erased['clickhouse_rows_anonymised']} ClickHouse rows anonymised; "
                  f"leadstream properties left on her contact: {len(kept)}")
    console.print(table)
    return bool(erased) and not kept and erased["crm_contacts_cleared"] == 1


def _secs(took: float | None, what: str) -> str:
    return f"[red]did not happen in time[/]: {what}" if took is None else f"{what} in {took:.1f} s"
