"""What the accounting tests share: clicks written to a ClickHouse database of their own (through
EventsWriter and the engagement view, as the analytics agent writes them), and the real
partner-reports stand-in started as a process on a free port, reading that database.

Brands of the test book and how their backends are steered (PLAN): the names say the outcome.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

import httpx

from domain.identity import new_event_id
from domain.tenants import parse_tenant_book
from projections.clickhouse import EventsWriter, migrate
from projections.event_rows import event_row
from scaling.drill import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = json.loads((ROOT / "schemas/engagement/examples/clicked.v1.json").read_text())
D24, D25, D26 = date(2025, 11, 24), date(2025, 11, 25), date(2025, 11, 26)
SINCE, UNTIL = D24, D26

# brand -> the stand-in control that makes its outcome (None: no report_url in the tenant file)
PLAN: dict[str, dict | None] = {
    "matched": {"undercount_every": 0},
    "lossy": {},  # the stand-in's default: loses one click in 64
    "down": {"mode": "down"},
    "slow": {"mode": "slow", "delay_s": 60},
    "broken": {"mode": "malformed"},
    "erring": {"mode": "error"},
    "stale": {"undercount_every": 0, "as_of": "2025-11-26T18:00:00Z"},  # before the period ended
    "old": {"undercount_every": 0, "lag_s": 3 * 3600},  # after it, but older than max_age (2 h)
    "differs": {"mode": "fixed", "days": [{"date": "2025-11-24", "clicks": 2, "revenue_cents": 90}]},
    "unconfigured": None,
}
UNREACHABLE = "gone"  # its report_url is a port nobody listens on
SHARES = {"matched": 0.7, "lossy": 0.6, "differs": 0.5}


def _ms(day: date, n: int) -> int:
    return int(datetime(day.year, day.month, day.day, 10, tzinfo=timezone.utc).timestamp() * 1000) + n * 1000


def click(n: int, day: date, tenant: str, cpc: int, *, bot: bool = False, slot: str = "job") -> dict:
    ms = _ms(day, n)
    return {**EXAMPLE, "event_id": new_event_id(ms, n.to_bytes(10, "big")), "tenant": tenant, "occurred_at": ms,
            "cpc_cents": cpc, "is_bot": bot, "actor": "bot" if bot else "human", "reason": "burst" if bot else "",
            "slot": slot, "revision": 0}


def clicks() -> list[dict]:
    """Every brand: humans on each day, a bot and a honeypot hit (never counted); `lossy` many
    clicks, so its backend's one-in-64 loss shows; `ghost` is not in the tenant book."""
    out, n = [], 0
    for tenant in [*PLAN, UNREACHABLE, "ghost"]:
        count = 320 if tenant == "lossy" else 3
        for i in range(count):
            n += 1
            out.append(click(n, (D24, D25, D26)[i % 3], tenant, 40 + (i % 7) * 5))
        n += 1
        out.append(click(n, D25, tenant, 500, bot=True))
        n += 1
        out.append(click(n, D25, tenant, 900, bot=True, slot="honeypot"))
    n += 1
    out.append(click(n, date(2025, 11, 27), "matched", 7000))  # the day after the period
    return out


def seed(client, db: str) -> list[dict]:
    """A fresh database with the clicks; returns them."""
    client.execute(f"DROP DATABASE IF EXISTS {db}")
    migrate(client, db)
    writer = EventsWriter(client, db)
    written = clicks()
    for offset, ev in enumerate(written):
        writer.submit(event_row("engagement.clicked", ev, "engagement", 0, offset, datetime(2025, 11, 28)))
    writer.flush()
    return written


def human_totals(written: list[dict], tenant: str) -> tuple[int, int]:
    """(clicks, cents) of the tenant's human clicks in the period: what we must report."""
    mine = [e for e in written if e["tenant"] == tenant and not e["is_bot"] and e["slot"] != "honeypot"
            and SINCE <= datetime.fromtimestamp(e["occurred_at"] / 1000, tz=timezone.utc).date() <= UNTIL]
    return len(mine), sum(e["cpc_cents"] for e in mine)


def book(reports_url: str):
    """The tenant book: each PLAN brand's report_url on the stand-in (none for `unconfigured`)."""
    dead = f"http://127.0.0.1:{free_port()}"
    tenants = {}
    for brand, control in [*PLAN.items(), (UNREACHABLE, {})]:
        url = "" if control is None else f"{dead if brand == UNREACHABLE else reports_url}/reports/{brand}"
        tenants[brand] = {"name": brand.title(), "api_key_sha256": [], "lists": {},
                          "revenue": {"brand_share": SHARES.get(brand, 0.75), "report_url": url}}
    return parse_tenant_book({"tenants": tenants})


class Standin:
    """The partner-reports stand-in as a process of its own."""

    def __init__(self, db: str, clickhouse_port: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stack.standins.partner_reports", "--port", str(self.port),
             "--database", db, "--clickhouse-port", str(clickhouse_port)],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the stand-in exited: {self.proc.stdout.read().decode()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the partner-reports stand-in did not answer within 20 s")

    def steer(self, brand: str, **control) -> dict:
        r = httpx.post(f"{self.url}/control/{brand}", json={"reset": True, **control}, timeout=5)
        r.raise_for_status()
        return r.json()

    def requests(self, brand: str) -> int:
        return httpx.get(f"{self.url}/control/{brand}", timeout=5).json()["requests"]

    def steer_all(self) -> None:
        for brand, control in PLAN.items():
            if control is not None:
                self.steer(brand, **control)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()
