"""The demo's control-plane chapter: a brand admin signs in, changes a list's send time on the
running platform, every process applies it, the next lead follows the new rule, the audit log
says who did it; then the time is set back. Runs against the live API like a person would.
"""
from __future__ import annotations

import asyncio
import re
import time
import uuid
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import httpx
import redis.asyncio as aioredis
from rich.console import Console
from rich.table import Table

from streams.settings import ROOT, Settings

TENANT, LIST, NEW_TIME = "jobsnearby", "daily-jobs", "07:30"


def _demo_login(role: str, tenant: str = TENANT) -> tuple[str, str]:
    import yaml
    doc = yaml.safe_load((ROOT / "tenants" / "demo.yaml").read_text())
    email = next(g["person"] for g in doc["grants"] if g["role"] == role and g.get("tenant", tenant) == tenant)
    return email, doc["people"][email]["demo_password"]


async def run_control_plane(settings: Settings, console: Console, demo_key: str) -> bool:
    """The chapter; False if something did not happen as it should."""
    console.rule("[bold]the control plane: a rule changed on the running platform")
    api = settings.api_url
    async with httpx.AsyncClient(base_url=api, timeout=30) as brand, httpx.AsyncClient(base_url=api) as analyst:
        email, password = _demo_login("brand_admin")
        me = (await brand.post("/v1/session", json={"email": email, "password": password})).json()
        csrf = {"X-CSRF-Token": me["csrf"]}
        console.print(f"  signed in as [cyan]{me['id']}[/] ({', '.join(f'{r} of {t}' for t, r in me['roles'].items())})")
        a_email, a_password = _demo_login("analyst")
        a_csrf = (await analyst.post("/v1/session", json={"email": a_email, "password": a_password})).json()["csrf"]
        url = f"/v1/tenants/{TENANT}/lists/{LIST}"
        before = await brand.get(url)
        old_time, etag = before.json()["data"]["send_time"], before.headers["etag"]
        denied = await analyst.patch(url, json={"send_time": NEW_TIME}, headers={"If-Match": etag, "X-CSRF-Token": a_csrf})
        console.print(f"  an analyst tries to change {LIST}: [yellow]{denied.status_code}[/] {denied.json()['message']}")
        bad = await brand.patch(url, json={"send_time": "25:00"}, headers={"If-Match": etag, **csrf})
        problem = bad.json()["problems"][0]
        console.print(f"  an impossible time is refused: [yellow]{bad.status_code}[/] {problem['field']}: {problem['problem']}")
        target_before = (await brand.get("/healthz")).json()["config_version"]
        after = await brand.patch(url, json={"send_time": NEW_TIME}, headers={"If-Match": etag, **csrf})
        if after.status_code != 200:
            console.print(f"  [red]the change was refused: {after.status_code} {after.text}[/]")
            return False
        target = (await brand.get("/healthz")).json()["config_version"]
        applied, took = await _wait_applied(settings, target, 30)
        console.print(f"  {LIST}.send_time [bold]{old_time} -> {NEW_TIME}[/] (ETag {etag} -> {after.headers['etag']}, "
                      f"configuration {target_before} -> {target}); applied by {len(applied)} processes "
                      f"in {took:.2f}s: {', '.join(sorted(applied))}")
        local = await _next_lead_schedule(settings, api, demo_key)
        follows = local is not None and local.strftime("%H:%M") == NEW_TIME
        console.print(f"  the next lead (New York) is scheduled for [bold]{local:%a %H:%M %Z}[/]"
                      f" {'[green]- the new rule[/]' if follows else '[red]- not the new rule[/]'}" if local else
                      "  [red]the next lead was not scheduled[/]")
        await _print_audit(brand, console)
        restore = await brand.patch(url, json={"send_time": old_time},
                                    headers={"If-Match": after.headers["etag"], **csrf})
        console.print(f"  set back to {old_time} (ETag {restore.headers.get('etag')}); "
                      f"import/export: ./dev config export > config.yaml · ./dev config import config.yaml")
        await brand.delete("/v1/session", headers=csrf)
        return follows and len(applied) >= 3 and restore.status_code == 200


async def _wait_applied(settings: Settings, target: int, timeout: float) -> tuple[dict[str, int], float]:
    """Every running process's configuration version, once all are at `target` (or the timeout)."""
    started = time.monotonic()
    versions: dict[str, int] = {}
    async with httpx.AsyncClient(timeout=5) as c:
        while time.monotonic() - started < timeout:
            versions = await _versions(c, settings)
            if versions and min(versions.values()) >= target:
                break
            await asyncio.sleep(0.05)
    return versions, time.monotonic() - started


async def _versions(c: httpx.AsyncClient, settings: Settings) -> dict[str, int]:
    out = {"api": (await c.get(f"{settings.api_url}/healthz")).json()["config_version"]}
    status = (await c.get(f"http://127.0.0.1:{settings.supervisor_port}/status")).json()
    out["supervisor"] = status.get("config_version", -1)
    out["tracking"] = _metric((await c.get(f"http://{settings.tracking_internal_host}:{settings.tracking_internal_port}/metrics")).text)
    for agent in status["agents"].values():
        for w in agent["workers"]:
            if w["state"] == "running" and w["metrics_port"]:
                try:
                    text = (await c.get(f"http://127.0.0.1:{w['metrics_port']}/metrics")).text
                except httpx.TransportError:  # just started (not listening yet) or just stopped
                    text = ""
                out[w["name"]] = _metric(text)  # -1 until it answers: waited for, or gone next poll
    return out


def _metric(text: str) -> int:
    m = re.search(r"^leadstream_config_version (\S+)$", text, re.M)
    return int(float(m.group(1))) if m else -1


async def _next_lead_schedule(settings: Settings, api: str, key: str) -> datetime | None:
    """Submit one New York lead to the list and read the instant the planner scheduled it at."""
    uid = uuid.uuid4().hex[:8]
    body = {"email": f"rule.{uid}@example.com", "first_name": "Rula", "partner": "ziprecruiter", "list": LIST,
            "location": {"zip": "10001", "country": "US"}, "interests": {"keywords": ["nurse"]}}
    async with httpx.AsyncClient(timeout=30) as c:
        r = await c.post(f"{api}/v1/leads", json=body, headers={"Authorization": f"Bearer {key}"})
    lead_id = r.json()["lead_id"]
    rds = aioredis.Redis.from_url(settings.redis_url)
    try:
        for _ in range(300):
            score = await rds.zscore(f"ls:due:{TENANT}", f"{lead_id}|{LIST}")
            if score is not None:
                return datetime.fromtimestamp(score / 1000, tz=timezone.utc).astimezone(ZoneInfo("America/New_York"))
            await asyncio.sleep(0.1)
    finally:
        await rds.aclose()
    return None


async def _print_audit(client: httpx.AsyncClient, console: Console) -> None:
    rows = []
    for _ in range(100):
        r = await client.get("/v1/audit", params={"key": f"list:{TENANT}/{LIST}", "limit": 1})
        rows = r.json() if r.status_code == 200 else []
        if rows and rows[0]["actor"].startswith("person:"):
            break
        await asyncio.sleep(0.1)
    if not rows:
        console.print("  [red]no audit entry yet[/]")
        return
    e = rows[0]
    t = Table(title="audit log: GET /v1/audit?key=list:jobsnearby/daily-jobs", title_justify="left")
    for col in ("at", "who", "from", "version", "what changed"):
        t.add_column(col)
    t.add_row(str(e["at"]), e["actor"], e["actor_ip"], str(e["version"]),
              "; ".join(f"{c['path']}: {c['before']} -> {c['after']}" for c in e["change"]))
    console.print(t)
