"""The analytics API: GET /v1/analytics/metrics, /series and /breakdown, within the caller's scope.

    router = analytics_router(deps, scope_dep)   # scope_dep: a FastAPI dependency -> AnalyticsScope

Every answer comes from the ClickHouse rollups (projections/analytics.py); what a caller may
ask and see is decided in domain/analytics.py (422 with the problems, 403 out of scope).
"""
from __future__ import annotations

from collections.abc import Callable

from clickhouse_driver import errors as ch_errors
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.access import rule
from api.errors import ApiError
from domain.analytics import (CATALOGUE_HINT, DIMENSIONS, GRANULARITIES, MAX_DAYS, MAX_LIMIT, AnalyticsError,
                              AnalyticsRequest, AnalyticsScope, catalogue, parse_request)
from projections.analytics import Analytics, ClientPool

Number = int | float | None


class MetricInfo(BaseModel):
    name: str = Field(description="what to pass in `metrics`")
    description: str
    unit: str = Field(description="count, cents or ratio")
    dimensions: list[str] = Field(description="what it can be grouped and filtered by")
    partner_default: bool = Field(description="whether a brand's partners see it unless the brand says otherwise")
    derived: bool = Field(description="computed from other metrics (summed first), not summed itself")
    inputs: list[str] = Field(description="the metrics a derived metric is computed from")


class DimensionInfo(BaseModel):
    name: str
    description: str


class CatalogueOut(BaseModel):
    metrics: list[MetricInfo]
    dimensions: list[DimensionInfo]
    granularities: list[str]


class Point(BaseModel):
    t: str = Field(description="the bucket's start, UTC (a week starts on Monday)")
    value: Number = Field(description="null: a rate whose denominator is 0, or a share that is unknown")


class SeriesGroup(BaseModel):
    group: dict[str, str] = Field(description="the group_by dimensions' values ({} without group_by)")
    total: Number = Field(description="over the whole range (rates from the summed counts)")
    points: list[Point]


class MetricSeries(BaseModel):
    metric: str
    unit: str
    groups: list[SeriesGroup]


class Echo(BaseModel):
    metrics: list[str]
    since: str
    until: str
    group_by: list[str]
    filters: dict[str, list[str]]


class SeriesOut(Echo):
    granularity: str
    buckets: list[str]
    series: list[MetricSeries]
    groups: int = Field(description="how many groups there are")
    truncated: bool = Field(description="true when only the first `limit` groups (by the first metric) are shown")


class BreakdownRow(BaseModel):
    group: dict[str, str]
    values: dict[str, Number]


class BreakdownOut(Echo):
    sort: str
    limit: int
    groups: int
    truncated: bool
    rows: list[BreakdownRow]
    totals: dict[str, Number] = Field(description="over every group, not only those shown (a lead counted under "
                                                  "several keywords or categories counts once under each)")


_PROBLEMS = {422: {"description": "invalid request: `problems` lists each field and what is wrong"},
             403: {"description": "a metric, tenant or partner outside the caller's scope"},
             503: {"description": "ClickHouse is not answering; retry"}}


def _filters(
    tenant: list[str] | None = Query(None, description=DIMENSIONS["tenant"].description),
    partner: list[str] | None = Query(None, description=DIMENSIONS["partner"].description),
    list_: list[str] | None = Query(None, alias="list", description=DIMENSIONS["list"].description),
    channel: list[str] | None = Query(None, description=DIMENSIONS["channel"].description),
    provider: list[str] | None = Query(None, description=DIMENSIONS["provider"].description),
    template: list[str] | None = Query(None, description=DIMENSIONS["template"].description),
    creative: list[str] | None = Query(None, description=DIMENSIONS["creative"].description),
    job_source: list[str] | None = Query(None, description=DIMENSIONS["job_source"].description),
    kind: list[str] | None = Query(None, description=DIMENSIONS["kind"].description),
    keyword: list[str] | None = Query(None, description=DIMENSIONS["keyword"].description),
    category: list[str] | None = Query(None, description=DIMENSIONS["category"].description),
    country: list[str] | None = Query(None, description=DIMENSIONS["country"].description),
    state: list[str] | None = Query(None, description=DIMENSIONS["state"].description),
    variant: list[str] | None = Query(None, description=DIMENSIONS["variant"].description),
) -> dict[str, list[str]]:
    """Filters: each dimension a query parameter, repeated (or comma-separated) for several values."""
    given = {"tenant": tenant, "partner": partner, "list": list_, "channel": channel, "provider": provider,
             "template": template, "creative": creative, "job_source": job_source, "kind": kind,
             "keyword": keyword, "category": category, "country": country, "state": state, "variant": variant}
    return {k: v for k, v in given.items() if v}


_METRICS = Query(..., description=f"metric names, repeated or comma-separated; {CATALOGUE_HINT}")
_SINCE = Query(..., description="first day, YYYY-MM-DD (UTC)")
_UNTIL = Query(..., description=f"last day, inclusive, YYYY-MM-DD (UTC); at most {MAX_DAYS} days")
_GROUP_BY = Query(None, description="dimensions to group by (at most 3), repeated or comma-separated")
_LIMIT = Query(None, description=f"at most this many groups / rows (1..{MAX_LIMIT}, default 1000)")


def analytics_router(deps, scope_dep: Callable[..., AnalyticsScope],
                     engine: Analytics | None = None) -> APIRouter:
    """The three routes; scope_dep resolves the caller's AnalyticsScope (the API's sign-in)."""
    engine = engine or Analytics(ClientPool(deps.clickhouse), deps.settings.clickhouse_database,
                                 lambda: {t.id: t.revenue.brand_share for t in deps.tenants.tenants.values()})
    router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

    @router.get("/metrics", response_model=CatalogueOut, openapi_extra=rule("analytics.read"))
    def metrics(scope: AnalyticsScope = Depends(scope_dep)) -> dict:
        """The metrics you may ask for (each with its unit, dimensions and description), the
        dimensions, and the granularities."""
        return catalogue(scope)

    @router.get("/series", response_model=SeriesOut, responses=_PROBLEMS, openapi_extra=rule("analytics.read"))
    def series(metrics: list[str] = _METRICS, since: str = _SINCE, until: str = _UNTIL,
               granularity: str = Query("day", description=f"one of {', '.join(GRANULARITIES)} (hourly: at most "
                                                           f"31 days)"),
               group_by: list[str] | None = _GROUP_BY, limit: int | None = _LIMIT,
               filters: dict = Depends(_filters), scope: AnalyticsScope = Depends(scope_dep)) -> dict:
        """Per metric and group, the value of every hour, day or week of the range (zero-filled)
        and the range's total. Groups are ordered by the first metric's total."""
        request = _request(metrics, since, until, granularity, group_by, filters, None, limit)
        return _answer(lambda: engine.series(request, scope))

    @router.get("/breakdown", response_model=BreakdownOut, responses=_PROBLEMS, openapi_extra=rule("analytics.read"))
    def breakdown(metrics: list[str] = _METRICS, since: str = _SINCE, until: str = _UNTIL,
                  group_by: list[str] | None = _GROUP_BY,
                  sort: str | None = Query(None, description="a requested metric or group_by dimension, '-' first "
                                                             "for descending (default: the first metric, descending)"),
                  limit: int | None = _LIMIT, filters: dict = Depends(_filters),
                  scope: AnalyticsScope = Depends(scope_dep)) -> dict:
        """One row per group with every metric summed over the whole range, sorted, and the
        totals over every group."""
        request = _request(metrics, since, until, "day", group_by, filters, sort, limit)
        return _answer(lambda: engine.breakdown(request, scope))

    return router


def _request(metrics, since, until, granularity, group_by, filters, sort, limit) -> AnalyticsRequest:
    try:
        return parse_request(metrics, since, until, granularity, group_by or (), filters, sort, limit)
    except AnalyticsError as exc:
        raise ApiError(exc.status, exc.code, exc.message, exc.problems) from None


def _answer(run: Callable[[], dict]) -> dict:
    try:
        return run()
    except AnalyticsError as exc:
        raise ApiError(exc.status, exc.code, exc.message, exc.problems) from None
    except (ch_errors.NetworkError, ch_errors.SocketTimeoutError, ConnectionError, EOFError, OSError) as exc:
        raise ApiError(503, "unavailable", f"the analytics store (ClickHouse) is not answering: {exc}; retry",
                       headers={"Retry-After": "5"}) from None
