"""Reconciliation of our revenue with the brands' backends: every status, freshness, tolerance,
totals over the brands that answered, scoping and the period rules."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from domain.accounting import (CURRENCY, NotConfigured, PeriodError, Status, Tolerance, Unavailable,
                               build_report, compare, in_scope, our_figures, period_of, reconcile, split,
                               staleness)
from domain.partner_reports import Figures, PartnerReport, Period

D24, D25, D26 = date(2025, 11, 24), date(2025, 11, 25), date(2025, 11, 26)
PERIOD = Period(D24, D26)
END = datetime(2025, 11, 27, tzinfo=timezone.utc)  # the period's end
NOW = END + timedelta(hours=5)
OURS_DAYS = {D24: Figures(100, 4500), D25: Figures(50, 2000), D26: Figures(10, 500)}
OURS = our_figures(OURS_DAYS, 0.7)


def report(days=None, as_of=END + timedelta(hours=4), currency=CURRENCY, brand="acme") -> PartnerReport:
    return PartnerReport(brand, currency, as_of, OURS_DAYS if days is None else days)


def row(outcome, ours=OURS, now=NOW, tolerance=Tolerance(), max_age=timedelta(hours=2), period=PERIOD):
    return reconcile("acme", "Acme", ours, outcome, period, now, tolerance, max_age)


def test_our_figures_sum_the_days_and_split_exactly():
    assert (OURS.clicks, OURS.revenue_cents, OURS.brand_cents, OURS.platform_cents) == (160, 7000, 4900, 2100)
    unknown = our_figures({D24: Figures(1, 13)}, None)
    assert (unknown.brand_share, unknown.brand_cents, unknown.platform_cents) == (None, None, None)
    assert split(5, 0.5) == (2, 3) and split(7, 0.5) == (4, 3)  # half to even, the rest to the platform
    assert split(0, 0.7) == (0, 0)


def test_matched():
    r = row(report())
    assert r.status is Status.MATCHED and r.reason is None
    assert r.theirs == Figures(160, 7000) and r.as_of == END + timedelta(hours=4) and r.stale is None
    assert (r.difference.clicks, r.difference.revenue_cents, r.difference.relative) == (0, 0, 0.0)
    assert r.day_differences == ()


def test_within_tolerance_when_a_few_clicks_are_missing():
    theirs = {**OURS_DAYS, D24: Figures(98, 4410)}  # 2 clicks, 0.90 fewer: -1.29 % of 70.00
    r = row(report(theirs))
    assert r.status is Status.WITHIN_TOLERANCE and r.reason == "small_difference"
    assert (r.difference.clicks, r.difference.revenue_cents) == (-2, -90)
    # their 69.10 split 70/30 is 48.37 + 20.73, against our 49.00 + 21.00 of 70.00
    assert (r.difference.brand_cents, r.difference.platform_cents) == (4837 - 4900, 2073 - 2100)
    assert r.difference.relative == pytest.approx(-90 / 7000, abs=1e-6)
    assert [(d.day, d.ours, d.theirs) for d in r.day_differences] == [(D24, Figures(100, 4500), Figures(98, 4410))]
    assert "-2 clicks" in r.detail and "-0.90" in r.detail and "within" in r.detail


def test_mismatch_beyond_tolerance():
    theirs = {**OURS_DAYS, D25: Figures(40, 1600)}  # -4.00 of 70.00 = -5.7 %
    r = row(report(theirs))
    assert r.status is Status.MISMATCH and r.reason == "beyond_tolerance"
    assert r.theirs == Figures(150, 6600) and r.difference.revenue_cents == -400
    assert "beyond" in r.detail and "2%" in r.detail


def test_more_revenue_than_ours_is_a_mismatch_too():
    r = row(report({**OURS_DAYS, D26: Figures(30, 1500)}))
    assert r.status is Status.MISMATCH and r.difference.clicks == 20 and r.difference.revenue_cents == 1000


def test_the_tolerance_is_inclusive_and_judges_clicks_and_revenue_alike():
    ours = our_figures({D24: Figures(100, 5000)}, 0.7)
    at_the_edge = row(report({D24: Figures(98, 4900)}), ours=ours)  # exactly 2 % of each
    assert at_the_edge.status is Status.WITHIN_TOLERANCE
    clicks_off = row(report({D24: Figures(97, 5000)}), ours=ours)  # revenue equal, clicks 3 % off
    assert clicks_off.status is Status.MISMATCH
    assert row(report({D24: Figures(97, 5000)}), ours=ours, tolerance=Tolerance(clicks=3)).status \
        is Status.WITHIN_TOLERANCE


def test_an_absolute_allowance_covers_small_figures():
    ours = our_figures({D24: Figures(3, 120)}, 0.7)
    theirs = report({D24: Figures(2, 80)})
    assert row(theirs, ours=ours).status is Status.MISMATCH
    assert row(theirs, ours=ours, tolerance=Tolerance(cents=50, clicks=1)).status is Status.WITHIN_TOLERANCE


def test_same_totals_on_other_days_are_within_tolerance_not_matched():
    moved = {D24: Figures(100, 4500), D25: Figures(49, 1960), D26: Figures(11, 540)}
    r = row(report(moved))
    assert r.status is Status.WITHIN_TOLERANCE and r.reason == "days_differ"
    assert r.difference.revenue_cents == 0 and len(r.day_differences) == 2


def test_nothing_on_our_side_and_something_on_theirs_has_no_ratio():
    ours = our_figures({}, 0.7)
    r = row(report({D24: Figures(1, 45)}), ours=ours)
    assert r.status is Status.MISMATCH and r.difference.relative is None
    assert r.detail.startswith("the backend reports +1 clicks and +0.45 against ours")  # no percentage
    assert row(report({}), ours=ours).status is Status.MATCHED  # nothing on either side


@pytest.mark.parametrize("code", ["timeout", "unreachable", "http_error", "malformed", "wrong_brand"])
def test_unavailable_keeps_the_reason_and_shows_no_figures_of_theirs(code):
    r = row(Unavailable(code, f"it said {code}"))
    assert r.status is Status.UNAVAILABLE and r.reason == code and r.detail == f"it said {code}"
    assert r.theirs is None and r.stale is None and r.difference is None and r.as_of is None
    assert r.ours == OURS  # ours are always there


def test_another_currency_is_unavailable_not_compared():
    r = row(report(currency="EUR"))
    assert r.status is Status.UNAVAILABLE and r.reason == "currency" and "EUR" in r.detail
    assert r.theirs is None


def test_an_as_of_from_the_future_is_not_believed():
    r = row(report(as_of=NOW + timedelta(hours=1)))
    assert r.status is Status.UNAVAILABLE and r.reason == "future_as_of"
    assert row(report(as_of=NOW + timedelta(minutes=4))).status is Status.MATCHED  # small clock skew


def test_not_configured():
    r = row(NotConfigured("no_report_url", "no revenue.report_url"))
    assert r.status is Status.NOT_CONFIGURED and r.reason == "no_report_url" and r.theirs is None


def test_stale_before_the_period_ended_is_shown_apart_never_as_current():
    as_of = END - timedelta(hours=3)
    r = row(report(as_of=as_of), max_age=timedelta(days=30))
    assert r.status is Status.STALE and r.reason == "before_period_end"
    assert r.stale == Figures(160, 7000) and r.as_of == as_of
    assert r.theirs is None and r.difference is None  # not a current figure anywhere
    assert "2025-11-26T21:00:00Z" in r.detail


def test_stale_when_older_than_max_age():
    r = row(report(as_of=NOW - timedelta(hours=3)), max_age=timedelta(hours=2))
    assert r.status is Status.STALE and r.reason == "too_old" and "2h" in r.detail
    assert row(report(as_of=NOW - timedelta(hours=1)), max_age=timedelta(hours=2)).status is Status.MATCHED


def test_a_period_not_yet_over_needs_only_recent_figures():
    today = Period(D26, D26)
    now = datetime(2025, 11, 26, 15, tzinfo=timezone.utc)
    ours = our_figures({D26: Figures(10, 500)}, 0.7)
    fresh = reconcile("acme", "Acme", ours, report({D26: Figures(10, 500)}, as_of=now - timedelta(minutes=5)),
                      today, now, Tolerance(), timedelta(hours=2))
    assert fresh.status is Status.MATCHED
    assert staleness(now - timedelta(hours=3), today, now, timedelta(hours=2))[0] == "too_old"


def test_staleness_boundaries():
    assert staleness(END, PERIOD, NOW, timedelta(days=1)) is None  # as of the very end: complete
    assert staleness(END - timedelta(seconds=1), PERIOD, NOW, timedelta(days=1))[0] == "before_period_end"


def test_compare_is_symmetric_in_what_it_lists():
    status, reason, _, diff, days = compare({D24: Figures(1, 10)}, {D25: Figures(1, 10)}, Tolerance())
    assert (status, reason, diff.clicks, diff.revenue_cents) == (Status.WITHIN_TOLERANCE, "days_differ", 0, 0)
    assert [d.day for d in days] == [D24, D25]


def test_totals_are_over_the_brands_that_answered_and_say_who_is_left_out():
    big = our_figures({D24: Figures(200, 9000)}, 0.6)
    ghost = our_figures({D24: Figures(1, 13)}, None)
    rows = [
        reconcile("acme", "Acme", OURS, report(), PERIOD, NOW),  # matched
        reconcile("bolt", "Bolt", big, report({D24: Figures(190, 8500)}, brand="bolt"), PERIOD, NOW),  # mismatch
        reconcile("cargo", "Cargo", OURS, Unavailable("timeout", "no answer within 3s"), PERIOD, NOW),
        reconcile("delta", "Delta", OURS, report(as_of=END - timedelta(hours=1)), PERIOD, NOW),  # stale
        reconcile("ghost", "", ghost, NotConfigured("not_in_tenant_file", "unknown brand"), PERIOD, NOW),
    ]
    rep = build_report(PERIOD, NOW, rows)
    assert [r.tenant for r in rep.rows] == ["bolt", "acme", "cargo", "delta", "ghost"]  # by revenue
    assert rep.reconciled.tenants == ("bolt", "acme")
    assert rep.reconciled.ours == Figures(360, 16000) and rep.reconciled.theirs == Figures(350, 15500)
    assert rep.reconciled.difference.revenue_cents == -500
    # bolt's 85.00 split 60/40 is 51.00 + 34.00 against 54.00 + 36.00; acme's matched
    assert (rep.reconciled.difference.brand_cents, rep.reconciled.difference.platform_cents) == (-300, -200)
    assert rep.reconciled.difference.relative == pytest.approx(-500 / 16000, abs=1e-6)
    assert [(e.tenant, e.status, e.reason) for e in rep.excluded] == [
        ("cargo", Status.UNAVAILABLE, "timeout"), ("delta", Status.STALE, "before_period_end"),
        ("ghost", Status.NOT_CONFIGURED, "not_in_tenant_file")]
    assert not rep.complete
    e = rep.earned
    assert (e.clicks, e.revenue_cents) == (160 * 3 + 200 + 1, 7000 * 3 + 9000 + 13)
    assert e.brand_cents + e.platform_cents + e.unsplit_cents == e.revenue_cents and e.unsplit_cents == 13


def test_a_report_where_everyone_answered_is_complete():
    rep = build_report(PERIOD, NOW, [reconcile("acme", "Acme", OURS, report(), PERIOD, NOW)])
    assert rep.complete and rep.excluded == () and rep.currency == "USD"


def test_an_empty_report():
    rep = build_report(PERIOD, NOW, [])
    assert rep.complete and rep.reconciled.difference.relative == 0.0 and rep.earned.revenue_cents == 0


def test_scope():
    assert in_scope(["b", "a", "c"], None) == ["a", "b", "c"]
    assert in_scope(["b", "a", "c"], frozenset({"c", "zz"})) == ["c"]
    assert in_scope(["a"], frozenset()) == []


def test_period_rules():
    today = date(2025, 11, 27)
    assert period_of(D24, D26, today) == PERIOD
    assert period_of(today, today + timedelta(days=1), today).days == 2  # tomorrow, east of UTC
    with pytest.raises(PeriodError) as e:
        period_of(D26, D24, today)
    assert e.value.field == "since"
    with pytest.raises(PeriodError) as e:
        period_of(D24, today + timedelta(days=2), today)
    assert e.value.field == "until" and "future" in str(e.value)
    with pytest.raises(PeriodError) as e:
        period_of(date(2024, 1, 1), D26, today)
    assert e.value.field == "until" and "at most 366" in str(e.value)
    with pytest.raises(ValueError):
        Period(D26, D24)
