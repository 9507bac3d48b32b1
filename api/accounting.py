"""The accounting API: each brand's click revenue as we count it, reconciled with what its
partner backend reports.

GET /v1/accounting/revenue?from=YYYY-MM-DD&to=YYYY-MM-DD   (both days inclusive, UTC)

accounting_router(deps, scope_dep) builds the router. `scope_dep` is the caller's FastAPI
dependency (the auth in front of this), returning an object with `.tenants`: None for the
platform (every brand, and the platform's share of each), or the frozenset of brands the
caller may see: only those brands' rows are computed, only their backends asked, only their
figures summed, so another brand's revenue or platform share cannot appear in the answer.
`deps` needs `tenants` (the TenantBook, read on every request), `settings.clickhouse_database`
and `clickhouse()` (a new clickhouse-driver Client), as runtime.deps.Deps has.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Literal, Protocol

from clickhouse_driver.errors import NetworkError, SocketTimeoutError
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from api.access import rule
from api.errors import ApiError
from domain.accounting import DEFAULT_MAX_AGE, PeriodError, Tolerance, period_of
from domain.tenants import TenantBook
from projections.accounting import DEFAULT_TIMEOUT_S, accounting_report, report_as_dict

StatusName = Literal["matched", "within_tolerance", "mismatch", "stale", "unavailable", "not_configured"]
FIELD = {"since": "from", "until": "to"}  # the domain's names of the period's ends -> the query's


class AccountingDeps(Protocol):
    tenants: TenantBook
    settings: Any  # .clickhouse_database

    def clickhouse(self) -> Any: ...


class Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class FiguresOut(Out):
    clicks: int = Field(description="clicks by people (machines are never billed)")
    revenue_cents: int = Field(description="what those clicks earned, in US cents")


class OursOut(FiguresOut):
    brand_share: float | None = Field(description="the brand's share of the revenue; null: not in the tenant file")
    brand_cents: int | None = Field(description="the brand's part of revenue_cents")
    platform_cents: int | None = Field(description="the platform's part; brand_cents + platform_cents = revenue_cents")


class DifferenceOut(Out):
    clicks: int = Field(description="theirs minus ours")
    revenue_cents: int = Field(description="theirs minus ours")
    relative: float | None = Field(description="revenue difference / our revenue; null when ours is 0 and theirs is not")
    brand_cents: int | None = Field(description="the brand's share of their revenue minus its share of ours")
    platform_cents: int | None = Field(description="the platform's share of their revenue minus of ours")


class DayDifferenceOut(Out):
    day: date
    ours: FiguresOut
    theirs: FiguresOut


class BrandOut(Out):
    tenant: str
    name: str
    status: StatusName = Field(description="matched | within_tolerance | mismatch: the backend answered with "
                                           "current figures; stale | unavailable | not_configured: it did not")
    reason: str | None = Field(description="why, as a code: small_difference, days_differ, beyond_tolerance, "
                                           "before_period_end, too_old, timeout, unreachable, http_error, malformed, "
                                           "wrong_brand, wrong_period, currency, future_as_of, no_report_url, "
                                           "not_in_tenant_file")
    detail: str = Field(description="the same, in a sentence")
    ours: OursOut
    theirs: FiguresOut | None = Field(description="the backend's figures, only when current")
    as_of: datetime | None = Field(description="the instant the backend's figures are as of (current or stale)")
    stale: FiguresOut | None = Field(description="the backend's figures when stale: shown apart, never current")
    difference: DifferenceOut | None = Field(description="theirs minus ours, only when current")
    day_differences: list[DayDifferenceOut] = Field(description="the days on which the figures differ")


class EarnedOut(Out):
    """Our revenue over every brand in the answer."""

    clicks: int
    revenue_cents: int
    brand_cents: int
    platform_cents: int
    unsplit_cents: int = Field(description="revenue of tenants not in the tenant file (share unknown)")


class ReconciledOut(Out):
    """Ours against theirs, over the brands whose backend answered with current figures only."""

    tenants: list[str]
    ours: FiguresOut
    theirs: FiguresOut
    difference: DifferenceOut


class ExcludedOut(Out):
    tenant: str
    status: StatusName
    reason: str | None
    detail: str


class ToleranceOut(Out):
    relative: float
    cents: int
    clicks: int


class SettingsOut(Out):
    timeout_s: float = Field(description="what each backend was given to answer")
    tolerance: ToleranceOut
    max_age_s: float = Field(description="older backend figures are stale")


class AccountingOut(Out):
    from_: date = Field(alias="from")
    to: date
    currency: str
    generated_at: datetime
    complete: bool = Field(description="false when any brand is left out of the reconciled totals (see excluded)")
    settings: SettingsOut
    brands: list[BrandOut]
    earned: EarnedOut
    reconciled: ReconciledOut
    excluded: list[ExcludedOut] = Field(description="brands left out of the reconciled totals, and why")


ERRORS = {
    422: {"description": "a bad date or period: `problems` names the field (`from` or `to`)"},
    503: {"description": "ClickHouse did not answer: without our own figures there is nothing to reconcile"},
}


def _day(value: str, name: str) -> date:
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise ApiError(422, "validation_failed", "invalid period",
                   [{"field": name, "problem": f"{value!r} is not a date: use YYYY-MM-DD"}])


def accounting_router(deps: AccountingDeps, scope_dep: Callable[..., Any], *,
                      timeout_s: float = DEFAULT_TIMEOUT_S, tolerance: Tolerance = Tolerance(),
                      max_age: timedelta = DEFAULT_MAX_AGE,
                      clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> APIRouter:
    """GET /v1/accounting/revenue, scoped by `scope_dep`."""
    router = APIRouter(tags=["accounting"])
    settings = {"timeout_s": timeout_s, "max_age_s": max_age.total_seconds(),
                "tolerance": {"relative": tolerance.relative, "cents": tolerance.cents, "clicks": tolerance.clicks}}

    @router.get("/v1/accounting/revenue", response_model=AccountingOut, responses=ERRORS,
                openapi_extra=rule("accounting.read"),
                summary="Revenue and profit share per brand, reconciled with each brand's partner backend")
    async def accounting_revenue(
        from_: str = Query(..., alias="from", description="first day, YYYY-MM-DD (UTC)", examples=["2025-11-01"]),
        to: str = Query(..., description="last day, inclusive, YYYY-MM-DD; at most tomorrow", examples=["2025-11-30"]),
        scope: Any = Depends(scope_dep),
    ) -> dict:
        """Each brand's human clicks and revenue, split between the brand and the platform, beside
        what the brand's partner backend reports for the same days. Every backend is asked at once
        and given `timeout_s`; one that is down, slow or answers nonsense is `unavailable` with the
        reason, figures older than the period's end or than `max_age_s` are `stale` (shown apart,
        never as current), and both are left out of the reconciled totals and listed in `excluded`."""
        now = clock()
        try:
            period = period_of(_day(from_, "from"), _day(to, "to"), now.date())
        except PeriodError as exc:
            raise ApiError(422, "validation_failed", "invalid period",
                           [{"field": FIELD[exc.field], "problem": str(exc)}]) from None
        try:
            report = await accounting_report(
                deps.clickhouse, deps.settings.clickhouse_database, deps.tenants, period, scope=scope.tenants,
                timeout_s=timeout_s, tolerance=tolerance, max_age=max_age, clock=clock)
        except (NetworkError, SocketTimeoutError, OSError) as exc:
            raise ApiError(503, "unavailable", f"ClickHouse is not answering ({exc}); retry",
                           headers={"Retry-After": "5"}) from None
        return report_as_dict(report, settings)

    return router
