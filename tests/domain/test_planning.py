"""The planner's decisions: each lead's 09:00 at its own instant, one request per local day,
late catch-up skipped, unsubscribed leads dropped, the welcome on the priority path."""
from datetime import datetime, timezone

from domain.intake import LeadState
from domain.planning import daily_request, lead_timezone, schedule_for, split_member, welcome_request
from tests.domain.conftest import make_tenant


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp() * 1000)


def lead(lid, tz=None, zip_=None, lists=("daily",), channel="email", status="accepted") -> LeadState:
    return LeadState("acme", lid, channel, f"{lid}@example.com", status, lists=list(lists),
                     timezone=tz, profile={"zip": zip_})


TENANT = make_tenant(lists={"daily": {"channel": "email", "send_time": "09:00"},
                            "texts": {"channel": "sms", "send_time": "10:00", "cadence": "weekdays"}})


def test_new_york_and_los_angeles_get_their_nine_oclock_at_their_own_instants():
    now = ms("2026-11-26T06:00:00")  # winter: NY is UTC-5, LA is UTC-8
    [(m_ny, due_ny)] = schedule_for(lead("ny", tz="America/New_York"), TENANT, now)
    [(m_la, due_la)] = schedule_for(lead("la", zip_="90012"), TENANT, now)  # zone from the zip
    assert split_member(m_ny) == ("ny", "daily") and due_ny == ms("2026-11-26T14:00:00")
    assert due_la == ms("2026-11-26T17:00:00")
    summer = ms("2026-07-01T06:00:00")
    assert schedule_for(lead("ny", tz="America/New_York"), TENANT, summer)[0][1] == ms("2026-07-01T13:00:00")


def test_zone_comes_from_the_phone_then_the_zip_then_the_list_default():
    assert lead_timezone(lead("a", tz="America/Chicago", zip_="90012")) == "America/Chicago"
    assert lead_timezone(lead("b", zip_="10001")) == "America/New_York"
    assert lead_timezone(lead("c")) is None


def test_a_due_member_becomes_one_request_per_local_day_and_moves_on_to_the_next():
    state = lead("ny", tz="America/New_York")
    due = ms("2026-11-26T14:00:00")
    (name, ev), following = daily_request(state, TENANT, "daily", due, due + 1000)
    assert name == "send.requested" and ev["kind"] == "daily" and ev["local_date"] == "2026-11-26"
    assert following == ms("2026-11-27T14:00:00")
    again, _ = daily_request(state, TENANT, "daily", due, due + 60_000)
    assert again[1] == ev  # emitted twice after a crash: the same event, the same send id
    tomorrow, _ = daily_request(state, TENANT, "daily", following, following)
    assert tomorrow[1]["send_id"] != ev["send_id"]


def test_after_a_long_downtime_the_stale_alert_is_skipped_not_sent_at_night():
    state = lead("ny", tz="America/New_York")
    due = ms("2026-11-26T14:00:00")
    (name, ev), following = daily_request(state, TENANT, "daily", due, due + 7 * 3600 * 1000)
    assert name == "send.skipped" and ev["reason"] == "missed_window"
    assert following == ms("2026-11-27T14:00:00")


def test_weekday_cadence_in_the_leads_own_date():
    # Friday 2026-11-27 10:00 in LA is 18:00Z; the next weekday after is Monday the 30th
    state = lead("la", tz="America/Los_Angeles", lists=("texts",), channel="sms")
    [(_, due)] = schedule_for(state, TENANT, ms("2026-11-27T17:00:00"))
    assert due == ms("2026-11-27T18:00:00")
    _, following = daily_request(state, TENANT, "texts", due, due)
    assert following == ms("2026-11-30T18:00:00")


def test_unsubscribed_or_off_the_list_leads_are_dropped():
    assert schedule_for(lead("u", status="unsubscribed"), TENANT, 0) == []
    assert daily_request(lead("u", status="unsubscribed"), TENANT, "daily", 0, 0) == (None, None)
    assert daily_request(lead("x", lists=("texts",)), TENANT, "daily", 0, 0) == (None, None)
    assert daily_request(None, TENANT, "daily", 0, 0) == (None, None)


def test_welcome_goes_at_once_by_email_and_after_quiet_hours_by_sms():
    accepted = {"event_id": "01EV", "tenant": "acme", "lead_id": "w1", "channel": "email",
                "address": "w1@example.com", "list": "daily", "timezone": "America/New_York",
                "occurred_at": ms("2026-11-26T03:00:00")}  # 22:00 in New York
    now = accepted["occurred_at"]
    name, ev = welcome_request(accepted, TENANT, now)
    assert name == "send.requested" and ev["kind"] == "welcome" and ev["not_before"] is None
    assert ev["due_at"] == accepted["occurred_at"]
    sms = dict(accepted, channel="sms", address="+12125550100", list="texts")
    _, ev = welcome_request(sms, TENANT, now)
    assert ev["not_before"] == ms("2026-11-26T13:00:00")  # 08:00 in New York, the quiet window's end
    assert welcome_request(accepted, TENANT, now + 25 * 3600 * 1000) is None  # old news: no welcome
    quiet = make_tenant(lists={"daily": {"channel": "email", "welcome": False}})
    assert welcome_request(accepted, quiet, now) is None


def test_a_send_time_experiment_schedules_each_lead_at_its_arms_time_and_the_alert_is_in_that_arm():
    from domain.experiments import ExperimentConfig, arm_of_request
    e = ExperimentConfig.model_validate({"list": "daily", "holdout": 0.1, "variants": [
        {"name": "nine"}, {"name": "seven", "send_time": "07:00"}]})
    tenant = make_tenant(lists={"daily": {"channel": "email", "send_time": "09:00"}}, experiments={"st": e})
    now = ms("2026-11-26T06:00:00")
    hours = {}
    for i in range(60):
        state = lead(f"L{i}", tz="America/New_York")
        [(_, due)] = schedule_for(state, tenant, now)
        (name, ev), following = daily_request(state, tenant, "daily", due, due + 1000)
        arm = arm_of_request(tenant.experiments, ev).name
        hours.setdefault(arm, set()).add((datetime.fromtimestamp(due / 1000, timezone.utc).hour,
                                          datetime.fromtimestamp(following / 1000, timezone.utc).hour))
        assert ev["local_date"] == "2026-11-26"  # the same day's alert, whichever the hour
    # New York is UTC-5: 07:00 -> 12Z for the seven arm; the control and the holdout keep 09:00 -> 14Z
    assert hours == {"seven": {(12, 12)}, "nine": {(14, 14)}, "holdout": {(14, 14)}}
    stopped = make_tenant(lists={"daily": {"channel": "email", "send_time": "09:00"}},
                          experiments={"st": e.model_copy(update={"status": "stopped"})})
    assert {schedule_for(lead(f"L{i}", tz="America/New_York"), stopped, now)[0][1] for i in range(20)} == \
        {ms("2026-11-26T14:00:00")}  # a stopped experiment schedules nobody differently
