"""Analytics answers from the ClickHouse rollups: runs domain.analytics's queries and shapes
what the API returns (series per metric and group; breakdown rows with totals).

Base metrics come summed from ClickHouse; derived ones (rates, eCPM, the profit shares) are
computed here from the summed base metrics of each group and bucket, and the totals from the
totals, never by adding up rates.
"""
from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone

from clickhouse_driver import Client

from domain.analytics import (MAX_GROUPS, METRICS, AnalyticsRequest, AnalyticsScope, InvalidRequest, Query,
                              brand_share_bps, buckets, plan)

Base = dict[str, int]
Key = tuple  # (bucket or None, group values...)


class ClientPool:
    """A few ClickHouse connections shared by request threads (a Client is not thread-safe)."""

    def __init__(self, connect: Callable[[], Client], size: int = 4):
        self._connect = connect
        self._free: queue.LifoQueue[Client] = queue.LifoQueue()
        self._size = size

    @contextmanager
    def client(self) -> Iterator[Client]:
        try:
            c = self._free.get_nowait()
        except queue.Empty:
            c = self._connect()
        try:
            yield c
        except Exception:
            c.disconnect()  # a failed query may leave the connection mid-stream
            raise
        else:
            if self._free.qsize() < self._size:
                self._free.put(c)
            else:
                c.disconnect()


class Analytics:
    """Answers series and breakdowns for one database. shares: tenant -> brand share (0..1),
    or a function returning them (read at each request: the configuration may change)."""

    def __init__(self, pool: ClientPool, db: str,
                 shares: Mapping[str, float] | Callable[[], Mapping[str, float]] | None = None, planner=plan):
        self.pool = pool
        self.db = db
        self.shares = shares if callable(shares) else (lambda: shares or {})
        self.planner = planner  # bench/analytics_baseline.py passes its scan of the events table
        self.last_timings: dict[str, float] = {}

    def _base(self, request: AnalyticsRequest, scope: AnalyticsScope, series: bool) -> dict[Key, Base]:
        """Summed base metrics per (bucket, group values), every family merged."""
        out: dict[Key, Base] = {}
        self.last_timings = {}
        with self.pool.client() as client:
            for q in self.planner(request, scope, self.db, brand_share_bps(self.shares()), series=series):
                started = time.perf_counter()
                rows = client.execute(q.sql, q.params)
                self.last_timings[q.table] = time.perf_counter() - started
                if len(rows) > MAX_GROUPS:
                    raise InvalidRequest("too many groups", [{"field": "group_by", "problem":
                                         f"more than {MAX_GROUPS} groups: filter or group by fewer dimensions"}])
                _merge(out, q, rows)
        return out

    def series(self, request: AnalyticsRequest, scope: AnalyticsScope) -> dict:
        """Per metric, per group: the value of every bucket (zero-filled) and the total."""
        base = self._base(request, scope, series=True)
        groups = _groups(base)
        totals = _totals(base, groups)
        order = _ranked(groups, totals, request.metrics[0])
        shown = order[:request.limit]
        ts = buckets(request)
        series = []
        for name in request.metrics:
            m = METRICS[name]
            series.append({"metric": name, "unit": m.unit, "groups": [
                {"group": dict(zip(request.group_by, g)), "total": m.value(totals[g]),
                 "points": [{"t": _iso(t), "value": m.value(base.get((t, *g), {}))} for t in ts]}
                for g in shown]})
        return {**_echo(request), "granularity": request.granularity, "buckets": [_iso(t) for t in ts],
                "series": series, "groups": len(order), "truncated": len(order) > len(shown)}

    def breakdown(self, request: AnalyticsRequest, scope: AnalyticsScope) -> dict:
        """One row per group over the whole range, sorted, with the totals of every group."""
        base = self._base(request, scope, series=False)
        groups = _groups(base)
        totals = _totals(base, groups)
        rows = [{"group": dict(zip(request.group_by, g)),
                 "values": {n: METRICS[n].value(totals[g]) for n in request.metrics}} for g in groups]
        grand: Base = {}
        for g in groups:
            _add(grand, totals[g])
        key = request.sort or f"-{request.metrics[0]}"
        desc, field = key.startswith("-"), key.lstrip("-")
        present = [r for r in rows if _sort_value(r, field) is not None]
        absent = [r for r in rows if _sort_value(r, field) is None]
        present.sort(key=lambda r: tuple(r["group"].values()))
        present.sort(key=lambda r: _sort_value(r, field), reverse=desc)
        rows = present + absent
        return {**_echo(request), "sort": key, "limit": request.limit, "groups": len(rows),
                "truncated": len(rows) > request.limit, "rows": rows[:request.limit],
                "totals": {n: METRICS[n].value(grand) for n in request.metrics}}


def _merge(out: dict[Key, Base], q: Query, rows: list[tuple]) -> None:
    width = (1 if q.bucketed else 0) + len(q.group_by)
    for row in rows:
        key = ((_day_start(row[0]),) if q.bucketed else (None,)) + tuple(row[1 if q.bucketed else 0:width])
        base = out.setdefault(key, {})
        for name, value in zip(q.metrics, row[width:]):
            base[name] = base.get(name, 0) + int(value)


def _groups(base: dict[Key, Base]) -> list[tuple]:
    return sorted({k[1:] for k in base})


def _totals(base: dict[Key, Base], groups: list[tuple]) -> dict[tuple, Base]:
    out: dict[tuple, Base] = {g: {} for g in groups}
    for k, b in base.items():
        _add(out[k[1:]], b)
    return out


def _add(into: Base, b: Base) -> None:
    for n, v in b.items():
        into[n] = into.get(n, 0) + v


def _ranked(groups: list[tuple], totals: dict[tuple, Base], metric: str) -> list[tuple]:
    """Groups by the first metric's total, largest first (ties and unknowns by name)."""
    def rank(g):
        v = METRICS[metric].value(totals[g])
        return (v is None, -(v or 0), g)
    return sorted(groups, key=rank)


def _sort_value(row: dict, field: str):
    return row["values"][field] if field in row["values"] else row["group"].get(field)


def _day_start(v) -> datetime:
    """A bucket as a naive UTC datetime (a DateTime with a time zone comes back aware)."""
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).replace(tzinfo=None) if v.tzinfo else v
    return datetime(v.year, v.month, v.day)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _echo(request: AnalyticsRequest) -> dict:
    return {"metrics": list(request.metrics), "since": request.since.isoformat(), "until": request.until.isoformat(),
            "group_by": list(request.group_by), "filters": {d: list(v) for d, v in request.filters}}
