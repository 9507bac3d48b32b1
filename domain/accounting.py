"""Accounting: each brand's click revenue as we count it, reconciled with what the brand's
partner backend reports, and totals over the brands that answered. Pure: our figures, each
backend's report (or why there is none) and `now` in; a row per brand and the totals out.

A brand's row has one status:
  matched           the backend's clicks and revenue equal ours, day by day
  within_tolerance  they differ by no more than the tolerance (or only in which day a click fell)
  mismatch          they differ by more than the tolerance
  stale             the backend's figures are as of before the period's end, or older than
                    max_age: shown apart (`stale`, with their as_of), never as current figures,
                    never in the totals
  unavailable       no usable report: down, too slow, an HTTP error, malformed, another brand's
                    or another period's, another currency, dated in the future (`reason` says which)
  not_configured    the brand has no report_url, or is not in the tenant file
Only matched, within_tolerance and mismatch rows count in the reconciled totals; every other
row is listed in `excluded` with its reason, and the report says it is not complete.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Iterable, Mapping

from domain.partner_reports import Figures, PartnerReport, Period

CURRENCY = "USD"  # the CPCs in the job feeds, and so all our revenue, are US cents
DEFAULT_MAX_AGE = timedelta(hours=2)
MAX_CLOCK_SKEW = timedelta(minutes=5)  # an as_of further ahead of our clock is not believed
MAX_PERIOD_DAYS = 366


class Status(StrEnum):
    MATCHED = "matched"
    WITHIN_TOLERANCE = "within_tolerance"
    MISMATCH = "mismatch"
    STALE = "stale"
    UNAVAILABLE = "unavailable"
    NOT_CONFIGURED = "not_configured"


# the statuses whose backend figures are current, and so count in the reconciled totals
CURRENT = frozenset({Status.MATCHED, Status.WITHIN_TOLERANCE, Status.MISMATCH})


@dataclass(frozen=True)
class Unavailable:
    """Why a backend gave no usable report. code: unreachable, timeout, http_error, malformed,
    wrong_brand, wrong_period (set by the fetcher), or currency, future_as_of (by reconcile)."""

    code: str
    detail: str


@dataclass(frozen=True)
class NotConfigured:
    """Why a brand is not reconciled at all. code: no_report_url, not_in_tenant_file."""

    code: str
    detail: str


@dataclass(frozen=True)
class Tolerance:
    """How far the backend may differ and still agree: the larger of `relative` (of our
    figure) and the absolute allowance, for clicks and for revenue alike."""

    relative: float = 0.02
    cents: int = 0
    clicks: int = 0

    def allows(self, difference: int, ours: int, absolute: int) -> bool:
        allowed = max(Decimal(absolute), Decimal(str(self.relative)) * abs(ours))
        return abs(difference) <= allowed


@dataclass(frozen=True)
class OurFigures:
    """What we counted for one brand (human clicks only) and its profit share."""

    clicks: int
    revenue_cents: int
    brand_share: float | None  # None: the brand is not in the tenant file, its split unknown
    brand_cents: int | None
    platform_cents: int | None
    days: Mapping[date, Figures] = field(default_factory=dict)

    @property
    def figures(self) -> Figures:
        return Figures(self.clicks, self.revenue_cents)


@dataclass(frozen=True)
class Difference:
    """Theirs minus ours; `relative` is the revenue difference over our revenue (None when we
    counted nothing and they did: no ratio describes that). brand_cents and platform_cents: what
    the split of their revenue would give each side minus what ours gives (None: share unknown)."""

    clicks: int
    revenue_cents: int
    relative: float | None
    brand_cents: int | None = None
    platform_cents: int | None = None


@dataclass(frozen=True)
class DayDifference:
    day: date
    ours: Figures
    theirs: Figures


@dataclass(frozen=True)
class BrandRow:
    """One brand: our figures, the backend's (current, or stale and apart), and the verdict."""

    tenant: str
    name: str
    status: Status
    reason: str | None  # a code: why the status (None when matched)
    detail: str  # the same in a sentence, for people
    ours: OurFigures
    theirs: Figures | None = None  # the backend's figures, only when current
    as_of: datetime | None = None  # the backend's as_of, current or stale
    stale: Figures | None = None  # the backend's figures when stale: never to be read as current
    difference: Difference | None = None  # only when current
    day_differences: tuple[DayDifference, ...] = ()


@dataclass(frozen=True)
class Earned:
    """Our revenue over every brand in the report; brand + platform + unsplit = revenue."""

    clicks: int
    revenue_cents: int
    brand_cents: int
    platform_cents: int
    unsplit_cents: int  # revenue of brands whose share is unknown (not in the tenant file)


@dataclass(frozen=True)
class Reconciled:
    """Ours against theirs, over the brands whose backend answered with current figures."""

    tenants: tuple[str, ...]
    ours: Figures
    theirs: Figures
    difference: Difference


@dataclass(frozen=True)
class Excluded:
    tenant: str
    status: Status
    reason: str | None
    detail: str


@dataclass(frozen=True)
class AccountingReport:
    period: Period
    generated_at: datetime
    currency: str
    rows: tuple[BrandRow, ...]
    earned: Earned
    reconciled: Reconciled
    excluded: tuple[Excluded, ...]

    @property
    def complete(self) -> bool:
        """Every brand in the report was reconciled with current figures."""
        return not self.excluded


class PeriodError(ValueError):
    """A period that cannot be reported; `field` is "since" or "until"."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


def period_of(since: date, until: date, today: date, max_days: int = MAX_PERIOD_DAYS) -> Period:
    """The period since..until, refused when reversed, too long or ending after tomorrow (a
    caller east of UTC may already be in tomorrow; later than that is a mistake)."""
    if since > until:
        raise PeriodError("since", f"{since} is after the end of the period, {until}")
    if until > today + timedelta(days=1):
        raise PeriodError("until", f"{until} is in the future (today is {today}, UTC)")
    if (until - since).days + 1 > max_days:
        raise PeriodError("until", f"the period is {(until - since).days + 1} days long; at most {max_days}")
    return Period(since, until)


def split(revenue_cents: int, brand_share: float) -> tuple[int, int]:
    """(brand_cents, platform_cents): the brand's share rounded half to even, the platform
    the rest, so the two always add up to the revenue exactly."""
    exact = Decimal(revenue_cents) * Decimal(str(brand_share))
    brand = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    return brand, revenue_cents - brand


def our_figures(days: Mapping[date, Figures], brand_share: float | None) -> OurFigures:
    """A brand's totals over its days, and the split when its share is known."""
    total = sum(days.values(), Figures())
    brand, platform = split(total.revenue_cents, brand_share) if brand_share is not None else (None, None)
    return OurFigures(total.clicks, total.revenue_cents, brand_share, brand, platform, dict(sorted(days.items())))


def in_scope(tenants: Iterable[str], scope: frozenset[str] | None) -> list[str]:
    """The tenants a caller may see: all of them for None (the platform), else only its own."""
    return sorted(t for t in set(tenants) if scope is None or t in scope)


def staleness(as_of: datetime, period: Period, now: datetime, max_age: timedelta) -> tuple[str, str] | None:
    """(reason code, sentence) when figures as of `as_of` are not current for the period, else None.

    A period that has ended needs figures as of its end or later (else its last clicks are
    missing); any figures older than max_age may since have been revised."""
    if period.end <= now and as_of < period.end:
        return ("before_period_end", f"as of {_iso(as_of)}, before the period ended ({_iso(period.end)}): "
                                     "its last clicks are missing")
    if as_of < now - max_age:
        return ("too_old", f"as of {_iso(as_of)}, older than the {_duration(max_age)} allowed")
    return None


def compare(ours: Mapping[date, Figures], theirs: Mapping[date, Figures],
            tolerance: Tolerance) -> tuple[Status, str | None, str, Difference, tuple[DayDifference, ...]]:
    """(status, reason, detail, difference, differing days) of current figures against ours."""
    mine, yours = sum(ours.values(), Figures()), sum(theirs.values(), Figures())
    diff = Difference(yours.clicks - mine.clicks, yours.revenue_cents - mine.revenue_cents,
                      _relative(yours.revenue_cents - mine.revenue_cents, mine.revenue_cents))
    days = tuple(DayDifference(d, ours.get(d, Figures()), theirs.get(d, Figures()))
                 for d in sorted(set(ours) | set(theirs)) if ours.get(d, Figures()) != theirs.get(d, Figures()))
    said = _describe(diff, len(days))
    if diff.clicks == 0 and diff.revenue_cents == 0:
        if not days:
            return Status.MATCHED, None, "the backend reports the same clicks and revenue, day by day", diff, days
        return (Status.WITHIN_TOLERANCE, "days_differ",
                f"the totals agree but {len(days)} day(s) differ: another day boundary?", diff, days)
    if (tolerance.allows(diff.clicks, mine.clicks, tolerance.clicks)
            and tolerance.allows(diff.revenue_cents, mine.revenue_cents, tolerance.cents)):
        return Status.WITHIN_TOLERANCE, "small_difference", f"{said}, within {_tolerance(tolerance)}", diff, days
    return Status.MISMATCH, "beyond_tolerance", f"{said}, beyond {_tolerance(tolerance)}", diff, days


def reconcile(tenant: str, name: str, ours: OurFigures, outcome: PartnerReport | Unavailable | NotConfigured,
              period: Period, now: datetime, tolerance: Tolerance = Tolerance(),
              max_age: timedelta = DEFAULT_MAX_AGE) -> BrandRow:
    """One brand's row: our figures against what its backend reported (or why it did not)."""
    row = BrandRow(tenant, name, Status.UNAVAILABLE, None, "", ours)
    if isinstance(outcome, NotConfigured):
        return _with(row, status=Status.NOT_CONFIGURED, reason=outcome.code, detail=outcome.detail)
    if isinstance(outcome, Unavailable):
        return _with(row, reason=outcome.code, detail=outcome.detail)
    if outcome.currency != CURRENCY:
        return _with(row, reason="currency", detail=f"reports in {outcome.currency}; our figures are in {CURRENCY}")
    if outcome.as_of > now + MAX_CLOCK_SKEW:
        return _with(row, reason="future_as_of",
                     detail=f"as of {_iso(outcome.as_of)}, ahead of our clock ({_iso(now)}): its clock is wrong")
    stale = staleness(outcome.as_of, period, now, max_age)
    if stale is not None:
        return _with(row, status=Status.STALE, reason=stale[0], detail=stale[1], as_of=outcome.as_of,
                     stale=outcome.totals)
    status, reason, detail, diff, days = compare(ours.days, outcome.days, tolerance)
    if ours.brand_share is not None:
        brand, platform = split(outcome.totals.revenue_cents, ours.brand_share)
        diff = replace(diff, brand_cents=brand - ours.brand_cents, platform_cents=platform - ours.platform_cents)
    return _with(row, status=status, reason=reason, detail=detail, theirs=outcome.totals, as_of=outcome.as_of,
                 difference=diff, day_differences=days)


def build_report(period: Period, generated_at: datetime, rows: Iterable[BrandRow]) -> AccountingReport:
    """The report over these rows: earned over all, reconciled over the current ones, the rest excluded."""
    ordered = tuple(sorted(rows, key=lambda r: (-r.ours.revenue_cents, r.tenant)))
    earned = Earned(
        clicks=sum(r.ours.clicks for r in ordered),
        revenue_cents=sum(r.ours.revenue_cents for r in ordered),
        brand_cents=sum(r.ours.brand_cents or 0 for r in ordered),
        platform_cents=sum(r.ours.platform_cents or 0 for r in ordered),
        unsplit_cents=sum(r.ours.revenue_cents for r in ordered if r.ours.brand_cents is None))
    current = [r for r in ordered if r.status in CURRENT]
    ours = sum((r.ours.figures for r in current), Figures())
    theirs = sum((r.theirs for r in current if r.theirs is not None), Figures())
    reconciled = Reconciled(tuple(r.tenant for r in current), ours, theirs, Difference(
        theirs.clicks - ours.clicks, theirs.revenue_cents - ours.revenue_cents,
        _relative(theirs.revenue_cents - ours.revenue_cents, ours.revenue_cents),
        sum(r.difference.brand_cents or 0 for r in current if r.difference),
        sum(r.difference.platform_cents or 0 for r in current if r.difference)))
    excluded = tuple(Excluded(r.tenant, r.status, r.reason, r.detail) for r in ordered if r.status not in CURRENT)
    return AccountingReport(period, generated_at, CURRENCY, ordered, earned, reconciled, excluded)


def _with(row: BrandRow, **changes) -> BrandRow:
    return replace(row, **changes)


def _relative(difference: int, ours: int) -> float | None:
    if ours == 0:
        return 0.0 if difference == 0 else None
    return round(difference / ours, 6)


def _describe(diff: Difference, days: int) -> str:
    pct = "" if diff.relative is None else f" ({diff.relative * 100:+.2f}%)"
    return (f"the backend reports {diff.clicks:+d} clicks and {_money(diff.revenue_cents)}{pct} "
            f"against ours, {days} day(s) differing")


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else "+"
    return f"{sign}{abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def _tolerance(t: Tolerance) -> str:
    parts = [f"{t.relative * 100:g}%"]
    if t.cents:
        parts.append(f"{t.cents} cents")
    if t.clicks:
        parts.append(f"{t.clicks} clicks")
    return "the tolerance (" + " or ".join(parts) + ")"


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}min"
    return f"{seconds}s"
