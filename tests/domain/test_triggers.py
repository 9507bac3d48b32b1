"""Triggers and segments, pure: the configuration's checks and every decision."""
from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from domain.triggers import (Condition, Facts, SegmentConfig, TriggerConfig, TriggerPolicy, bound_segment_query,
                             cap_reason, condition_holds, cooldown_holds, duration_ms, fire_at, is_stale,
                             next_local_time, quiet_until, same_holds, trigger_send_id, triggers_on, unmet, week_days)

H = 3_600_000
NOW = int(datetime(2026, 12, 4, 15, 0, tzinfo=timezone.utc).timestamp() * 1000)  # 10:00 in New York


def trigger(**over) -> TriggerConfig:
    doc = {"when": {"event": "application_started"}, "action": {"template": "reminder"}} | over
    return TriggerConfig.model_validate(doc)


def cond(doc: dict) -> Condition:
    return Condition.model_validate(doc)


def test_durations():
    assert [duration_ms(x) for x in ("500ms", "90s", "30m", "2h", "7d", "1w")] == \
        [500, 90_000, 1_800_000, 7_200_000, 604_800_000, 604_800_000]
    for bad in ("2 hours", "h", "-1h", "1.5h", ""):
        with pytest.raises(ValueError, match="not a duration"):
            duration_ms(bad)


@pytest.mark.parametrize("doc,problem", [
    ({"when": {"event": "Job Viewed"}}, "not an event name"),
    ({"cooldown": "forever"}, "not a duration"),
    ({"conditions": [{"count": {"event": "job_viewed", "within": "1h"}, "score": {"at_least": 1}}]}, "exactly one"),
    ({"conditions": [{}]}, "exactly one"),
    ({"conditions": [{"score": {}}]}, "at_least or at_most"),
    ({"conditions": [{"segment": {"in": "a", "not_in": "b"}}]}, "either in"),
    ({"conditions": [{"attribute": {"field": "city"}}]}, "exactly one of equals"),
    ({"conditions": [{"count": {"event": "a", "within": "400d"}}]}, "longer than 90 days"),
    ({"conditions": [{"absent": {"event": "a", "within": "1h"}}, {"absent": {"event": "b", "within": "1h"}}]},
     "at most one absent"),
    ({"action": {"template": "x", "at_local_time": "25:00"}}, "HH:MM"),
    ({"action": {"template": "x", "channel": "fax"}}, "email"),
    ({"surprise": True}, "Extra inputs"),
])
def test_a_bad_trigger_is_refused_with_the_reason(doc, problem):
    with pytest.raises(ValidationError) as exc:
        trigger(**doc)
    assert problem.lower() in str(exc.value).lower()


def test_the_yaml_word_on_is_not_the_field():
    """YAML 1.1 reads a bare `on:` as true: the field is `when`, and a True key is refused."""
    with pytest.raises(ValidationError):
        TriggerConfig.model_validate({True: {"event": "a"}, "action": {"template": "x"}})


def test_segments_have_rules_or_a_single_select():
    assert SegmentConfig.model_validate({"rules": [{"score": {"at_least": 3}}]}).rules
    assert SegmentConfig.model_validate({"query": "SELECT lead_id FROM events WHERE tenant = {tenant}"}).query
    for doc, problem in [({}, "either rules"), ({"rules": [{"score": {"at_least": 1}}], "query": "select 1"}, "either"),
                         ({"query": "SELECT 1; DROP TABLE events"}, "single SELECT"),
                         ({"query": "ALTER TABLE events DELETE WHERE 1 {tenant}"}, "SELECT"),
                         ({"query": "SELECT lead_id FROM events"}, "{tenant}"),
                         ({"rules": [{"absent": {"event": "a", "within": "1h"}}]}, "not absent")]:
        with pytest.raises(ValidationError) as exc:
            SegmentConfig.model_validate(doc)
        assert problem in str(exc.value), (doc, str(exc.value))
    assert bound_segment_query("SELECT x WHERE t = {tenant}", "hire-flow") == "SELECT x WHERE t = 'hire-flow'"
    with pytest.raises(ValueError):
        bound_segment_query("SELECT {tenant}", "x' OR 1=1 --")


def test_which_triggers_an_event_starts():
    ts = {"a": trigger(when={"event": "job_viewed", "where": {"category": ["nursing", "care"]}}),
          "b": trigger(when={"event": "job_viewed"}),
          "c": trigger(when={"event": "job_viewed"}, enabled=False),
          "d": trigger(when={"event": "application_started"})}
    assert triggers_on(ts, "job_viewed", {"category": "Nursing"}) == ["a", "b"]
    assert triggers_on(ts, "job_viewed", {"category": "retail"}) == ["b"]
    assert triggers_on(ts, "job_viewed", {}) == ["b"]
    assert triggers_on(ts, "nothing", {}) == []


def test_count_in_a_window_with_filters():
    views = [(NOW - 25 * H, {"category": "nursing"}), (NOW - 3 * H, {"category": "nursing"}),
             (NOW - 2 * H, {"category": "retail"}), (NOW - H, {"category": "nursing"}), (NOW, {"category": "nursing"})]
    f = Facts(NOW, {"job_viewed": views})
    c = cond({"count": {"event": "job_viewed", "where": {"category": "nursing"}, "at_least": 3, "within": "24h"}})
    assert condition_holds(c, f)  # three in the last 24 h; the one 25 h ago no longer counts
    assert not condition_holds(c, Facts(NOW, {"job_viewed": views[:3]}))
    assert not condition_holds(c, Facts(NOW - 4 * H, {"job_viewed": views}))  # the future is not counted


def test_score_segment_attribute_and_history():
    f = Facts(NOW, score=7, segments=frozenset({"nurses"}),
              attributes={"country": "US", "keywords": ["icu", "nurse"], "age_days": "12"},
              fired={"welcome-back": NOW - 3 * 86_400_000})
    assert condition_holds(cond({"score": {"at_least": 5}}), f)
    assert not condition_holds(cond({"score": {"at_least": 5, "at_most": 6}}), f)
    assert condition_holds(cond({"segment": {"in": "nurses"}}), f)
    assert not condition_holds(cond({"segment": {"not_in": "nurses"}}), f)
    assert condition_holds(cond({"attribute": {"field": "country", "equals": "us"}}), f)
    assert condition_holds(cond({"attribute": {"field": "keywords", "equals": "ICU"}}), f)
    assert condition_holds(cond({"attribute": {"field": "keywords", "in": ["x", "nurse"]}}), f)
    assert condition_holds(cond({"attribute": {"field": "age_days", "at_least": 10}}), f)
    assert not condition_holds(cond({"attribute": {"field": "city", "present": True}}), f)
    assert condition_holds(cond({"attribute": {"field": "city", "present": False}}), f)
    assert not condition_holds(cond({"history": {"trigger": "welcome-back", "within": "7d"}}), f)
    assert condition_holds(cond({"history": {"trigger": "welcome-back", "within": "7d", "sent": True}}), f)
    assert condition_holds(cond({"history": {"trigger": "welcome-back", "within": "2d"}}), f)
    assert unmet([cond({"score": {"at_least": 1}}), cond({"segment": {"in": "x"}})], f) == "segment"
    assert unmet([cond({"absent": {"event": "x", "within": "1h"}})], f) is None  # decided at its deadline


def test_when_the_action_goes():
    t = trigger(conditions=[{"absent": {"event": "application_completed", "within": "2h"}}])
    assert fire_at(t, NOW, "America/New_York") == NOW + 2 * H
    t = trigger(action={"template": "x", "delay": "30m"})
    assert fire_at(t, NOW, None) == NOW + 30 * 60_000
    t = trigger(action={"template": "x", "at_local_time": "09:00"})
    at = fire_at(t, NOW, "America/New_York")  # 10:00 there: tomorrow 09:00 local
    assert datetime.fromtimestamp(at / 1000, tz=timezone.utc) == datetime(2026, 12, 5, 14, 0, tzinfo=timezone.utc)
    assert fire_at(trigger(), NOW, None) == NOW


def test_next_local_time_across_a_dst_change():
    before = int(datetime(2026, 3, 7, 15, 0, tzinfo=timezone.utc).timestamp() * 1000)  # Sat 10:00 EST
    at = next_local_time(before, "09:00", "America/New_York")  # Sunday 09:00 is EDT (UTC-4)
    assert datetime.fromtimestamp(at / 1000, tz=timezone.utc) == datetime(2026, 3, 8, 13, 0, tzinfo=timezone.utc)


def test_quiet_hours_in_the_leads_zone():
    night = int(datetime(2026, 12, 4, 4, 0, tzinfo=timezone.utc).timestamp() * 1000)  # 23:00 in New York
    until = quiet_until(night, "America/New_York", "21:00-08:00")
    assert datetime.fromtimestamp(until / 1000, tz=timezone.utc) == datetime(2026, 12, 4, 13, 0, tzinfo=timezone.utc)
    assert quiet_until(NOW, "America/New_York", "21:00-08:00") is None
    assert quiet_until(night, "America/New_York", None) is None


def test_guards_and_ids():
    assert cooldown_holds(NOW - H, NOW, "24h") and not cooldown_holds(NOW - 25 * H, NOW, "24h")
    assert not cooldown_holds(None, NOW, "24h")
    policy = TriggerPolicy(per_day=2, per_week=3)
    assert cap_reason(2, 2, policy) == "capped_day" and cap_reason(1, 3, policy) == "capped_week"
    assert cap_reason(1, 2, policy) is None
    assert len(week_days(NOW, "Asia/Tokyo")) == 7 and week_days(NOW, "Asia/Tokyo")[0] == "2026-12-05"
    a = trigger_send_id("t", "trig", "L1", "E1")
    assert a == trigger_send_id("t", "trig", "L1", "E1") and len(a) == 24
    assert len({a, trigger_send_id("t", "trig", "L1", "E2"), trigger_send_id("t", "other", "L1", "E1")}) == 3
    assert is_stale(NOW - 2 * H, NOW) and not is_stale(NOW - 60_000, NOW)
    assert same_holds(["job_id"], {"job_id": "J1"}, {"job_id": "J1", "x": 1})
    assert not same_holds(["job_id"], {"job_id": "J1"}, {"job_id": "J2"})
    assert not same_holds(["job_id"], {"job_id": "J1"}, {})
    assert same_holds([], {}, {"anything": 1})


def test_the_properties_a_brand_keeps_clear_are_names_sorted_once():
    from pydantic import ValidationError as Invalid
    from domain.triggers import TriggerPolicy
    assert TriggerPolicy().clear_properties == []  # by default every property is sealed
    assert TriggerPolicy(clear_properties=["job_id", "category", "job_id"]).clear_properties == ["category", "job_id"]
    for bad in (["has space"], ["9lives"], [""], ["x" * 65]):
        with pytest.raises(Invalid, match="not a property name"):
            TriggerPolicy(clear_properties=bad)
