"""The demo's morning: the planner runs through the next local send instants of the demo's
leads (as `python -m runtime.plan_once --at` would), the senders compose and deliver, and a
table shows what went out per brand and provider, read back from ClickHouse."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agents.planner import plan_due
from projections.clickhouse import connect
from streams.settings import Settings
from runtime.deps import build

HORIZON_MS = 24 * 3600 * 1000 - 1  # a day: each lead and list falls due once within it


async def due_instants(deps, lead_ids: set[str]) -> dict[int, int]:
    """instant -> how many of these leads' list memberships fall due then (the next 24 h)."""
    now, out = int(time.time() * 1000), {}
    for tenant in deps.tenants.tenants:
        async for member, score in deps.redis.zscan_iter(f"ls:due:{tenant}", count=5000):
            if member.decode().split("|", 1)[0] in lead_ids and score <= now + HORIZON_MS:
                out[int(score)] = out.get(int(score), 0) + 1
    return dict(sorted(out.items()))


STEADY_POLLS = 6  # seconds the count of requests stays the same before the morning is called done


def drained(s: Settings, agents: tuple[str, ...] = ("sender_bulk", "sender_priority", "retry", "analytics")) -> bool:
    """Whether these agents have no backlog (every request sent and every event in ClickHouse)."""
    from scaling.client import SupervisorClient
    try:
        status = SupervisorClient(s.supervisor_port).status()["agents"]
        return all(status[a]["lag"] == 0 for a in agents)
    except (OSError, KeyError):
        return False


async def planner_caught_up(s: Settings, timeout: float = 60.0) -> None:
    """Wait until the planner has scheduled every accepted lead (its group's lag is 0)."""
    from scaling.client import SupervisorClient
    client, deadline = SupervisorClient(s.supervisor_port), time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if client.status()["agents"]["planner"]["lag"] == 0:
                return
        except (OSError, KeyError):
            pass
        await asyncio.sleep(1)


def outcomes(s: Settings, since: datetime, lead_ids: set[str]) -> list[tuple]:
    """(tenant, provider, event_type, reason, sends) of this morning's daily alerts to these leads."""
    ch = connect(s.clickhouse_host, s.clickhouse_port)
    return ch.execute(
        f"SELECT tenant, visitParamExtractString(payload, 'provider') AS provider, event_type, "
        f"visitParamExtractString(payload, 'reason') AS reason, "
        f"uniqExact(visitParamExtractString(payload, 'send_id')) "
        f"FROM {s.clickhouse_database}.events WHERE event_type LIKE 'send.%%' AND ingested_at >= %(since)s "
        f"AND visitParamExtractString(payload, 'kind') = 'daily' AND lead_id IN %(leads)s "
        f"GROUP BY tenant, provider, event_type, reason ORDER BY tenant, provider, event_type",
        {"since": since, "leads": tuple(lead_ids)})


def settled(rows: list[tuple]) -> tuple[int, int]:
    """(requested, finished: dispatched + failed + skipped) send ids."""
    req = sum(r[4] for r in rows if r[2] == "send.requested")
    done = sum(r[4] for r in rows if r[2] in ("send.dispatched", "send.failed", "send.skipped"))
    return req, done


async def run_morning(s: Settings, console: Console, lead_ids: set[str], timeout: float = 180.0) -> bool:
    deps = build(s)
    since = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    await planner_caught_up(s)
    instants = await due_instants(deps, lead_ids)
    if not instants:
        console.print("  no demo lead is due in the next 24 hours")
        return False
    console.print(f"\n[bold]a morning[/]: {sum(instants.values()):,} daily alerts of this run due at "
                  f"{len(instants)} local send times (each lead's own 09:00, 07:30, ... in its zone); "
                  f"the planner also sends whatever else on the platform is due by then")
    with Progress(TextColumn("  {task.description:<11}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as progress:
        plan = progress.add_task("planned", total=len(instants))
        for instant in instants:
            await plan_due(deps, instant)
            progress.advance(plan)
        await asyncio.to_thread(deps.producer.close)
        sent = progress.add_task("sent", total=None)
        deadline, req, done, seen = time.monotonic() + timeout, 0, -1, []
        while time.monotonic() < deadline:
            req, done = settled(await asyncio.to_thread(outcomes, s, since, lead_ids))
            progress.update(sent, total=max(req, 1), completed=done)
            seen = (seen + [req])[-STEADY_POLLS:]
            # every request seen is settled, no more came for a while, and none is on its way
            # (the SMS requests came first once, and the morning was called done before the
            # emails' requests were counted)
            if (req and done >= req and len(seen) == STEADY_POLLS and len(set(seen)) == 1
                    and await asyncio.to_thread(drained, s)):
                break
            await asyncio.sleep(1)
    print_morning(console, s, await asyncio.to_thread(outcomes, s, since, lead_ids))
    signed_ok = await asyncio.to_thread(print_dkim, console, s, deps.tenants, since)
    return req > 0 and done >= req and signed_ok


def print_dkim(console: Console, s: Settings, book, since: datetime) -> bool:
    """Verify the DKIM signatures of every email delivered since `since` (SMTP server) and every
    one the provider stand-ins hold, as a receiver would, against ./dev dns's records."""
    from stack.mail_dns import delivered_mail, dkim_verdicts, zone
    cutoff = since.replace(tzinfo=timezone.utc).timestamp()
    recent = {p.read_bytes() for p in s.mail_dir.glob("*.eml") if p.stat().st_mtime >= cutoff}
    mail = [(sink, raw) for sink, raw in delivered_mail(s.mail_dir, s.providers_url)
            if sink != "smtp" or raw in recent]
    zone_map = zone(s, book)
    per_sink: dict[str, list[int]] = {}
    for sink, raw in mail:
        verdicts = dkim_verdicts(raw, zone_map)
        row = per_sink.setdefault(sink, [0, 0, 0])
        row[0] += 1
        row[1] += bool(verdicts) and all(verdicts)
        row[2] += len(verdicts)
    verified = sum(r[1] for r in per_sink.values())
    console.print(f"  DKIM: {verified:,} of {len(mail):,} delivered emails verified against the records "
                  f"./dev dns prints (" + ", ".join(f"{k} {r[1]}/{r[0]}, {r[2]} signatures"
                                                     for k, r in sorted(per_sink.items())) + ")")
    return verified == len(mail)


def print_morning(console: Console, s: Settings, rows: list[tuple]) -> None:
    table = Table(title="what went out this morning (daily alerts)", title_justify="left")
    for col in ("brand", "provider", "dispatched", "failed", "deferred", "skipped (why)"):
        table.add_column(col, justify="left" if col in ("brand", "provider", "skipped (why)") else "right")
    cells: dict[tuple[str, str], dict] = {}
    for tenant, provider, etype, reason, n in rows:
        if etype == "send.requested":
            continue
        c = cells.setdefault((tenant, provider or "-"), {"dispatched": 0, "failed": 0, "deferred": 0, "skipped": {}})
        if etype == "send.skipped":
            c["skipped"][reason] = c["skipped"].get(reason, 0) + n
        else:
            c[etype.split(".")[1]] += n
    for (tenant, provider), c in sorted(cells.items()):
        why = ", ".join(f"{k} {v}" for k, v in sorted(c["skipped"].items())) or "-"
        table.add_row(tenant, provider, f"{c['dispatched']:,}", f"{c['failed']:,}", f"{c['deferred']:,}", why)
    console.print(table)
    mails = sorted(s.mail_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime)
    if mails:
        console.print(f"  {len(mails):,} emails at the local SMTP server; open one: "
                      f"xdg-open {mails[-1]}  (or any mail client)", soft_wrap=True)
    console.print(f"  SMS and API emails: curl -s {s.providers_url}/sent/twilio | jq '.[0]'", soft_wrap=True)
