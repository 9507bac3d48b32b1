"""A brand's partner backend's revenue report: the wire format, parsed and checked. Pure: bytes
in, a PartnerReport out (or a ReportError saying what is wrong with it).

The wire format (answer to GET {report_url}?from=YYYY-MM-DD&to=YYYY-MM-DD, both days inclusive):

    {
      "brand": "jobsnearby",               the brand the report is for (must be the one asked)
      "currency": "USD",                   ISO 4217; amounts are integers in its minor unit
      "as_of": "2025-11-27T02:00:00Z",     the figures include every click up to this instant
      "from": "2025-11-24", "to": "2025-11-26",   optional echo of the period asked for
      "days": [                            one entry per day with activity (others may be left out)
        {"date": "2025-11-24", "clicks": 12, "revenue_cents": 540},
        ...
      ],
      "totals": {"clicks": 40, "revenue_cents": 1800}     optional; must equal the sum of days
    }

Anything else in the document is ignored. A day outside the period, a day listed twice, a
total that disagrees with its days, an as_of without a timezone: the report is refused rather
than half-believed, because a reconciliation is only worth what its inputs are.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Mapping

MALFORMED = "malformed"
WRONG_BRAND = "wrong_brand"
WRONG_PERIOD = "wrong_period"
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class Figures:
    """Clicks and the revenue they earned, in cents (minor units)."""

    clicks: int = 0
    revenue_cents: int = 0

    def __add__(self, other: "Figures") -> "Figures":
        return Figures(self.clicks + other.clicks, self.revenue_cents + other.revenue_cents)


@dataclass(frozen=True)
class Period:
    """Whole UTC days, since..until inclusive."""

    since: date
    until: date

    def __post_init__(self) -> None:
        if self.since > self.until:
            raise ValueError(f"the period starts ({self.since}) after it ends ({self.until})")

    @property
    def start(self) -> datetime:
        """The first instant of the period (UTC midnight of `since`)."""
        return datetime(self.since.year, self.since.month, self.since.day, tzinfo=timezone.utc)

    @property
    def end(self) -> datetime:
        """The instant just after the period: UTC midnight after `until`."""
        after = self.until + timedelta(days=1)
        return datetime(after.year, after.month, after.day, tzinfo=timezone.utc)

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.since <= day <= self.until


@dataclass(frozen=True)
class PartnerReport:
    """What one brand's backend says it earned over a period, as of an instant."""

    brand: str
    currency: str
    as_of: datetime  # timezone-aware
    days: Mapping[date, Figures] = field(default_factory=dict)

    @property
    def totals(self) -> Figures:
        return sum(self.days.values(), Figures())


class ReportError(ValueError):
    """A report that cannot be used; `code` is one of MALFORMED, WRONG_BRAND, WRONG_PERIOD."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_report(body: bytes, brand: str, period: Period) -> PartnerReport:
    """The report in `body`, checked against the brand and period that were asked for."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReportError(MALFORMED, f"not JSON: {_short(str(exc))}") from None
    if not isinstance(doc, dict):
        raise ReportError(MALFORMED, f"expected a JSON object, got {type(doc).__name__}")
    said = doc.get("brand")
    if said != brand:
        raise ReportError(WRONG_BRAND, f"the report is for brand {said!r}, not {brand!r}")
    _check_echo(doc, period)
    currency = doc.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise ReportError(MALFORMED, f"currency {currency!r} is not an ISO 4217 code")
    days = _days(doc.get("days"), period)
    report = PartnerReport(brand, currency, _instant(doc.get("as_of"), "as_of"), days)
    _check_totals(doc.get("totals"), report.totals)
    return report


def _check_echo(doc: dict[str, Any], period: Period) -> None:
    """An echoed from/to must be the period asked for: else the backend answered another question."""
    for key, asked in (("from", period.since), ("to", period.until)):
        if key in doc and doc[key] != asked.isoformat():
            raise ReportError(WRONG_PERIOD, f"the report's {key!r} is {doc[key]!r}, we asked for {asked}")


def _days(raw: Any, period: Period) -> dict[date, Figures]:
    if not isinstance(raw, list):
        raise ReportError(MALFORMED, "days must be a list")
    out: dict[date, Figures] = {}
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise ReportError(MALFORMED, f"days[{i}] is not an object")
        day = _day(entry.get("date"), f"days[{i}].date")
        if day not in period:
            raise ReportError(WRONG_PERIOD, f"days[{i}] is {day}, outside {period.since}..{period.until}")
        if day in out:
            raise ReportError(MALFORMED, f"day {day} is listed twice")
        out[day] = Figures(_count(entry.get("clicks"), f"days[{i}].clicks"),
                           _count(entry.get("revenue_cents"), f"days[{i}].revenue_cents"))
    return dict(sorted(out.items()))


def _check_totals(raw: Any, summed: Figures) -> None:
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise ReportError(MALFORMED, "totals must be an object")
    stated = Figures(_count(raw.get("clicks"), "totals.clicks"),
                     _count(raw.get("revenue_cents"), "totals.revenue_cents"))
    if stated != summed:
        raise ReportError(MALFORMED, f"totals ({stated.clicks} clicks, {stated.revenue_cents} cents) "
                                     f"disagree with the sum of the days ({summed.clicks}, {summed.revenue_cents})")


def _count(value: Any, where: str) -> int:
    # bool is an int to Python, never to a partner
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ReportError(MALFORMED, f"{where} must be a whole number >= 0, got {value!r}")
    return value


def _day(value: Any, where: str) -> date:
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ReportError(MALFORMED, f"{where} must be a date YYYY-MM-DD, got {_short(repr(value))}")


def _instant(value: Any, where: str) -> datetime:
    moment = None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
    if moment is None:
        raise ReportError(MALFORMED, f"{where} must be an ISO 8601 instant, got {_short(repr(value))}")
    if moment.tzinfo is None:
        raise ReportError(MALFORMED, f"{where} {value!r} has no timezone: an instant cannot be placed")
    return moment.astimezone(timezone.utc)


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
