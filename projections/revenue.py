"""Revenue attribution: what the clicks earned, by brand, feed, list, template, creative,
campaign or day, and the profit share between each brand and the platform.

Revenue is the sum of `cpc_cents` over engagement.clicked rows of {db}.engagement, read
with FINAL so that every click counts once, in its latest revision (a click later found to
be part of a scanner's burst counts as a bot). Only human clicks are billed; what machines
clicked is reported beside them (machine_clicks, machine_cents) so analysts see both.
Honeypot links are never counted: only machines follow them.

    python -m projections.revenue [--tenant T] [--by job_source,list] [--since YYYY-MM-DD]
                                  [--until YYYY-MM-DD] [--all-clicks] [--profit-share] [--json]
"""
from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from datetime import date, datetime, timezone

from clickhouse_driver import Client

from domain.accounting import split
from domain.tenants import TenantBook

# The dimensions a report may be grouped by: name -> the engagement column. Only these names
# ever reach the SQL; anything else is refused before a query is built.
DIMENSIONS: dict[str, str] = {
    "tenant": "tenant",
    "job_source": "job_source",
    "list": "list",
    "template": "template",
    "creative": "creative",
    "campaign": "campaign",
    "day": "day",
}
METRICS = ("clicks", "revenue_cents", "machine_clicks", "machine_cents")
_DB = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_db(db: str) -> str:
    if not _DB.match(db):
        raise ValueError(f"database name {db!r} is not a plain identifier")
    return db


def check_by(by: Sequence[str]) -> list[str]:
    """The grouping, validated against DIMENSIONS, duplicates dropped, order kept."""
    if isinstance(by, str):  # "job_source,list" passed where a list was meant
        by = [part for part in by.split(",")]
    out: list[str] = []
    for name in by:
        name = name.strip()
        if name not in DIMENSIONS:
            raise ValueError(f"cannot group revenue by {name!r}: choose from {', '.join(DIMENSIONS)}")
        if name not in out:
            out.append(name)
    return out


def revenue_query(db: str, tenant: str | None, by: Sequence[str], since: date, until: date,
                  humans_only: bool = True) -> tuple[str, dict]:
    """The SQL and its parameters (exposed for inspection and tests)."""
    keys = check_by(by)
    if since > until:
        raise ValueError(f"since {since} is after until {until}")
    cols = [f"`{DIMENSIONS[k]}` AS `{k}`" for k in keys]
    # Only conditions that are the same in every revision of a click go in WHERE. PREWHERE
    # runs before FINAL picks the latest revision (measured on 18.16: `FINAL PREWHERE
    # is_bot = 0` still counts a click revised to a bot), and ClickHouse may move WHERE
    # conditions to PREWHERE on its own (optimize_move_to_prewhere). So human/machine is
    # decided inside the aggregates, which only ever see the rows FINAL kept.
    if humans_only:
        billed = ["countIf(is_bot = 0) AS clicks", "sumIf(cpc_cents, is_bot = 0) AS revenue_cents"]
    else:
        billed = ["count() AS clicks", "sum(cpc_cents) AS revenue_cents"]
    machine = ["countIf(is_bot != 0) AS machine_clicks", "sumIf(cpc_cents, is_bot != 0) AS machine_cents"]
    where = ["event_type = 'engagement.clicked'", "slot != 'honeypot'",
             "day >= toDate(%(since)s)", "day <= toDate(%(until)s)"]
    params: dict = {"since": since.isoformat(), "until": until.isoformat()}
    if tenant is not None:
        where.append("tenant = %(tenant)s")
        params["tenant"] = tenant
    sql = (f"SELECT {', '.join(cols + billed + machine)}\n"
           f"FROM {_check_db(db)}.engagement FINAL\n"
           f"WHERE {' AND '.join(where)}")
    if keys:
        order = (["`day`"] if "day" in keys else []) + ["revenue_cents DESC"] + \
                [f"`{k}`" for k in keys if k != "day"]
        sql += f"\nGROUP BY {', '.join(f'`{k}`' for k in keys)}\nORDER BY {', '.join(order)}"
    return sql, params


def revenue(client: Client, db: str, tenant: str | None, by: Sequence[str], since: date,
            until: date, humans_only: bool = True) -> list[dict]:
    """Click revenue between since and until (inclusive days), grouped by `by`.

    Each row: the group keys, then clicks and revenue_cents (human clicks only when
    humans_only, else every click), machine_clicks and machine_cents (the clicks judged to be
    bots, never billed). With no grouping, one row of totals."""
    sql, params = revenue_query(db, tenant, by, since, until, humans_only)
    rows, columns = client.execute(sql, params, with_column_types=True)
    names = [name for name, _type in columns]
    out = []
    for row in rows:
        rec = dict(zip(names, row))
        for m in METRICS:
            rec[m] = int(rec[m])
        out.append(rec)
    if not check_by(by) and not out:  # an ungrouped sum over nothing: a row of zeros
        out.append({m: 0 for m in METRICS})
    return out


def profit_share(client: Client, db: str, book: TenantBook, since: date, until: date) -> list[dict]:
    """Per brand of the tenant book (and any tenant found in the data but not in the book):
    billed revenue (human clicks), the brand's share from the tenant file, brand_cents and
    platform_cents. A tenant missing from the book has brand_share, brand_cents and
    platform_cents None: its split is unknown and must not be guessed."""
    earned = {r["tenant"]: r for r in revenue(client, db, None, ["tenant"], since, until)}
    out = []
    for tid in sorted(set(book.tenants) | set(earned)):
        r = earned.get(tid, {"clicks": 0, "revenue_cents": 0, "machine_clicks": 0, "machine_cents": 0})
        t = book.tenants.get(tid)
        row = {"tenant": tid, "name": t.name if t else "", "clicks": r["clicks"],
               "revenue_cents": r["revenue_cents"], "machine_clicks": r["machine_clicks"],
               "machine_cents": r["machine_cents"]}
        if t is None:
            row.update(brand_share=None, brand_cents=None, platform_cents=None)
        else:
            brand, platform = split(r["revenue_cents"], t.revenue.brand_share)
            row.update(brand_share=t.revenue.brand_share, brand_cents=brand, platform_cents=platform)
        out.append(row)
    out.sort(key=lambda x: (-x["revenue_cents"], x["tenant"]))
    return out


# --- command line ---------------------------------------------------------------------------

def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _by(text: str) -> list[str]:
    try:
        return check_by([p for p in text.split(",") if p.strip()])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _money(cents: int | None) -> str:
    if cents is None:
        return "?"
    return f"{'-' if cents < 0 else ''}{abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def _cell(value) -> str:
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


def _jsonable(rows: list[dict]) -> list[dict]:
    return [{k: (v.isoformat() if isinstance(v, date) else v) for k, v in r.items()} for r in rows]


def _print_table(title: str, rows: list[dict], keys: list[str], columns: list[tuple[str, str]]) -> None:
    """keys: the group columns; columns: (name, kind) with kind "money", "count" or "plain"."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_footer=bool(rows) and (bool(keys) or len(rows) > 1))
    for i, k in enumerate(keys):
        table.add_column(k, footer="total" if i == 0 else "")
    for c, kind in columns:
        total = sum(r[c] or 0 for r in rows)
        footer = _money(total) if kind == "money" else f"{total:,}" if kind == "count" else ""
        table.add_column(c.replace("_cents", "") if kind == "money" else c, justify="right", footer=footer)
    for r in rows:
        cells = [_cell(r.get(k)) or "(none)" for k in keys]
        for c, kind in columns:
            v = r.get(c)
            cells.append(_money(v) if kind == "money" else f"{v:,}" if kind == "count" else _cell(v))
        table.add_row(*cells)
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m projections.revenue",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--tenant", help="one tenant (default: all)")
    ap.add_argument("--by", type=_by, default=[],
                    help=f"comma-separated grouping, of: {','.join(DIMENSIONS)}")
    ap.add_argument("--since", type=_date, help="first day, YYYY-MM-DD (default: the 1st of --until's month)")
    ap.add_argument("--until", type=_date, help="last day, inclusive (default: today, UTC)")
    ap.add_argument("--all-clicks", action="store_true",
                    help="count machine clicks in clicks/revenue too (default: humans only)")
    ap.add_argument("--profit-share", action="store_true", help="per brand: brand and platform cents")
    ap.add_argument("--database", help="ClickHouse database (default: LEADSTREAM_CLICKHOUSE_DATABASE)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args(argv)

    from projections.clickhouse import connect
    from streams.settings import get_settings
    from streams.config_view import current_book

    s = get_settings()
    until = args.until or datetime.now(timezone.utc).date()
    since = args.since or until.replace(day=1)
    if since > until:
        ap.error(f"--since {since} is after --until {until}")
    db = args.database or s.clickhouse_database
    client = connect(s.clickhouse_host, s.clickhouse_port)
    try:
        if args.profit_share:
            rows = profit_share(client, db, current_book(s), since, until)
            if args.tenant:
                rows = [r for r in rows if r["tenant"] == args.tenant]
        else:
            rows = revenue(client, db, args.tenant, args.by, since, until,
                           humans_only=not args.all_clicks)
    finally:
        client.disconnect()

    if args.json:
        import orjson
        sys.stdout.write(orjson.dumps(_jsonable(rows), option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    period = f"{since.isoformat()} .. {until.isoformat()}"
    if args.profit_share:
        _print_table(f"profit share, {period}", rows, ["tenant", "name"],
                     [("clicks", "count"), ("revenue_cents", "money"), ("brand_share", "plain"),
                      ("brand_cents", "money"), ("platform_cents", "money")])
        unknown = [r["tenant"] for r in rows if r["brand_share"] is None]
        if unknown:
            print(f"warning: not in the tenant file, split unknown: {', '.join(unknown)}", file=sys.stderr)
    else:
        who = args.tenant or "all tenants"
        billed = "every click" if args.all_clicks else "human clicks"
        _print_table(f"revenue, {who}, {period} ({billed})", rows, list(args.by),
                     [("clicks", "count"), ("revenue_cents", "money"),
                      ("machine_clicks", "count"), ("machine_cents", "money")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
