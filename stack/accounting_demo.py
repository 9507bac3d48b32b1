"""The demo's accounting: each brand's click revenue and profit share beside what its partner
backend reports (the local stand-in, :18060, which by default loses a click in 64), then the
same report with one brand's backend down and another's too slow, to show that the report
still answers at once, names the brands it could not reconcile and why, and leaves them out
of the totals. The stand-in is put back to normal afterwards.

    await run_accounting(settings, console)      from the demo (after the afternoon's clicks)
    python -m stack.accounting_demo [--since YYYY-MM-DD] [--until YYYY-MM-DD] [--no-drill]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date, datetime, timedelta, timezone

import httpx
from rich.console import Console

from domain.accounting import CURRENT, AccountingReport, PeriodError, period_of
from projections.accounting import accounting_report, cli_date, print_report
from projections.clickhouse import connect
from streams.settings import Settings, get_settings

DRILL_TIMEOUT_S = 2.0


def _book(s: Settings):
    """The configuration as the platform holds it now (the control plane's topic)."""
    from runtime.deps import build
    return build(s).tenants


async def _report(s: Settings, since: date, until: date, timeout_s: float = 3.0) -> AccountingReport:
    return await accounting_report(lambda: connect(s.clickhouse_host, s.clickhouse_port), s.clickhouse_database,
                                   _book(s), period_of(since, until, datetime.now(timezone.utc).date()),
                                   timeout_s=timeout_s)


def _steerable(s: Settings, report: AccountingReport) -> list[str]:
    """Brands whose backend is the local stand-in (a real backend is never steered)."""
    book = _book(s)
    return [r.tenant for r in report.rows if r.tenant in book.tenants
            and book.tenants[r.tenant].revenue.report_url.startswith(f"{s.reports_url}/reports/")]


async def run_accounting(s: Settings, console: Console, since: date | None = None, until: date | None = None,
                         drill: bool = True) -> bool:
    """Print the accounting report (and the drill); True when at least one backend answered."""
    until = until or datetime.now(timezone.utc).date()
    since = since or until - timedelta(days=1)
    console.print(f"\n[bold]accounting[/]: our revenue per brand beside what each brand's partner backend reports "
                  f"({since} .. {until})")
    report = await _report(s, since, until)
    print_report(report, console)
    answered = any(r.status in CURRENT for r in report.rows)
    if not answered:
        console.print(f"  [bold red]no backend answered[/]: is the partner-reports stand-in up? (./dev status, "
                      f"{s.reports_url}/healthz)")
    brands = _steerable(s, report)
    if not drill or len(brands) < 3:
        return answered
    down, slow = brands[0], brands[1]
    console.print(f"\n[bold]the same, with {down}'s backend down and {slow}'s answering after 30 s[/] "
                  f"(each backend gets {DRILL_TIMEOUT_S:g} s; the report does not wait longer):")
    async with httpx.AsyncClient(base_url=s.reports_url, timeout=5) as control:
        try:
            await control.post(f"/control/{down}", json={"mode": "down"})
            await control.post(f"/control/{slow}", json={"mode": "slow", "delay_s": 30})
            print_report(await _report(s, since, until, timeout_s=DRILL_TIMEOUT_S), console)
        finally:
            for brand in (down, slow):
                await control.post(f"/control/{brand}", json={"reset": True})
    return answered


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m stack.accounting_demo", description=__doc__.splitlines()[0])
    ap.add_argument("--since", type=cli_date, help="first day (default: yesterday, UTC)")
    ap.add_argument("--until", type=cli_date, help="last day (default: today, UTC)")
    ap.add_argument("--no-drill", action="store_true", help="skip the backend-down/slow part")
    args = ap.parse_args(argv)
    try:
        ok = asyncio.run(run_accounting(get_settings(), Console(), args.since, args.until, drill=not args.no_drill))
    except PeriodError as exc:
        ap.error(f"--{exc.field} {exc}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
