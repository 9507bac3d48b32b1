"""The Triggers page's period and answer (pure): the days asked for, refused with the field to
fix; every configured trigger and segment present with zeros, others seen in events added,
suppressions by reason, unknown people apart."""
from datetime import date

import pytest

from domain.accounting import PeriodError
from domain.partner_reports import Period
from domain.trigger_stats import (SegmentCounts, SendCounts, StatsRows, SuppressedCount, TriggerCounts, stats_period,
                                  trigger_stats)

TODAY = date(2026, 12, 4)
EMPTY = StatsRows([], [], [], [])


def test_the_default_period_is_the_last_seven_days_ending_today():
    assert stats_period(None, None, TODAY) == Period(date(2026, 11, 28), TODAY)
    assert stats_period(None, "2026-10-10", TODAY) == Period(date(2026, 10, 4), date(2026, 10, 10))
    assert stats_period("2026-12-01", None, TODAY) == Period(date(2026, 12, 1), TODAY)


def test_one_day_ninety_two_days_and_tomorrow_are_periods():
    assert stats_period("2026-12-04", "2026-12-04", TODAY).days == 1
    assert stats_period("2026-09-04", "2026-12-04", TODAY).days == 92
    assert stats_period("2026-12-05", "2026-12-05", TODAY).until == date(2026, 12, 5)  # east of UTC: tomorrow


@pytest.mark.parametrize("since, until, field", [
    ("2026-13-01", None, "since"),            # no such month
    ("2026-02-30", None, "since"),            # no such day
    ("04/12/2026", None, "since"),            # not YYYY-MM-DD
    ("2026-W49-5", None, "since"),            # an ISO week date Python would take
    (None, "20261204", "until"),
    (None, "", "until"),
    ("2026-12-04", "2026-12-01", "since"),    # reversed
    ("2026-09-03", "2026-12-04", "until"),    # 93 days
    (None, "2026-12-06", "until"),            # after tomorrow
    ("1969-12-31", "1970-01-02", "since"),    # before anything is recorded
])
def test_a_bad_day_or_period_names_its_field(since, until, field):
    with pytest.raises(PeriodError) as exc:
        stats_period(since, until, TODAY)
    assert exc.value.field == field and str(exc.value)


def test_every_configured_trigger_and_segment_appears_with_zeros():
    out = trigger_stats(Period(date(2021, 3, 1), date(2021, 3, 7)), ["b", "a"], {"seg": object()}, EMPTY)
    assert (out["since"], out["until"], out["unknown_person_events"]) == ("2021-03-01", "2021-03-07", 0)
    assert [t["trigger"] for t in out["triggers"]] == ["a", "b"]
    assert out["triggers"][0] == {
        "trigger": "a", "configured": True, "matched": 0, "scheduled": 0, "deferred": 0, "fired": 0, "suppressed": {},
        "goals_reached": 0, "sends_requested": 0, "sends_dispatched": 0, "sends_delivered": 0, "sends_bounced": 0,
        "sends_failed": 0, "sends_skipped": 0, "unique_leads_fired": 0, "last_fired_at": None}
    assert out["segments"] == [{"segment": "seg", "configured": True, "entered": 0, "left": 0}]


def test_counts_suppressions_sends_and_segments_land_on_their_trigger():
    rows = StatsRows(
        triggers=[TriggerCounts("a", 5, 2, 1, 2, 2, 1_764_842_400_123), TriggerCounts("", 0, 0, 0, 0, 0, 0)],
        suppressed=[SuppressedCount("a", "cooldown", 2), SuppressedCount("a", "goal_reached", 1),
                    SuppressedCount("", "unknown_person", 4)],
        sends=[SendCounts("a", 2, 2, 1, 0, 0, 0)],
        segments=[SegmentCounts("seg", 3, 1), SegmentCounts("gone", 1, 0)])
    out = trigger_stats(Period(TODAY, TODAY), ["a"], ["seg"], rows)
    [a] = out["triggers"]  # the engine's unknown-person suppressions have no trigger: not a row
    assert a["matched"] == 5 and a["fired"] == 2 and (a["scheduled"], a["deferred"]) == (2, 1)
    assert a["suppressed"] == {"cooldown": 2, "goal_reached": 1} and a["goals_reached"] == 1
    assert (a["sends_requested"], a["sends_dispatched"], a["sends_delivered"]) == (2, 2, 1)
    assert a["unique_leads_fired"] == 2 and a["last_fired_at"] == "2025-12-04T10:00:00.123000Z"
    assert out["unknown_person_events"] == 4
    assert out["segments"] == [{"segment": "gone", "configured": False, "entered": 1, "left": 0},
                               {"segment": "seg", "configured": True, "entered": 3, "left": 1}]


def test_a_trigger_seen_only_in_events_is_listed_as_not_configured():
    rows = StatsRows([], [SuppressedCount("removed", "trigger_removed", 1)], [SendCounts("old", 1, 0, 0, 0, 0, 1)], [])
    out = trigger_stats(Period(TODAY, TODAY), ["kept"], [], rows)
    assert [(t["trigger"], t["configured"]) for t in out["triggers"]] == [("kept", True), ("old", False),
                                                                           ("removed", False)]
    assert out["triggers"][1]["sends_skipped"] == 1 and out["triggers"][2]["suppressed"] == {"trigger_removed": 1}
