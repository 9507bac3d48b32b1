from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from domain.schedule import (
    MAX_LATE_MS, Cadence, after_quiet_hours, catch_up, due_between, in_quiet_hours, local_date,
    next_due, parse_cadence, plan_day, resolve_timezone, send_id, welcome_at,
)
from domain.tenants import ListConfig

NY, LA, LONDON = "America/New_York", "America/Los_Angeles", "Europe/London"
HOUR = 3_600_000


def utc(text: str) -> int:
    """Epoch ms of a UTC wall time written "YYYY-MM-DDTHH:MM"."""
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


# --- local time and DST --------------------------------------------------------------------

@pytest.mark.parametrize("after, ny, la", [
    ("2026-01-15T00:00", "2026-01-15T14:00", "2026-01-15T17:00"),  # winter: UTC-5 / UTC-8
    ("2026-07-15T00:00", "2026-07-15T13:00", "2026-07-15T16:00"),  # summer: UTC-4 / UTC-7
])
def test_each_lead_gets_nine_oclock_at_its_own_instant(after, ny, la):
    assert next_due(utc(after), NY, "09:00", "daily") == utc(ny)
    assert next_due(utc(after), LA, "09:00", "daily") == utc(la)


def test_next_due_is_strictly_after():
    assert next_due(utc("2026-01-15T14:00"), NY, "09:00", "daily") == utc("2026-01-16T14:00")
    assert next_due(utc("2026-01-15T14:00") - 1, NY, "09:00", "daily") == utc("2026-01-15T14:00")


def test_local_date_is_the_leads_calendar_day():
    assert local_date(utc("2026-01-16T03:00"), NY) == "2026-01-15"
    assert local_date(utc("2026-01-16T03:00"), LONDON) == "2026-01-16"


@pytest.mark.parametrize("tz, day, send_time, due", [
    (NY, "2026-03-08", "02:30", "2026-03-08T07:00"),      # gap 02:00-03:00 EST: sent at 03:00 EDT
    (NY, "2026-03-08", "09:00", "2026-03-08T13:00"),      # after the jump: EDT
    (NY, "2026-03-07", "02:30", "2026-03-07T07:30"),      # the day before: EST
    (NY, "2026-03-09", "02:30", "2026-03-09T06:30"),      # the day after: EDT
    (LONDON, "2026-03-29", "01:30", "2026-03-29T01:00"),  # gap 01:00-02:00 GMT: sent at 02:00 BST
    (LONDON, "2026-03-29", "09:00", "2026-03-29T08:00"),
])
def test_spring_forward_gap_is_sent_at_the_first_valid_instant(tz, day, send_time, due):
    assert next_due(utc(f"{day}T00:00") - 1, tz, send_time, "daily") == utc(due)
    assert local_date(utc(due), tz) == day


@pytest.mark.parametrize("tz, day, send_time, first, next_day", [
    (NY, "2026-11-01", "01:30", "2026-11-01T05:30", "2026-11-02T06:30"),      # 01:30 EDT, not EST
    (LONDON, "2026-10-25", "01:30", "2026-10-25T00:30", "2026-10-26T01:30"),  # 01:30 BST, not GMT
])
def test_fall_back_ambiguous_time_is_sent_once_at_its_first_occurrence(tz, day, send_time, first, next_day):
    dues = due_between(utc(f"{day}T00:00") - 1, utc(next_day), tz, send_time, "daily")
    assert dues == [utc(first), utc(next_day)]
    # the second 01:30 (one hour later) is not a new send
    assert next_due(utc(first), tz, send_time, "daily") == utc(next_day)


@pytest.mark.parametrize("tz, start, end", [
    (NY, "2026-03-06", "2026-03-11"), (NY, "2026-10-30", "2026-11-04"),
    (LONDON, "2026-03-27", "2026-04-01"), (LONDON, "2026-10-23", "2026-10-28"),
])
@pytest.mark.parametrize("send_time", ["00:00", "00:30", "01:00", "01:30", "02:00", "02:30", "03:00", "23:59"])
def test_exactly_one_send_per_local_day_across_dst(tz, start, end, send_time):
    dues = due_between(utc(f"{start}T12:00"), utc(f"{end}T12:00"), tz, send_time, "daily")
    days = [local_date(d, tz) for d in dues]
    assert len(days) == len(set(days)) == 5


# --- cadences ------------------------------------------------------------------------------

def test_weekdays_follow_the_leads_local_date_not_utc():
    # 18:00 in LA (UTC-8) is 02:00Z the next day: Friday's send lands on UTC Saturday and
    # Sunday's would land on UTC Monday, which must not count as a weekday.
    dues = due_between(utc("2026-01-16T12:00"), utc("2026-01-20T12:00"), LA, "18:00", "weekdays")
    assert dues == [utc("2026-01-17T02:00"), utc("2026-01-20T02:00")]
    assert [local_date(d, LA) for d in dues] == ["2026-01-16", "2026-01-19"]  # Friday, Monday


@pytest.mark.parametrize("text, days", [
    ("daily", {0, 1, 2, 3, 4, 5, 6}), ("weekdays", {0, 1, 2, 3, 4}), ("weekly:thu", {3}),
    ("Weekly: Monday", {0}), ("1_per_week", {2}), ("2_per_week", {1, 3}), ("3_per_week", {0, 2, 4}),
    ("4_per_week", {0, 1, 3, 4}), ("5_per_week", {0, 1, 2, 3, 4}), ("7_per_week", set(range(7))),
    ("mon,wed,fri", {0, 2, 4}), (" Sun, SAT ", {5, 6}),
])
def test_cadences_parse_to_weekdays(text, days):
    assert parse_cadence(text).days == frozenset(days)


def test_explicit_day_lists_are_canonical():
    assert parse_cadence("fri, Mon,wed").spec == "mon,wed,fri"


@pytest.mark.parametrize("text, words", [
    ("fortnightly", "not understood"), ("8_per_week", "1 to 7"), ("0_per_week", "1 to 7"),
    ("weekly:funday", "not a weekday"), ("mon,funday", "not understood"), ("", "not understood"),
])
def test_bad_cadences_say_what_is_accepted(text, words):
    with pytest.raises(ValueError, match=words):
        parse_cadence(text)


def test_n_per_week_and_explicit_days_over_a_week():
    week = (utc("2026-01-12T00:00"), utc("2026-01-19T00:00"))  # Mon 12 .. Sun 18 January
    three = due_between(*week, NY, "09:00", "3_per_week")
    assert [local_date(d, NY) for d in three] == ["2026-01-12", "2026-01-14", "2026-01-16"]
    two = due_between(*week, NY, "09:00", "2_per_week")
    assert [local_date(d, NY) for d in two] == ["2026-01-13", "2026-01-15"]
    weekend = due_between(*week, NY, "09:00", "sat,sun")
    assert [local_date(d, NY) for d in weekend] == ["2026-01-17", "2026-01-18"]


def test_bare_weekly_sends_first_then_sticks_to_that_weekday():
    weekly = parse_cadence("weekly")
    assert not weekly.anchored
    first = next_due(utc("2026-01-14T00:00"), NY, "09:00", weekly)  # any day: Wednesday 14th
    assert first == utc("2026-01-14T14:00")
    anchored = weekly.anchor(datetime.fromisoformat(local_date(first, NY)).weekday())
    assert anchored == Cadence("weekly:wed", frozenset({2}))
    assert next_due(first, NY, "09:00", anchored) == utc("2026-01-21T14:00")


# --- catch-up after downtime ---------------------------------------------------------------

def test_three_day_downtime_sends_only_the_latest_missed_alert_if_fresh():
    down, back = utc("2026-01-12T12:00"), utc("2026-01-15T15:30")  # back at 10:30 in New York
    missed = due_between(down, back, NY, "09:00", "daily")
    assert missed == [utc(f"2026-01-{d}T14:00") for d in (12, 13, 14, 15)]
    plan = catch_up(down, back, NY, "09:00", "daily")
    assert plan.send_ms == utc("2026-01-15T14:00")
    assert [(s.due_ms, s.reason) for s in plan.skipped] == [
        (utc(f"2026-01-{d}T14:00"), "too_late") for d in (12, 13, 14)]
    assert plan.skipped[0].late_ms == back - utc("2026-01-12T14:00")


def test_catch_up_skips_everything_when_even_the_latest_is_stale():
    down, back = utc("2026-01-12T12:00"), utc("2026-01-15T21:00")  # 16:00 in New York: 7 h late
    plan = catch_up(down, back, NY, "09:00", "daily")
    assert plan.send_ms is None
    assert [s.reason for s in plan.skipped] == ["too_late"] * 4
    assert plan.skipped[-1].late_ms == 7 * HOUR > MAX_LATE_MS


def test_catch_up_with_a_long_grace_still_sends_one_and_supersedes_the_rest():
    down, back = utc("2026-01-12T12:00"), utc("2026-01-15T15:30")
    plan = catch_up(down, back, NY, "09:00", "daily", max_late_ms=7 * 24 * HOUR)
    assert plan.send_ms == utc("2026-01-15T14:00")
    assert [s.reason for s in plan.skipped] == ["superseded"] * 3


def test_catch_up_with_nothing_missed():
    plan = catch_up(utc("2026-01-15T14:30"), utc("2026-01-15T20:00"), NY, "09:00", "daily")
    assert plan.send_ms is None and plan.skipped == ()


# --- quiet hours and welcome ---------------------------------------------------------------

@pytest.mark.parametrize("at, quiet", [
    ("2026-01-15T02:00", True),   # 21:00 NY: the window starts
    ("2026-01-15T01:59", False),  # 20:59
    ("2026-01-15T04:00", True),   # 23:00
    ("2026-01-15T08:00", True),   # 03:00, after midnight
    ("2026-01-15T12:59", True),   # 07:59
    ("2026-01-15T13:00", False),  # 08:00: the window ends
])
def test_quiet_hours_wrap_midnight(at, quiet):
    assert in_quiet_hours(utc(at), NY, "21:00-08:00") is quiet


def test_quiet_hours_within_a_day_and_unset():
    assert in_quiet_hours(utc("2026-01-15T18:30"), NY, "13:00-14:00")
    assert not in_quiet_hours(utc("2026-01-15T19:00"), NY, "13:00-14:00")
    assert not in_quiet_hours(utc("2026-01-15T04:00"), NY, None)


@pytest.mark.parametrize("at, out", [
    ("2026-01-15T04:00", "2026-01-15T13:00"),  # 23:00 NY -> 08:00 next morning
    ("2026-01-15T08:00", "2026-01-15T13:00"),  # 03:00 NY -> 08:00 the same morning
    ("2026-01-15T17:00", "2026-01-15T17:00"),  # noon: not quiet, unchanged
    ("2026-03-08T04:00", "2026-03-08T12:00"),  # 23:00 EST Saturday -> 08:00 EDT Sunday (spring forward)
])
def test_after_quiet_hours_is_the_end_of_the_window(at, out):
    assert after_quiet_hours(utc(at), NY, "21:00-08:00") == utc(out)


def test_welcome_is_immediate_except_sms_in_quiet_hours():
    night, noon = utc("2026-01-15T04:00"), utc("2026-01-15T17:00")  # 23:00 and 12:00 in New York
    assert welcome_at(night, "email", NY) == night
    assert welcome_at(noon, "sms", NY) == noon
    assert welcome_at(night, "sms", NY) == utc("2026-01-15T13:00")  # default 21:00-08:00
    assert welcome_at(night, "sms", NY, "22:00-09:30") == utc("2026-01-15T14:30")
    assert welcome_at(night, "sms", LA) == night  # 20:00 in Los Angeles: not quiet yet
    assert welcome_at(night, "sms", None) == utc("2026-01-15T13:00")  # no zone: New York


# --- ids and time zones --------------------------------------------------------------------

def test_send_id_is_stable_and_distinct_per_list_and_day():
    one = send_id("acme", "lead1", "daily", "2026-01-15")
    assert one == send_id("acme", "lead1", "daily", "2026-01-15")
    assert len(one) == 24 and int(one, 16) >= 0
    others = {send_id("acme", "lead1", "other", "2026-01-15"), send_id("acme", "lead1", "daily", "2026-01-16"),
              send_id("acme", "lead2", "daily", "2026-01-15"), send_id("beta", "lead1", "daily", "2026-01-15")}
    assert one not in others and len(others) == 4


def test_unknown_or_missing_timezone_falls_back_and_says_so():
    assert resolve_timezone(NY) == (resolve_timezone(NY)[0], False)
    zone, used_default = resolve_timezone("Mars/Olympus_Mons", LONDON)
    assert (zone.key, used_default) == (LONDON, True)
    assert resolve_timezone(None)[0].key == NY and resolve_timezone(None)[1]
    assert resolve_timezone("America")[1]  # a directory, not a zone
    assert next_due(utc("2026-01-15T00:00"), "Mars/Olympus_Mons", "09:00", "daily",
                    default_tz=LONDON) == utc("2026-01-15T09:00")
    with pytest.raises(ValueError, match="default timezone"):
        resolve_timezone(None, "Nowhere/Atall")


# --- planning a day ------------------------------------------------------------------------

def test_plan_day_matches_next_due_for_every_lead():
    lists = {"acme": {"daily": ListConfig(channel="email"),
                      "texts": ListConfig(channel="sms", send_time="10:00", cadence="weekdays")},
             "beta": {"daily": ListConfig(channel="email", send_time="07:30", timezone=LONDON)}}
    leads = [("l1", "acme", "daily", NY), ("l2", "acme", "daily", LA), ("l3", "acme", "texts", NY),
             ("l4", "beta", "daily", None), ("l5", "beta", "daily", "Bogus/Zone"),
             ("l6", "acme", "gone", NY), ("l7", "nobody", "daily", NY)]
    start = utc("2026-01-16T00:00")  # Friday
    plan = plan_day(leads, start, start + 24 * HOUR, lists)
    assert plan == [
        ("l1", "daily", utc("2026-01-16T14:00"), send_id("acme", "l1", "daily", "2026-01-16")),
        ("l2", "daily", utc("2026-01-16T17:00"), send_id("acme", "l2", "daily", "2026-01-16")),
        ("l3", "texts", utc("2026-01-16T15:00"), send_id("acme", "l3", "texts", "2026-01-16")),
        ("l4", "daily", utc("2026-01-16T07:30"), send_id("beta", "l4", "daily", "2026-01-16")),
        ("l5", "daily", utc("2026-01-16T07:30"), send_id("beta", "l5", "daily", "2026-01-16")),
    ]
    saturday = plan_day(leads, start + 24 * HOUR, start + 48 * HOUR, lists)
    assert "l3" not in {lead for lead, *_ in saturday}  # weekdays only


def test_plan_day_anchors_bare_weekly_per_lead():
    lists = {"acme": {"weekly": ListConfig(channel="email", cadence="weekly")}}
    leads = [("new", "acme", "weekly", NY), ("wed", "acme", "weekly", NY), ("fri", "acme", "weekly", NY)]
    start = utc("2026-01-16T00:00")  # Friday
    plan = plan_day(leads, start, start + 24 * HOUR, lists, {("wed", "weekly"): 2, ("fri", "weekly"): 4})
    assert [lead for lead, *_ in plan] == ["new", "fri"]


# --- list configuration --------------------------------------------------------------------

@pytest.mark.parametrize("fields, words", [
    ({"send_time": "9am"}, "is not a time of day"), ({"send_time": "24:00"}, "is not a time of day"),
    ({"cadence": "hourly"}, "cadence 'hourly' is not understood"),
    ({"quiet_hours": "late"}, "quiet hours"), ({"quiet_hours": "08:00-08:00"}, "same time"),
    ({"timezone": "Mars/Base"}, "not an IANA zone"),
    ({"channel": "sms", "send_time": "22:00"}, "inside the quiet hours 21:00-08:00"),
    ({"channel": "sms", "send_time": "12:00", "quiet_hours": "11:00-13:00"}, "inside the quiet hours"),
])
def test_list_config_says_what_is_wrong(fields, words):
    with pytest.raises(ValidationError, match=words):
        ListConfig.model_validate({"channel": "email", **fields})


def test_list_config_defaults():
    sms, email = ListConfig(channel="sms"), ListConfig(channel="email", send_time="22:00")
    assert sms.effective_quiet_hours == "21:00-08:00" and sms.timezone == NY
    assert email.effective_quiet_hours is None
    assert ListConfig(channel="sms", send_time="22:00", quiet_hours="23:00-07:00").send_time == "22:00"
