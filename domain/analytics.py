"""The analytics API's decisions (pure): who may ask what, whether a request makes sense, and
the SQL that answers it from the rollups.

    parse_request(...)        -> AnalyticsRequest, or InvalidRequest (422) naming every problem
    authorize(request, scope) -> None, or OutOfScope (403): a metric, tenant or partner not theirs
    plan(request, scope, ...) -> [Query]: one (sql, params) per rollup family involved

Only names from the catalogue (domain/analytics_catalogue.py) ever reach the SQL as
identifiers or literals; every value a caller chose is a query parameter. The scope is
applied in the SQL of every query (tenant IN ..., partner = ...), never by filtering rows
afterwards, so no filter or grouping a caller crafts can reach another tenant's or partner's
rows.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from domain.analytics_catalogue import (DIMENSIONS, METRICS, PARTNER_DEFAULTS, PUBLIC, ROLLUPS, Dimension,  # noqa: F401
                                        Metric, Rollup, base_inputs, partner_metrics)

GRANULARITIES = ("hour", "day", "week")
MAX_METRICS = 200  # the whole catalogue fits in one request (it holds about 110)
MAX_GROUP_BY = 3
MAX_FILTER_VALUES = 100
MAX_VALUE_CHARS = 200
MAX_DAYS = 400
MAX_HOURLY_DAYS = 31
MAX_LIMIT = 10_000
MAX_GROUPS = 100_000  # rows one family's query may return before the request is refused
_GRAIN_RANK = {"hour": 0, "day": 1, "week": 2}
CATALOGUE_HINT = "see GET /v1/analytics/metrics"


@dataclass(frozen=True)
class AnalyticsScope:
    """What one caller may see. tenants None: every tenant (platform admin). partner set: only
    rows of the leads that partner sent (name the partner's brand in tenants too: partner
    names are per brand). metrics None: every metric, else only these."""

    tenants: frozenset[str] | None
    partner: str | None
    metrics: frozenset[str] | None


ADMIN = AnalyticsScope(None, None, None)


def brand_scope(tenant: str) -> AnalyticsScope:
    """A brand's people: their brand, every partner, every metric."""
    return AnalyticsScope(frozenset({tenant}), None, None)


def partner_scope(tenant: str, partner: str, configured: Sequence[str] = ()) -> AnalyticsScope:
    """A brand's partner: their own leads' rows, the metrics the brand lets partners see
    (its tenant file's analytics.partner_metrics, else the catalogue's partner defaults)."""
    return AnalyticsScope(frozenset({tenant}), partner, partner_metrics(tuple(configured)))


class AnalyticsError(Exception):
    """A request the API refuses; problems: [{"field": ..., "problem": ...}] (api/errors.py)."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, problems: list[dict]):
        super().__init__(message)
        self.message = message
        self.problems = problems


class InvalidRequest(AnalyticsError):
    """The request does not make sense (HTTP 422)."""

    status = 422
    code = "validation_failed"


class OutOfScope(AnalyticsError):
    """The request asks for what the caller may not see (HTTP 403)."""

    status = 403
    code = "forbidden"


@dataclass(frozen=True)
class AnalyticsRequest:
    metrics: tuple[str, ...]
    since: date
    until: date  # inclusive
    granularity: str  # hour | day | week (series; a breakdown sums the whole range)
    group_by: tuple[str, ...]
    filters: tuple[tuple[str, tuple[str, ...]], ...]  # (dimension, values), sorted by dimension
    sort: str | None = None  # breakdown: a metric or group dimension, "-" first for descending
    limit: int = 1000

    @property
    def filter_map(self) -> dict[str, tuple[str, ...]]:
        return dict(self.filters)


def _problem(field: str, problem: str) -> dict:
    return {"field": field, "problem": problem}


def _split(values: Sequence[str] | str | None) -> list[str]:
    """Repeated and comma-separated values alike: ["a,b", "c"] -> ["a", "b", "c"]."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def _day(text, field: str, problems: list) -> date | None:
    if isinstance(text, date):
        return text
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        problems.append(_problem(field, f"{str(text)[:40]!r} is not a date (YYYY-MM-DD)"))
        return None


def parse_request(metrics: Sequence[str] | str, since, until, granularity: str | None = "day",
                  group_by: Sequence[str] | str | None = (), filters: Mapping[str, Sequence[str] | str] | None = None,
                  sort: str | None = None, limit: int | None = None) -> AnalyticsRequest:
    """A valid request from what the caller sent, or InvalidRequest listing every problem."""
    problems: list[dict] = []
    names: list[str] = []
    for i, name in enumerate(_split(metrics)):
        if name not in PUBLIC:
            problems.append(_problem(f"metrics[{i}]", f"{name[:60]!r} is not a metric; {CATALOGUE_HINT}"))
        elif name not in names:
            names.append(name)
    if not _split(metrics):
        problems.append(_problem("metrics", f"name at least one metric; {CATALOGUE_HINT}"))
    elif len(names) > MAX_METRICS:
        problems.append(_problem("metrics", f"at most {MAX_METRICS} metrics per request"))

    first, last = _day(since, "since", problems), _day(until, "until", problems)
    grain = granularity or "day"
    if grain not in GRANULARITIES:
        problems.append(_problem("granularity", f"{grain[:20]!r} is not one of {', '.join(GRANULARITIES)}"))
    if first and last:
        if first > last:
            problems.append(_problem("until", f"{last} is before since ({first})"))
        elif (last - first).days + 1 > MAX_DAYS:
            problems.append(_problem("until", f"at most {MAX_DAYS} days per request"))
        elif grain == "hour" and (last - first).days + 1 > MAX_HOURLY_DAYS:
            problems.append(_problem("granularity", f"hourly series cover at most {MAX_HOURLY_DAYS} days; "
                                                    f"ask for days or weeks"))

    groups: list[str] = []
    for i, dim in enumerate(_split(group_by)):
        if dim not in DIMENSIONS:
            problems.append(_problem(f"group_by[{i}]", f"{dim[:40]!r} is not a dimension; {CATALOGUE_HINT}"))
        elif dim in groups:
            problems.append(_problem(f"group_by[{i}]", f"{dim!r} is named twice"))
        else:
            groups.append(dim)
    if len(groups) > MAX_GROUP_BY:
        problems.append(_problem("group_by", f"at most {MAX_GROUP_BY} dimensions"))

    chosen: dict[str, tuple[str, ...]] = {}
    for dim, raw in sorted((filters or {}).items()):
        values = _split(raw)
        if dim not in DIMENSIONS:
            problems.append(_problem(dim, f"{dim[:40]!r} is not a dimension to filter by; {CATALOGUE_HINT}"))
        elif not values:
            continue
        elif len(values) > MAX_FILTER_VALUES:
            problems.append(_problem(dim, f"at most {MAX_FILTER_VALUES} values"))
        elif any(len(v) > MAX_VALUE_CHARS for v in values):
            problems.append(_problem(dim, f"values are at most {MAX_VALUE_CHARS} characters"))
        else:
            chosen[dim] = tuple(dict.fromkeys(values))

    for i, name in enumerate(names):
        m = METRICS[name]
        for where, dims in (("group_by", groups), ("filter", list(chosen))):
            missing = [d for d in dims if d not in m.dimensions]
            if missing:
                problems.append(_problem(f"metrics[{i}]", f"{name} cannot be {'grouped' if where == 'group_by' else 'filtered'} "
                                                          f"by {', '.join(missing)} (it has: {', '.join(sorted(m.dimensions))})"))

    if sort is not None:
        key = sort[1:] if sort.startswith("-") else sort
        if key not in names and key not in groups:
            problems.append(_problem("sort", f"{sort[:60]!r}: sort by one of the requested metrics or group_by "
                                             f"dimensions, '-' first for descending"))
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        problems.append(_problem("limit", f"between 1 and {MAX_LIMIT}"))

    if not problems:
        needed = set(groups) | set(chosen)
        for family, metrics_of in _by_family(names).items():
            if _rollup(family, grain, needed, metrics_of) is None:
                problems.append(_problem("group_by" if groups else "granularity", _no_rollup(family, grain, needed)))
    if problems:
        raise InvalidRequest(f"invalid analytics request: {problems[0]['field']}: {problems[0]['problem']}", problems)
    return AnalyticsRequest(tuple(names), first, last, grain, tuple(groups), tuple(sorted(chosen.items())),
                            sort, limit or 1000)


def _by_family(names: Sequence[str]) -> dict[str, list[Metric]]:
    out: dict[str, list[Metric]] = {}
    for n in base_inputs(names):
        m = METRICS[n]
        out.setdefault(m.count.family, []).append(m)
    return out


def _rollup(family: str, grain: str, dims: set[str], metrics: Sequence[Metric]) -> Rollup | None:
    """The first (smallest) rollup of the family that can answer: fine enough a grain, every
    dimension asked for, every event the metrics read."""
    events = {m.count.event for m in metrics}
    for r in ROLLUPS:
        if r.family != family or _GRAIN_RANK[r.grain] > _GRAIN_RANK[grain] or not dims <= r.dims:
            continue
        if r.events is None or events <= r.events:
            return r
    return None


def _no_rollup(family: str, grain: str, dims: set[str]) -> str:
    fine = [r for r in ROLLUPS if r.family == family and _GRAIN_RANK[r.grain] <= _GRAIN_RANK[grain]]
    options = "; ".join(sorted({", ".join(sorted(r.dims - {"tenant"})) for r in fine}))
    return (f"{family} metrics at {grain} granularity cannot combine {', '.join(sorted(dims))}: "
            f"group and filter within one of these sets (plus tenant): {options}")


def authorize(request: AnalyticsRequest, scope: AnalyticsScope) -> None:
    """OutOfScope unless every metric, tenant and partner the request names is the caller's."""
    problems = []
    if scope.tenants is not None and not scope.tenants:
        problems.append(_problem("tenant", "no tenant is in your scope"))
    for i, name in enumerate(request.metrics):
        if scope.metrics is not None and name not in scope.metrics:
            problems.append(_problem(f"metrics[{i}]", f"{name} is not among the metrics you may see"))
        elif scope.partner is not None and "partner" not in METRICS[name].dimensions:
            problems.append(_problem(f"metrics[{i}]", f"{name} cannot be confined to one partner's leads"))
    filters = request.filter_map
    if scope.tenants is not None:
        other = [t for t in filters.get("tenant", ()) if t not in scope.tenants]
        if other:
            problems.append(_problem("tenant", f"not in your scope: {', '.join(other)}"))
    if scope.partner is not None:
        other = [p for p in filters.get("partner", ()) if p != scope.partner]
        if other:
            problems.append(_problem("partner", f"you see only partner {scope.partner}'s leads, not {', '.join(other)}"))
    if problems:
        raise OutOfScope(f"out of scope: {problems[0]['field']}: {problems[0]['problem']}", problems)


# --- the SQL -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Query:
    """One rollup family's part of an answer: rows of (bucket?, group values..., base metrics...)."""

    family: str
    table: str
    sql: str
    params: dict
    group_by: tuple[str, ...]
    bucketed: bool
    metrics: tuple[str, ...]  # base metric names, in column order after the groups


def _measure(m: Metric) -> str:
    c = m.count
    cond = [f"event = '{c.event}'"]
    if c.reason is not None:
        cond.append(f"reason = '{c.reason}'")
    if c.actor is not None:
        cond.append(f"actor = '{c.actor}'")
    expr = {"n": "n", "cents": "cents",
            "brand_bp": "cents * toInt64(transform(tenant, %(share_tenants)s, %(share_bps)s, 0))",
            "unshared_cents": "cents * (NOT has(%(share_tenants)s, tenant))"}[c.measure]
    return f"sumIf({expr}, {' AND '.join(cond)})"


def _bucket(rollup: Rollup, grain: str) -> str:
    col = rollup.time_column
    if grain == "week":
        return f"toMonday({col})"
    if grain == "day" and rollup.grain == "hour":
        return f"toDate({col})"
    return col


def plan(request: AnalyticsRequest, scope: AnalyticsScope, db: str, shares: Mapping[str, int] | None = None,
         series: bool = True) -> list[Query]:
    """The queries answering the request within the scope: one per rollup family involved.

    shares: each tenant's brand share in basis points (for brand/platform shares).
    series: bucket by the request's granularity; otherwise sum the whole range (breakdown)."""
    authorize(request, scope)
    if not db.replace("_", "").isalnum():
        raise ValueError(f"database name {db!r} is not a plain identifier")
    shares = dict(shares or {})
    filters = request.filter_map
    needed = set(request.group_by) | set(filters)
    out = []
    for family, metrics in _by_family(request.metrics).items():
        rollup = _rollup(family, request.granularity if series else "week", needed, metrics)
        if rollup is None:  # parse_request checked it; a hand-made request may not have been
            raise InvalidRequest(_no_rollup(family, request.granularity, needed),
                                 [_problem("group_by", _no_rollup(family, request.granularity, needed))])
        col = rollup.time_column
        params: dict = {}
        if rollup.grain == "hour":
            where = [f"{col} >= %(start)s", f"{col} < %(end)s"]
            params["start"] = datetime.combine(request.since, time())
            params["end"] = datetime.combine(request.until + timedelta(days=1), time())
        else:
            where = [f"{col} >= %(since)s", f"{col} <= %(until)s"]
            params.update(since=request.since, until=request.until)
        where.append("event IN (" + ", ".join(sorted({f"'{m.count.event}'" for m in metrics})) + ")")
        if scope.tenants is not None:
            where.append("tenant IN %(scope_tenants)s")
            params["scope_tenants"] = tuple(sorted(scope.tenants))
        if scope.partner is not None:
            where.append("partner = %(scope_partner)s")
            params["scope_partner"] = scope.partner
        for dim, values in sorted(filters.items()):
            where.append(f"{dim} IN %(f_{dim})s")
            params[f"f_{dim}"] = tuple(values)
        if any(m.count.measure in ("brand_bp", "unshared_cents") for m in metrics):
            names = sorted(shares)
            params["share_tenants"] = names or [""]
            params["share_bps"] = [int(shares[n]) for n in names] or [0]
        select, groups = [], []
        if series:
            select.append(f"{_bucket(rollup, request.granularity)} AS bucket")
            groups.append("bucket")
        for dim in request.group_by:
            select.append(f"{dim} AS g_{dim}")
            groups.append(f"g_{dim}")
        select += [f"{_measure(m)} AS m_{i}" for i, m in enumerate(metrics)]
        sql = f"SELECT {', '.join(select)}\nFROM {db}.{rollup.table}\nWHERE {' AND '.join(where)}"
        if groups:
            sql += f"\nGROUP BY {', '.join(groups)}"
        sql += f"\nLIMIT {MAX_GROUPS + 1}"
        out.append(Query(family, rollup.table, sql, params, request.group_by, series,
                         tuple(m.name for m in metrics)))
    return out


def buckets(request: AnalyticsRequest) -> list[datetime]:
    """Every bucket of a series, first to last (a week is named by its Monday)."""
    if request.granularity == "hour":
        start = datetime.combine(request.since, time())
        return [start + timedelta(hours=h) for h in range(((request.until - request.since).days + 1) * 24)]
    if request.granularity == "week":
        first = request.since - timedelta(days=request.since.weekday())
        n = (request.until - first).days // 7 + 1
        return [datetime.combine(first + timedelta(weeks=w), time()) for w in range(n)]
    return [datetime.combine(request.since + timedelta(days=d), time())
            for d in range((request.until - request.since).days + 1)]


def brand_share_bps(shares: Mapping[str, float]) -> dict[str, int]:
    """Each tenant's brand share (tenant file revenue.brand_share, 0..1) in basis points."""
    return {t: int(round(float(s) * 10_000)) for t, s in shares.items()}


def catalogue(scope: AnalyticsScope) -> dict:
    """What GET /v1/analytics/metrics lists: the metrics this scope may ask for, the dimensions,
    the granularities."""
    allowed = [n for n in PUBLIC if scope.metrics is None or n in scope.metrics]
    if scope.partner is not None:
        allowed = [n for n in allowed if "partner" in METRICS[n].dimensions]
    return {
        "metrics": [{"name": n, "description": METRICS[n].description, "unit": METRICS[n].unit,
                     "dimensions": sorted(METRICS[n].dimensions), "partner_default": METRICS[n].partner_default,
                     "derived": METRICS[n].derived, "inputs": list(METRICS[n].inputs)} for n in allowed],
        "dimensions": [{"name": d.name, "description": d.description} for d in DIMENSIONS.values()],
        "granularities": list(GRANULARITIES),
    }
