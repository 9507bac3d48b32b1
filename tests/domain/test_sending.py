"""The sender's decisions: checked again at send time, at most once per send id."""
from domain.intake import LeadState
from domain.sending import (LEASE_MS, after_mark, backoff_ms, over_cap, retried, screen, send_event,
                            topic_for)

NOW = 1_764_165_600_000
REQ = {"event_id": "01REQ", "tenant": "acme", "lead_id": "L1", "send_id": "S1", "channel": "email",
       "list": "daily", "kind": "daily", "due_at": NOW - 1000, "local_date": "2025-11-26", "attempt": 0,
       "not_before": None, "trigger": None}


def state(status="accepted", lists=("daily",)) -> LeadState:
    return LeadState("acme", "L1", "email", "a@example.com", status, lists=list(lists))


def test_a_subscribed_lead_goes():
    assert screen(REQ, state(), False, NOW).action == "go"


def test_suppression_is_checked_again_at_send_time():
    assert screen(REQ, state("unsubscribed"), False, NOW).reason == "unsubscribed"
    assert screen(REQ, state(lists=("other",)), False, NOW).reason == "not_on_list"
    assert screen(REQ, state(), True, NOW).reason == "suppressed"
    assert screen(REQ, None, False, NOW).reason == "unknown_lead"


def test_a_request_not_yet_due_is_deferred_to_its_instant():
    v = screen({**REQ, "not_before": NOW + 5000}, state(), False, NOW)
    assert (v.action, v.retry_at) == ("defer", NOW + 5000)


def test_marks_make_delivery_at_most_once():
    assert after_mark(None, NOW).action == "go"
    assert after_mark(b"sent|smtp|<id>", NOW).reason == "already_sent"
    assert after_mark(b"failed", NOW).reason == "already_failed"
    fresh = after_mark(f"inflight|w1|{NOW - 1000}".encode(), NOW)
    assert (fresh.action, fresh.retry_at) == ("defer", NOW - 1000 + LEASE_MS)
    stale = after_mark(f"inflight|w1|{NOW - LEASE_MS - 1}".encode(), NOW)
    assert (stale.action, stale.reason) == ("fail", "outcome_unknown")


def test_the_daily_cap_counts_daily_alerts_only():
    assert not over_cap(REQ, 1, {"email": 1})
    assert over_cap(REQ, 2, {"email": 1})
    assert not over_cap({**REQ, "kind": "welcome"}, 5, {"email": 1})


def test_retries_back_off_and_keep_the_send_id():
    assert backoff_ms(0, None) == 2000 and backoff_ms(3, None) == 16000
    assert backoff_ms(10, None) == 600_000 and backoff_ms(0, 7.5) == 7500
    again = retried(REQ, NOW + 2000)
    assert again["send_id"] == "S1" and again["attempt"] == 1 and again["event_id"] != REQ["event_id"]
    assert retried(REQ, NOW + 2000) == again


def test_events_are_deterministic_per_attempt_and_routed_by_kind():
    a = send_event("send.dispatched", REQ, NOW, provider="smtp")
    assert a == send_event("send.dispatched", REQ, NOW, provider="smtp")
    assert a[1]["attempt"] == 0 and a[1]["causation_id"] == "01REQ"
    assert "attempt" not in send_event("send.skipped", REQ, NOW, reason="x")[1]
    assert topic_for(REQ) == "bulk" and topic_for({**REQ, "kind": "welcome"}) == "priority"


def test_a_deferred_sms_that_now_falls_in_quiet_hours_waits_for_their_end():
    from datetime import datetime, timezone
    sms = {**REQ, "channel": "sms", "attempt": 1}  # deferred once already (a rate limit, a provider's trouble)
    lead = LeadState("acme", "L1", "sms", "+12125550100", "accepted", lists=["daily"], timezone="America/New_York")
    night = int(datetime(2026, 11, 26, 4, 30, tzinfo=timezone.utc).timestamp() * 1000)  # 23:30 in New York
    v = screen(sms, lead, False, night, "21:00-08:00")
    assert (v.action, v.reason) == ("defer", "quiet_hours")
    assert v.retry_at == int(datetime(2026, 11, 26, 13, 0, tzinfo=timezone.utc).timestamp() * 1000)  # 08:00 there
    assert screen(sms, lead, False, v.retry_at, "21:00-08:00").action == "go"
    assert screen(REQ, state(), False, night, "21:00-08:00").action == "go"  # email has no quiet hours
    on_time = {**sms, "attempt": 0, "due_at": night - 60_000}  # planned for this instant: checked when planned
    assert screen(on_time, lead, False, night, "21:00-08:00").action == "go"
    late = {**on_time, "due_at": night - 3_600_000}  # an hour late (the planner was down): checked again
    assert screen(late, lead, False, night, "21:00-08:00").reason == "quiet_hours"


def test_start_is_confirmed_only_once_the_lead_is_back():
    from domain.sending import screen_reply
    start = {**REQ, "channel": "sms", "list": "", "kind": "triggered", "trigger": "reply:start"}
    stopped = LeadState("acme", "L1", "sms", "+12125550100", "unsubscribed", reasons=["sms_stop"], lists=["daily"])
    assert (screen_reply(start, stopped, False, NOW).reason, screen_reply(start, stopped, False, NOW).retry_at) == \
        ("awaiting_resubscribe", NOW + 2000)  # the intake has not decided yet
    later = screen_reply({**start, "attempt": 3}, stopped, False, NOW + 60_000)  # a slow intake: still waited for
    assert (later.reason, later.retry_at) == ("awaiting_resubscribe", NOW + 60_000 + 16_000)
    assert screen_reply({**start, "attempt": 40}, stopped, False, NOW + 10 * 60_000).reason == "not_resubscribed"
    complained = LeadState("acme", "L1", "sms", "+12125550100", "unsubscribed", reasons=["complaint"])
    assert screen_reply(start, complained, False, NOW).reason == "not_resubscribed"
    assert screen_reply(start, LeadState("acme", "L1", "sms", "+1", "accepted"), False, NOW).action == "go"
    stop = {**start, "trigger": "reply:stop"}
    assert screen_reply(stop, stopped, False, NOW).action == "go"  # STOP is confirmed to the unsubscribed
    assert screen_reply(stop, stopped, True, NOW).reason == "suppressed"


def test_the_previous_alert_is_the_last_daily_or_more_jobs_message_on_that_list():
    from domain.sending import previous_alert_ms
    history = [{"list": "daily-jobs", "kind": "welcome", "at": 900},  # newest first; a welcome is no alert
               {"list": "sms-alerts", "kind": "daily", "at": 800},
               {"list": "daily-jobs", "kind": "daily", "at": 500},
               {"list": "daily-jobs", "kind": "daily", "at": 100}]
    assert previous_alert_ms(history, "daily-jobs") == 500
    assert previous_alert_ms(history, "sms-alerts") == 800
    assert previous_alert_ms(history, "warehouse") is None and previous_alert_ms([], "x") is None


def test_new_is_what_was_first_seen_since_the_previous_alert_or_this_week():
    from domain.jobs import FIRST_ALERT_WINDOW_MS, is_new, new_since
    assert new_since(5_000, 10_000_000_000) == 5_000
    assert new_since(None, 10_000_000_000) == 10_000_000_000 - FIRST_ALERT_WINDOW_MS
    assert is_new(5_001, 5_000) and not is_new(5_000, 5_000) and not is_new(0, -1)


def test_an_alert_without_new_jobs_is_skipped_with_its_reason():
    from domain.sending import empty_alert_reason
    assert empty_alert_reason("daily", "email", new_jobs=0, matching_jobs=4) == "no_new_jobs"
    assert empty_alert_reason("daily", "sms", new_jobs=0, matching_jobs=0) == "no_matching_jobs"
    assert empty_alert_reason("daily", "email", new_jobs=1, matching_jobs=3) is None
    assert empty_alert_reason("more_jobs", "sms", new_jobs=0, matching_jobs=2) is None  # asked for more: old is fine
    assert empty_alert_reason("more_jobs", "sms", new_jobs=0, matching_jobs=0) == "no_matching_jobs"
    assert empty_alert_reason("welcome", "sms", new_jobs=0, matching_jobs=0) is None
    assert empty_alert_reason("welcome", "email", new_jobs=0, matching_jobs=0) is None


def test_a_lists_sms_segments_is_1_or_2_and_defaults_to_1():
    from domain.config_entities import Ref, check_entity
    model, problems = check_entity(Ref("list", "acme", "texts"), {"channel": "sms"})
    assert model.sms_segments == 1 and not problems
    model, problems = check_entity(Ref("list", "acme", "texts"), {"channel": "sms", "sms_segments": 2})
    assert model.sms_segments == 2
    model, problems = check_entity(Ref("list", "acme", "texts"), {"channel": "sms", "sms_segments": 3})
    assert model is None and [p for p, _ in problems] == ["lists.texts.sms_segments"]
