"""The accounting report: every brand's click revenue from ClickHouse beside what the brand's
partner backend reports, fetched from all the backends at once.

Each backend gets `timeout_s` for its whole answer (connect, headers and body); all are asked
concurrently, together with the ClickHouse query, so the report takes about as long as the
slowest answer or the timeout, whichever is sooner, however many brands there are. A backend
that is down, too slow, answers an HTTP error or a malformed report makes its brand
`unavailable` with the reason; it never fails the report or delays the others. ClickHouse
failing does fail the report: without our own figures there is nothing to reconcile.
The verdicts are domain/accounting.py's.

    python -m projections.accounting [--since YYYY-MM-DD] [--until YYYY-MM-DD] [--tenant T]
                                     [--timeout 3] [--tolerance 0.02] [--max-age 7200] [--json]
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import asdict
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Mapping

import httpx
from clickhouse_driver import Client
from clickhouse_driver.errors import Error as ClickHouseError

from domain.accounting import (DEFAULT_MAX_AGE, AccountingReport, BrandRow, NotConfigured, PeriodError, Status,
                               Tolerance, Unavailable, build_report, in_scope, our_figures, period_of, reconcile)
from domain.partner_reports import Figures, PartnerReport, Period, ReportError, parse_report
from domain.tenants import TenantBook
from projections.revenue import revenue

DEFAULT_TIMEOUT_S = 3.0
MAX_REPORT_BYTES = 2_000_000  # a year of days is ~30 kB; more is not a report
USER_AGENT = "leadstream-accounting/1"

Outcome = PartnerReport | Unavailable


def our_days(client: Client, db: str, period: Period, tenant: str | None = None) -> dict[str, dict[date, Figures]]:
    """Per tenant (or only `tenant`), per day: human clicks and their revenue (projections.revenue's rules)."""
    out: dict[str, dict[date, Figures]] = {}
    for r in revenue(client, db, tenant, ["tenant", "day"], period.since, period.until):
        out.setdefault(r["tenant"], {})[r["day"]] = Figures(r["clicks"], r["revenue_cents"])
    return out


async def fetch_report(http: httpx.AsyncClient, brand: str, url: str, period: Period,
                       timeout_s: float) -> Outcome:
    """The brand's report, or why there is none; never raises for anything the backend does."""
    try:
        async with asyncio.timeout(timeout_s):
            async with http.stream("GET", url, params={"from": period.since.isoformat(),
                                                       "to": period.until.isoformat()}) as answer:
                body = await _read_limited(answer)
    except (TimeoutError, httpx.TimeoutException):
        return Unavailable("timeout", f"no complete answer within {timeout_s:g}s")
    except _TooLarge:
        return Unavailable("malformed", f"the answer is larger than {MAX_REPORT_BYTES:,} bytes")
    except (httpx.HTTPError, OSError) as exc:
        return Unavailable("unreachable", f"{type(exc).__name__}: {str(exc) or 'no detail'}")
    except httpx.InvalidURL as exc:  # the tenant file's report_url, not the backend, is wrong
        return Unavailable("unreachable", f"report_url {url!r} is not a usable URL: {exc}")
    if answer.status_code != 200:
        return Unavailable("http_error", f"HTTP {answer.status_code}: {_snippet(body)}")
    try:
        return parse_report(body, brand, period)
    except ReportError as exc:
        return Unavailable(exc.code, str(exc))


class _TooLarge(Exception):
    pass


async def _read_limited(answer: httpx.Response) -> bytes:
    chunks, size = [], 0
    async for chunk in answer.aiter_bytes():
        size += len(chunk)
        if size > MAX_REPORT_BYTES:
            raise _TooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def _snippet(body: bytes, limit: int = 160) -> str:
    text = " ".join(body.decode("utf-8", "replace").split())
    return (text if len(text) <= limit else text[: limit - 1] + "…") or "(empty body)"


async def fetch_reports(targets: Mapping[str, str], period: Period, timeout_s: float) -> dict[str, Outcome]:
    """Every brand's report ({brand: url}), all asked at once, each within its own timeout."""
    if not targets:
        return {}
    limits = httpx.Limits(max_connections=max(100, len(targets)), max_keepalive_connections=20)
    async with httpx.AsyncClient(timeout=timeout_s, limits=limits, follow_redirects=False,
                                 headers={"User-Agent": USER_AGENT, "Accept": "application/json"}) as http:
        brands = list(targets)
        outcomes = await asyncio.gather(*(fetch_report(http, b, targets[b], period, timeout_s) for b in brands))
    return dict(zip(brands, outcomes))


def _ours_from(connect: Callable[[], Client], db: str, period: Period,
               scope: frozenset[str] | None) -> dict[str, dict[date, Figures]]:
    only = next(iter(scope)) if scope is not None and len(scope) == 1 else None  # a brand reads only its own
    client = connect()
    try:
        return our_days(client, db, period, only)
    finally:
        client.disconnect()


async def accounting_report(connect: Callable[[], Client], db: str, book: TenantBook, period: Period, *,
                            scope: frozenset[str] | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
                            tolerance: Tolerance = Tolerance(), max_age: timedelta = DEFAULT_MAX_AGE,
                            clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> AccountingReport:
    """The report over the brands in `scope` (None: every brand, and any tenant found in
    ClickHouse but not in the tenant book). Only those brands' backends are asked, and only
    their figures enter the totals."""
    brands = in_scope(book.tenants, scope)
    targets = {t: book.tenants[t].revenue.report_url for t in brands if book.tenants[t].revenue.report_url}
    ours_task = asyncio.ensure_future(asyncio.to_thread(_ours_from, connect, db, period, scope))
    theirs_task = asyncio.ensure_future(fetch_reports(targets, period, timeout_s))
    try:
        ours = await ours_task
    except BaseException:
        theirs_task.cancel()
        raise
    theirs = await theirs_task
    now = clock()
    rows: list[BrandRow] = []
    for tenant in in_scope(set(book.tenants) | set(ours), scope):
        t = book.tenants.get(tenant)
        figures = our_figures(ours.get(tenant, {}), t.revenue.brand_share if t else None)
        if t is None:
            outcome: Outcome | NotConfigured = NotConfigured(
                "not_in_tenant_file", "clicks in ClickHouse for a tenant not in the tenant file: its share is unknown")
        elif tenant not in targets:
            outcome = NotConfigured("no_report_url", "the tenant file gives no revenue.report_url for this brand")
        else:
            outcome = theirs[tenant]
        rows.append(reconcile(tenant, t.name if t else "", figures, outcome, period, now, tolerance, max_age))
    return build_report(period, now, rows)


# --- as JSON (the API's response and the CLI's --json) ----------------------------------------

def report_as_dict(report: AccountingReport, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The report as JSON-ready values; `settings` (tolerance, timeout...) is added as given."""
    r = report
    return {
        "from": r.period.since.isoformat(), "to": r.period.until.isoformat(), "currency": r.currency,
        "generated_at": _iso(r.generated_at), "complete": r.complete, **({"settings": dict(settings)} if settings else {}),
        "brands": [_row(b) for b in r.rows],
        "earned": asdict(r.earned),
        "reconciled": {"tenants": list(r.reconciled.tenants), "ours": _figures(r.reconciled.ours),
                       "theirs": _figures(r.reconciled.theirs), "difference": asdict(r.reconciled.difference)},
        "excluded": [{"tenant": e.tenant, "status": str(e.status), "reason": e.reason, "detail": e.detail}
                     for e in r.excluded],
    }


def _row(b: BrandRow) -> dict[str, Any]:
    o = b.ours
    return {
        "tenant": b.tenant, "name": b.name, "status": str(b.status), "reason": b.reason, "detail": b.detail,
        "ours": {"clicks": o.clicks, "revenue_cents": o.revenue_cents, "brand_share": o.brand_share,
                 "brand_cents": o.brand_cents, "platform_cents": o.platform_cents},
        "theirs": _figures(b.theirs) if b.theirs is not None else None,
        "as_of": _iso(b.as_of) if b.as_of else None,
        "stale": _figures(b.stale) if b.stale is not None else None,
        "difference": asdict(b.difference) if b.difference is not None else None,
        "day_differences": [{"day": d.day.isoformat(), "ours": _figures(d.ours), "theirs": _figures(d.theirs)}
                            for d in b.day_differences],
    }


def _figures(f: Figures) -> dict[str, int]:
    return {"clicks": f.clicks, "revenue_cents": f.revenue_cents}


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


# --- command line ---------------------------------------------------------------------------

STYLE = {Status.MATCHED: "green", Status.WITHIN_TOLERANCE: "green", Status.MISMATCH: "bold red",
         Status.STALE: "yellow", Status.UNAVAILABLE: "bold yellow", Status.NOT_CONFIGURED: "dim"}


def _money(cents: int | None) -> str:
    if cents is None:
        return "?"
    return f"{'-' if cents < 0 else ''}{abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def _signed_money(cents: int) -> str:
    return ("+" if cents > 0 else "") + _money(cents)


def _pct(relative: float | None) -> str:
    return "n/a" if relative is None else f"{relative * 100:+.2f}%"


def _theirs_cells(b: BrandRow) -> tuple[str, str]:
    """The backend's clicks and revenue: current, marked stale, or absent."""
    if b.theirs is not None:
        return f"{b.theirs.clicks:,}", _money(b.theirs.revenue_cents)
    if b.stale is not None:
        return f"[yellow]{b.stale.clicks:,} stale[/]", f"[yellow]{_money(b.stale.revenue_cents)} stale[/]"
    return "-", "-"


def print_report(report: AccountingReport, console=None) -> None:
    """A table per brand, the totals, and every brand's reason when it is not plainly matched."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    r = report
    table = Table(title=f"accounting, {r.period.since} .. {r.period.until} ({r.currency}; ours: human clicks, "
                        f"theirs: the brand's partner backend)", title_justify="left")
    for name in ("brand", "status", "clicks", "theirs", "revenue", "theirs", "diff", "diff %", "brand share",
                 "platform", "as of"):
        table.add_column(name, justify="left" if name in ("brand", "status", "as of") else "right")
    for b in r.rows:
        diff, (their_clicks, their_revenue) = b.difference, _theirs_cells(b)
        table.add_row(b.tenant, f"[{STYLE[b.status]}]{b.status}[/]", f"{b.ours.clicks:,}", their_clicks,
                      _money(b.ours.revenue_cents), their_revenue, _signed_money(diff.revenue_cents) if diff else "-",
                      _pct(diff.relative) if diff else "-", _money(b.ours.brand_cents),
                      _money(b.ours.platform_cents), b.as_of.strftime("%Y-%m-%d %H:%M") if b.as_of else "-")
    console.print(table)
    for b in r.rows:
        if b.status is not Status.MATCHED:
            console.print(f"  [{STYLE[b.status]}]{b.tenant}[/] {b.status} ({b.reason}): {b.detail}")
    e, rec = r.earned, r.reconciled
    console.print(f"  earned (ours, {len(r.rows)} brands): {e.clicks:,} clicks, {_money(e.revenue_cents)} "
                  f"= brands {_money(e.brand_cents)} + platform {_money(e.platform_cents)}"
                  + (f" + unsplit {_money(e.unsplit_cents)}" if e.unsplit_cents else ""))
    console.print(f"  reconciled over the {len(rec.tenants)} brand(s) that answered: ours "
                  f"{_money(rec.ours.revenue_cents)}, theirs {_money(rec.theirs.revenue_cents)}, difference "
                  f"{_signed_money(rec.difference.revenue_cents)} ({_pct(rec.difference.relative)})")
    if r.excluded:
        console.print("  [bold yellow]left out of the reconciled totals[/]: "
                      + ", ".join(f"{x.tenant} ({x.status}: {x.reason})" for x in r.excluded))


def cli_date(text: str) -> date:
    """A YYYY-MM-DD command-line argument."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m projections.accounting", description=__doc__.splitlines()[0])
    ap.add_argument("--since", type=cli_date, help="first day, YYYY-MM-DD (default: the 1st of --until's month)")
    ap.add_argument("--until", type=cli_date, help="last day, inclusive (default: today, UTC)")
    ap.add_argument("--tenant", action="append", help="only this brand (repeatable; default: all)")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds each backend gets")
    ap.add_argument("--tolerance", type=float, default=Tolerance().relative,
                    help="relative difference still within tolerance (default 0.02)")
    ap.add_argument("--max-age", type=float, default=DEFAULT_MAX_AGE.total_seconds(),
                    help="seconds after which a backend's figures are stale")
    ap.add_argument("--database", help="ClickHouse database (default: LEADSTREAM_CLICKHOUSE_DATABASE)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args(argv)

    from projections.clickhouse import connect
    from streams.settings import get_settings
    from streams.config_view import current_book

    logging.getLogger("clickhouse_driver").setLevel(logging.CRITICAL)  # its tracebacks: we say it plainly below
    s = get_settings()
    today = datetime.now(timezone.utc).date()
    until = args.until or today
    try:
        period = period_of(args.since or until.replace(day=1), until, today)
    except PeriodError as exc:
        ap.error(f"--{exc.field} {exc}")
    book = current_book(s)  # the configuration as the platform holds it now
    unknown = sorted(set(args.tenant or ()) - set(book.tenants))
    if unknown:
        ap.error(f"not in the tenant file: {', '.join(unknown)} (brands: {', '.join(sorted(book.tenants))})")
    tolerance = Tolerance(relative=args.tolerance)
    try:
        report = asyncio.run(accounting_report(
            lambda: connect(s.clickhouse_host, s.clickhouse_port), args.database or s.clickhouse_database,
            book, period, scope=frozenset(args.tenant) if args.tenant else None,
            timeout_s=args.timeout, tolerance=tolerance, max_age=timedelta(seconds=args.max_age)))
    except (OSError, ClickHouseError) as exc:
        print(f"error: ClickHouse at {s.clickhouse_host}:{s.clickhouse_port} did not answer ({exc}); "
              f"without our own figures there is nothing to reconcile. Is the stack up? (./dev status)",
              file=sys.stderr)
        return 1
    if args.json:
        import orjson
        settings = {"timeout_s": args.timeout, "tolerance": asdict(tolerance), "max_age_s": args.max_age}
        sys.stdout.write(orjson.dumps(report_as_dict(report, settings), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
