"""Conversion attribution: the last person's click within the window, or none."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain.conversions import ConversionPolicy, click_mark, converted, revenue_cents, revised_away

H = 3_600_000
CLICK = {"event_id": "01KB0Z8YA1Q3ZK5J7M2N4P6RA2", "send_id": "s1", "list": "daily", "channel": "email",
         "template": "v1", "creative": "c1", "job_key": "acme:feed:J1", "partner": "feed", "slot": "job",
         "is_bot": False, "revision": 0}
GOAL = {"event_id": "01KB0Z8YA1Q3ZK5J7M2N4P6RB0", "tenant": "acme", "lead_id": "L1", "name": "hired"}


def test_only_a_person_s_click_on_a_message_is_remembered():
    assert click_mark(CLICK, 10).send_id == "s1"
    assert click_mark({**CLICK, "is_bot": True}, 10) is None
    assert click_mark({**CLICK, "slot": "honeypot"}, 10) is None
    assert click_mark({**CLICK, "send_id": ""}, 10) is None
    assert revised_away({**CLICK, "is_bot": True, "revision": 1}) and not revised_away(CLICK)


def test_a_goal_within_the_window_is_attributed_to_the_click_with_its_experiment():
    policy = ConversionPolicy(window="2d")
    mark = click_mark(CLICK, 10 * H)
    name, ev = converted(GOAL, {"revenue": "12.5"}, 30 * H, policy, mark,
                         {"send_id": "s1", "experiment": "e", "variant": "e/b"})
    assert name == "engagement.converted" and ev["attributed"] and ev["reason"] == "attributed"
    assert (ev["send_id"], ev["list"], ev["creative"], ev["experiment"], ev["variant"], ev["revenue_cents"]) == \
        ("s1", "daily", "c1", "e", "e/b", 1250)
    again = converted(GOAL, {"revenue": "12.5"}, 30 * H, policy, mark, None)[1]
    assert again["event_id"] == ev["event_id"]  # a redelivered goal decides the same event


def test_a_goal_after_the_window_or_without_a_click_is_recorded_unattributed():
    policy = ConversionPolicy(window="1d")
    late = converted(GOAL, {}, 10 * H + 25 * H, policy, click_mark(CLICK, 10 * H), {"experiment": "e"})[1]
    none = converted(GOAL, {}, 10 * H, policy, None, None)[1]
    for ev in (late, none):
        assert ev["attributed"] is False and ev["send_id"] == "" and ev["experiment"] == ""
    before = converted(GOAL, {}, 5 * H, policy, click_mark(CLICK, 10 * H), None)[1]
    assert before["attributed"] is False  # a click after the goal did not lead to it


def test_revenue_is_read_carefully_and_policies_are_checked():
    assert revenue_cents({"revenue": 12.345}, "revenue") == 1234
    assert revenue_cents({"revenue": "abc"}, "revenue") == 0
    assert revenue_cents({"revenue": -5}, "revenue") == 0
    assert revenue_cents({"revenue": True}, "revenue") == 0
    assert revenue_cents({"revenue": 10**9}, "revenue") == 0
    with pytest.raises(ValidationError):
        ConversionPolicy(goals=["Not An Event!"])
    with pytest.raises(ValidationError):
        ConversionPolicy(window="120d")
