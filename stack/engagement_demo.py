"""The demo's afternoon: people open and click the morning's emails, link scanners and mail
privacy proxies fetch them too, a provider reports a bounce, a texter replies STOP; then a
table per brand shows what the platform counted as people and as machines, the revenue
people earned and the brand's share, read back from ClickHouse."""
from __future__ import annotations

import asyncio
import random
import re
import time
from datetime import date, datetime, timedelta, timezone
from email import message_from_bytes, policy

import httpx
import orjson
from rich.console import Console
from rich.table import Table

from projections.clickhouse import connect
from projections.revenue import profit_share
from streams.settings import Settings
from runtime.deps import build

BROWSERS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 15; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
)
SCANNER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 BingPreview/1.0b"
GMAIL_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
SAMPLE = 400  # emails the afternoon plays with


def _tracked(s: Settings, text: str) -> list[str]:
    return re.findall(rf'(?:href|src)=\\?"({re.escape(s.tracking_base_url)}/[cou]/[0-9A-Za-z]+)', text)


def morning_mail(s: Settings, since: float) -> list[tuple[str, list[str]]]:
    """(brand, tracked URLs) of emails delivered since `since`: half from the SMTP server, the
    rest from the SendGrid and SES stand-ins (the brands that send through their APIs)."""
    out = []
    for provider in ("sendgrid", "ses"):
        sent = httpx.get(f"{s.providers_url}/sent/{provider}", timeout=30).json()
        for m in sent[-SAMPLE // 4:]:
            out.append((m["from"], _tracked(s, str(m.get("request", "")))))
    for path in sorted(s.mail_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True):
        if path.stat().st_mtime < since or len(out) >= SAMPLE:
            break
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        body = msg.get_body(("html",))
        if body is None:
            continue
        out.append((msg["From"], _tracked(s, body.get_content())))
    return [(who, urls) for who, urls in out if urls]


async def links_of(deps, urls: list[str]) -> list[dict]:
    raws = await deps.redis.mget([f"ls:link:{u.rsplit('/', 1)[1]}" for u in urls])
    return [orjson.loads(r) | {"url": u} for u, r in zip(urls, raws) if r]


async def play(s: Settings, mails: list[tuple[str, list[str]]], seed: int = 7) -> dict[str, int]:
    """People, scanners and proxies at the tracking front; how many of each did what."""
    deps, rng, did = build(s), random.Random(seed), {"people": 0, "clicks": 0, "scanned": 0, "proxied": 0,
                                                      "unsubscribed": 0, "not_found": 0}
    gate = asyncio.Semaphore(32)
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as c:
        async def visit(urls: list[str]) -> None:
            async with gate:
                await visit_one(await links_of(deps, urls))

        async def visit_one(links: list[dict]) -> None:
            jobs = [l for l in links if l["slot"] in ("job", "recommended")]  # matched or recommended
            pixels = [l for l in links if l["kind"] == "open"]
            roll = rng.random()
            if roll < 0.12:  # the recipient's mail security scans every link, honeypot included
                did["scanned"] += 1
                for l in links:
                    if l["kind"] != "unsubscribe":
                        await c.get(l["url"], headers={"user-agent": SCANNER})
            elif roll < 0.22 and pixels:  # Gmail's image proxy fetches the images
                did["proxied"] += 1
                await c.get(pixels[0]["url"], headers={"user-agent": GMAIL_PROXY})
            if roll >= 0.22 and roll < 0.70:  # a person reads it, maybe clicks one job
                did["people"] += 1
                ua = {"user-agent": rng.choice(BROWSERS)}
                for l in pixels:
                    await c.get(l["url"], headers=ua)
                if jobs and rng.random() < 0.5:
                    await c.get(rng.choice(jobs)["url"], headers=ua)
                    did["clicks"] += 1
            elif roll >= 0.97:
                unsub = [l for l in links if l["kind"] == "unsubscribe"]
                if unsub:
                    await c.post(unsub[0]["url"], content=b"List-Unsubscribe=One-Click",
                                 headers={"content-type": "application/x-www-form-urlencoded"})
                    did["unsubscribed"] += 1
        await asyncio.gather(*(visit(urls) for _, urls in mails))
        # someone edits a code by hand: the front refuses it without a lookup
        if mails and mails[0][1]:
            did["not_found"] += int((await c.get(mails[0][1][0][:-1] + "Z")).status_code == 404)
    return did


async def provider_reports(s: Settings, deps, lead_ids: set[str]) -> list[str]:
    """A hard bounce reported by SendGrid and a STOP texted back through Twilio, both signed
    by the providers' stand-in and sent to the API's webhooks."""
    said = []
    async with httpx.AsyncClient(timeout=30) as c:
        async for key in deps.redis.scan_iter("ls:pmsg:*", count=5000):
            facts = orjson.loads(await deps.redis.get(key) or b"{}")
            if facts.get("lead_id") not in lead_ids:
                continue
            provider, pid = key.decode().split(":")[2:4]
            if provider == "sendgrid" and "bounce" not in said:
                event = {"email": "someone@example.com", "timestamp": int(time.time()), "event": "bounce",
                         "type": "bounce", "sg_event_id": f"demo-{pid}", "sg_message_id": f"{pid}.filter-1",
                         "reason": "550 5.1.1 The email account that you tried to reach does not exist"}
                r = await c.post(f"{s.providers_url}/webhooks/emit", json={
                    "provider": "sendgrid", "target": f"{s.api_url}/webhooks/sendgrid", "events": [event]})
                said.append(f"bounce ({r.json().get('status')})")
            if len(said) >= 1:
                break
        for tenant in deps.tenants.tenants.values():
            if "sms" not in tenant.channels:
                continue
            state = await _an_sms_lead(deps, tenant.id, lead_ids)
            if state:
                r = await c.post(f"{s.providers_url}/webhooks/emit", json={
                    "provider": "twilio", "target": f"{s.api_url}/webhooks/twilio",
                    "events": [{"MessageSid": f"SMdemo{state['lead_id'][:20]}", "From": state["address"],
                                "To": tenant.brand.sms_from, "Body": "Stop.", "SmsStatus": "received"}]})
                said.append(f"{tenant.name}: 'Stop.' by SMS ({r.json().get('status')})")
                break
    return said


async def _an_sms_lead(deps, tenant: str, lead_ids: set[str]) -> dict | None:
    for lid in list(lead_ids)[:3000]:
        raw = await deps.redis.get(f"ls:lead:{tenant}:{lid}")
        if raw:
            st = orjson.loads(raw)
            if st["channel"] == "sms" and st["status"] == "accepted":
                return st
    return None


def counts(s: Settings, since: datetime) -> list[tuple]:
    ch = connect(s.clickhouse_host, s.clickhouse_port)
    return ch.execute(f"SELECT tenant, event_type, actor, reason, count() FROM {s.clickhouse_database}.engagement FINAL "
                      f"WHERE occurred_at >= %(t)s GROUP BY tenant, event_type, actor, reason", {"t": since})


async def run_afternoon(s: Settings, console: Console, lead_ids: set[str], morning_started: float) -> bool:
    deps = build(s)
    since = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0) - timedelta(seconds=5)
    mails = morning_mail(s, morning_started)
    if not mails:
        console.print("  no email of this morning to open")
        return False
    console.print(f"\n[bold]an afternoon[/]: people open and click {len(mails)} of the morning's emails; link "
                  f"scanners and Gmail's image proxy fetch some too; SendGrid reports a bounce, a texter says Stop.")
    await asyncio.sleep(2.5)  # people read before they click (the tenant's min_click_delay_s is 2)
    did = await play(s, mails)
    said = await provider_reports(s, deps, lead_ids)
    console.print(f"  at the tracking front: {did['people']} people read, {did['clicks']} clicked, {did['scanned']} "
                  f"scanned, {did['proxied']} proxied, {did['unsubscribed']} one-click unsubscribes, an edited code: "
                  f"{'404' if did['not_found'] else '?'}; webhooks: {', '.join(said) or 'none'}")
    deadline, rows = time.monotonic() + 60, []
    while time.monotonic() < deadline:
        rows = await asyncio.to_thread(counts, s, since)
        people_clicks = sum(n for _, e, a, _, n in rows if e == "engagement.clicked" and a == "human")
        if people_clicks >= did["clicks"] and rows:
            break
        await asyncio.sleep(1)
    print_afternoon(console, s, deps, rows)
    return bool(rows)


def print_afternoon(console: Console, s: Settings, deps, rows: list[tuple]) -> None:
    table = Table(title="what the platform counted (people and machines apart)", title_justify="left")
    for col in ("brand", "opens: people", "proxy opens", "machine opens", "clicks: people", "machine clicks (why)"):
        table.add_column(col, justify="left" if col in ("brand", "machine clicks (why)") else "right")
    cells: dict[str, dict] = {}
    for tenant, etype, actor, reason, n in rows:
        c = cells.setdefault(tenant, {"oh": 0, "op": 0, "ob": 0, "ch": 0, "cb": {}})
        if etype == "engagement.opened":
            c["oh" if actor == "human" else "op" if actor == "proxy" else "ob"] += n
        elif actor == "human":
            c["ch"] += n
        else:
            c["cb"][reason] = c["cb"].get(reason, 0) + n
    for tenant, c in sorted(cells.items()):
        why = ", ".join(f"{k} {v}" for k, v in sorted(c["cb"].items(), key=lambda kv: -kv[1])) or "-"
        table.add_row(tenant, str(c["oh"]), str(c["op"]), str(c["ob"]), str(c["ch"]), why)
    console.print(table)
    ch = connect(s.clickhouse_host, s.clickhouse_port)
    today = date.today()
    share = Table(title="revenue today: the CPCs people clicked (machines are not billed)", title_justify="left")
    for col in ("brand", "clicks", "revenue", "brand share", "brand", "platform"):
        share.add_column(col, justify="left" if col == "brand" else "right")
    for r in profit_share(ch, s.clickhouse_database, deps.tenants, today - timedelta(days=1), today + timedelta(days=1)):
        if r.get("brand_cents") is None:
            continue
        share.add_row(r["name"], str(r["clicks"]), f"${r['revenue_cents'] / 100:,.2f}", f"{r['brand_share']:.0%}",
                      f"${r['brand_cents'] / 100:,.2f}", f"${r['platform_cents'] / 100:,.2f}")
    console.print(share)
    hooks = [(t.name, t.webhook.url) for t in deps.tenants.tenants.values() if t.webhook]
    for name, url in hooks:
        try:
            got = httpx.get(url.replace("/hooks/", "/received/"), timeout=10).json()
            console.print(f"  outbound webhooks: {len(got):,} of {name}'s events at its endpoint so far "
                          f"({url}; signed, in order per lead)", soft_wrap=True)
        except (httpx.HTTPError, ValueError):
            console.print(f"  outbound webhooks: {name}'s endpoint {url} did not answer")
    console.print("  more: python -m projections.revenue --by job_source,list   ·   "
                  "clickhouse-client --port 19000 -d leadstream -q 'SELECT * FROM engagement FINAL LIMIT 5'",
                  soft_wrap=True)
