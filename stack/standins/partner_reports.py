"""A local stand-in for the brands' partner backends: each brand's revenue report, all brands on
one port, each steerable to misbehave on its own.

GET  /reports/{brand}?from=YYYY-MM-DD&to=YYYY-MM-DD
     the brand's report, in the wire format described in domain/partner_reports.py. Its
     figures are by default leadstream's own human clicks, read from ClickHouse
     ({db}.engagement FINAL, honeypots left out), minus the clicks this backend "lost": one in
     `undercount_every`, picked by a hash of the click's event id, so always the same ones. That
     is the small, believable gap a real reconciliation finds. as_of is the server's clock
     minus `lag_s`, or the fixed `as_of` when one is set. A bad from/to is a 400.
POST /control/{brand}  {"mode": MODE, "fail_next": N, "delay_s": x, "as_of": ISO or null,
                       "lag_s": s, "currency": "USD", "undercount_every": N (0: none lost),
                       "days": [{"date", "clicks", "revenue_cents"}], "reset": true}
     keys left out keep their value; "reset" first restores the defaults. With fail_next only
     the next N requests misbehave. MODE: ok | down (503) | slow (answers after delay_s) |
     error (500) | malformed (JSON cut off mid-way) | fixed (answers `days`, as given, instead
     of ClickHouse's figures)
GET  /control/{brand}  the controls and how many requests arrived
GET  /healthz

The SQL is written here, not imported from projections.revenue, so a wrong revenue query
cannot agree with itself in the tests. If ClickHouse does not answer, neither does the
backend (503), as a real backend whose own store is down would.

Run: python -m stack.standins.partner_reports --port 18060 [--host 127.0.0.1] [--database leadstream]
     [--clickhouse-host 127.0.0.1] [--clickhouse-port 19000]   (defaults: the LEADSTREAM_* settings)
Tests: start it as a process on a free port, or url, stop = start(0, source)
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Callable

from aiohttp import web

from stack.standins.threaded import Steering, serve_in_thread

MODES = ("ok", "down", "slow", "error", "malformed", "fixed")
DEFAULT_UNDERCOUNT_EVERY = 64  # about 1.6 % of the clicks lost
_DB = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class BackendState(Steering):
    """One brand's backend: how it answers and what it says."""

    as_of: str | None = None  # a fixed as_of (ISO 8601); None: the clock minus lag_s
    lag_s: float = 0.0
    currency: str = "USD"
    undercount_every: int = DEFAULT_UNDERCOUNT_EVERY
    days: list = field(default_factory=list)  # the figures of mode "fixed", sent as given

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "fail_next": self.remaining, "delay_s": self.delay_s, "as_of": self.as_of,
                "lag_s": self.lag_s, "currency": self.currency, "undercount_every": self.undercount_every,
                "days": self.days, "requests": self.requests}


@dataclass(frozen=True)
class ClickHouseSource:
    """Where the backend's default figures come from: leadstream's own engagement table."""

    host: str
    port: int
    database: str

    def __post_init__(self) -> None:
        if not _DB.match(self.database):
            raise ValueError(f"database name {self.database!r} is not a plain identifier")

    def days(self, brand: str, since: date, until: date, undercount_every: int) -> list[dict[str, Any]]:
        """Per day: the human clicks and their CPCs, less one in `undercount_every` (0: none)."""
        from clickhouse_driver import Client
        # %% : the driver formats the parameters in with Python's % operator
        kept = f" AND cityHash64(event_id) %% {int(undercount_every)} != 0" if undercount_every > 0 else ""
        sql = (f"SELECT day, countIf(is_bot = 0{kept}), sumIf(cpc_cents, is_bot = 0{kept})\n"
               f"FROM {self.database}.engagement FINAL\n"
               f"WHERE tenant = %(brand)s AND event_type = 'engagement.clicked' AND slot != 'honeypot'\n"
               f"  AND day >= toDate(%(since)s) AND day <= toDate(%(until)s)\n"
               f"GROUP BY day ORDER BY day")
        client = Client(host=self.host, port=self.port, connect_timeout=3, send_receive_timeout=30)
        try:
            rows = client.execute(sql, {"brand": brand, "since": since.isoformat(), "until": until.isoformat()})
        finally:
            client.disconnect()
        return [{"date": d.isoformat(), "clicks": int(c), "revenue_cents": int(r)} for d, c, r in rows if c or r]


STATES = web.AppKey("states", dict)
SOURCE = web.AppKey("source", ClickHouseSource)
CLOCK = web.AppKey("clock", object)


def _state(request: web.Request) -> BackendState:
    states: dict[str, BackendState] = request.app[STATES]
    return states.setdefault(request.match_info["brand"], BackendState())


def _period(request: web.Request) -> tuple[date, date]:
    try:
        since = date.fromisoformat(request.query["from"])
        until = date.fromisoformat(request.query["to"])
    except KeyError as exc:
        raise web.HTTPBadRequest(text=f"missing query parameter {exc}: ?from=YYYY-MM-DD&to=YYYY-MM-DD\n") from None
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"bad date: {exc}\n") from None
    if since > until:
        raise web.HTTPBadRequest(text=f"from {since} is after to {until}\n")
    return since, until


async def report(request: web.Request) -> web.Response:
    """GET /reports/{brand}: the brand's figures for the period, answered as the mode says."""
    state = _state(request)
    state.requests += 1
    brand = request.match_info["brand"]
    since, until = _period(request)
    mode = state.next_mode()
    if mode == "down":
        return web.Response(status=503, text="service unavailable\n", headers={"Retry-After": "30"})
    if mode == "error":
        return web.json_response({"error": "internal error", "request_id": f"r{state.requests}"}, status=500)
    if mode == "slow":
        await asyncio.sleep(state.delay_s)
    if mode == "fixed":
        days = state.days
    else:
        try:
            days = await asyncio.to_thread(request.app[SOURCE].days, brand, since, until, state.undercount_every)
        except Exception as exc:  # the backend's own store is down: so is the backend
            return web.json_response({"error": f"report store unavailable: {type(exc).__name__}: {exc}"[:300]},
                                     status=503)
    doc = {"brand": brand, "currency": state.currency, "as_of": _as_of(state, request.app[CLOCK]()),
           "from": since.isoformat(), "to": until.isoformat(), "days": days,
           "totals": {"clicks": sum(_int(d, "clicks") for d in days),
                      "revenue_cents": sum(_int(d, "revenue_cents") for d in days)}}
    body = json.dumps(doc).encode()
    if mode == "malformed":
        body = body[: len(body) // 2]  # a proxy that cut the answer off
    return web.Response(body=body, content_type="application/json")


def _as_of(state: BackendState, now_s: float) -> str:
    if state.as_of is not None:
        return state.as_of
    return datetime.fromtimestamp(now_s - state.lag_s, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int(day: Any, key: str) -> int:
    """A figure of a fixed day for the totals (a deliberately odd one counts as 0 there)."""
    value = day.get(key) if isinstance(day, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


async def control_set(request: web.Request) -> web.Response:
    """POST /control/{brand}: change how the brand's backend answers."""
    brand = request.match_info["brand"]
    try:
        change = await request.json()
        if not isinstance(change, dict):
            raise ValueError("send a JSON object")
        base = BackendState(requests=_state(request).requests) if change.get("reset") else _state(request)
        updated = _apply(base, change)
    except (ValueError, TypeError) as exc:
        raise web.HTTPBadRequest(text=f"bad control: {exc}\n") from None
    request.app[STATES][brand] = updated
    return web.json_response(updated.as_dict())


def _apply(state: BackendState, change: dict[str, Any]) -> BackendState:
    """A new state with the change applied, checked before anything is changed."""
    mode = change.get("mode", state.mode)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    remaining = change.get("fail_next", state.remaining if "mode" not in change else None)
    remaining = None if remaining is None else int(remaining)
    if remaining is not None and remaining <= 0:
        mode, remaining = "ok", None  # "misbehave 0 more times" is behaving
    as_of = change.get("as_of", state.as_of)
    if as_of is not None and not isinstance(as_of, str):
        raise ValueError("as_of must be an ISO 8601 string or null")
    days = change.get("days", state.days)
    if not isinstance(days, list):
        raise ValueError("days must be a list")
    new = BackendState(mode=mode, remaining=remaining, delay_s=float(change.get("delay_s", state.delay_s)),
                       requests=state.requests, as_of=as_of, lag_s=float(change.get("lag_s", state.lag_s)),
                       currency=str(change.get("currency", state.currency)),
                       undercount_every=int(change.get("undercount_every", state.undercount_every)), days=days)
    if new.undercount_every < 0:
        raise ValueError("undercount_every must be >= 0")
    return new


async def control_get(request: web.Request) -> web.Response:
    """GET /control/{brand}: the controls and the request count."""
    return web.json_response(_state(request).as_dict())


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def make_app(source: ClickHouseSource, clock: Callable[[], float] = time.time) -> web.Application:
    """The aiohttp application."""
    app = web.Application()
    app[STATES], app[SOURCE], app[CLOCK] = {}, source, clock
    app.router.add_get("/reports/{brand}", report)
    app.router.add_post("/control/{brand}", control_set)
    app.router.add_get("/control/{brand}", control_get)
    app.router.add_get("/healthz", healthz)
    return app


def start(port: int, source: ClickHouseSource, host: str = "127.0.0.1") -> tuple[str, Callable[[], None]]:
    """Serve on its own thread and loop; returns (base url, stop)."""
    return serve_in_thread(make_app(source), host, port, "partner-reports-standin")


async def _main(port: int, host: str, source: ClickHouseSource) -> None:
    """Serve until SIGINT/SIGTERM."""
    app = make_app(source)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    url = f"http://{host}:{runner.addresses[0][1]}"
    print(f"partner reports stand-in on {url}  (reports: GET {url}/reports/BRAND?from=&to=, figures from "
          f"ClickHouse {source.host}:{source.port}/{source.database}; controls: POST {url}/control/BRAND)",
          flush=True)
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stopping.set)
    await stopping.wait()
    served = ", ".join(f"{b} {s.requests}" for b, s in app[STATES].items()) or "nothing"
    await runner.cleanup()
    print(f"partner reports stand-in stopped; requests: {served}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Command line: python -m stack.standins.partner_reports --port P."""
    from streams.settings import get_settings
    s = get_settings()
    parser = argparse.ArgumentParser(description="Local stand-in for brands' partner revenue reports.")
    parser.add_argument("--port", type=int, default=18060, help="port (0 = any free)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 in a container)")
    parser.add_argument("--database", default=s.clickhouse_database, help="ClickHouse database with `engagement`")
    parser.add_argument("--clickhouse-host", default=s.clickhouse_host)
    parser.add_argument("--clickhouse-port", type=int, default=s.clickhouse_port)
    args = parser.parse_args(argv)
    try:
        source = ClickHouseSource(args.clickhouse_host, args.clickhouse_port, args.database)
    except ValueError as exc:
        parser.error(str(exc))
    asyncio.run(_main(args.port, args.host, source))


if __name__ == "__main__":
    main()
