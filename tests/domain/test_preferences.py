"""The preference page's decisions: the form checked strictly, a request decided into one
change (or nothing when it would change nothing), folded into the read model, honoured by
the planner (cadence, pause, a list left) and by the sender's screen ("paused", "left_list")."""
from datetime import datetime, timezone

import pytest

from domain.intake import LeadState, decide, evolve
from domain.planning import daily_request, schedule_for, split_member, unscheduled_members
from domain.preferences import (CADENCES, BadPreferenceForm, PreferenceForm, cadence_choices, decide_preferences,
                                parse_form, pause_end, preference_of)
from domain.sending import screen
from domain.validation import Checked
from schemas.codec import default_codec
from tests.domain.conftest import make_tenant

DAY = 86_400_000
CODEC = default_codec()
TENANT = make_tenant(lists={"daily": {"channel": "email", "send_time": "09:00"},
                            "other": {"channel": "email", "send_time": "08:00"},
                            "weekly": {"channel": "email", "send_time": "09:00", "cadence": "weekdays"}})


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp() * 1000)


NOW = ms("2026-11-26T15:00:00")  # Thursday, 10:00 in New York


def lead(lists=("daily", "other"), status="accepted") -> LeadState:
    return LeadState("acme", "L1", "email", "ann@example.com", status, lists=list(lists),
                     timezone="America/New_York", partners=["feed"])


def request(action: str, event_id: str = "01PREFREQ0000000000000000A", at: int = NOW, list_="daily",
            cadence: str = "", weeks: int = 0) -> dict:
    return {"event_id": event_id, "tenant": "acme", "occurred_at": at, "schema": "lead.preferences_requested@1",
            "causation_id": "S1", "source": "tracking", "lead_id": "L1", "list": list_, "action": action,
            "cadence": cadence, "pause_weeks": weeks, "send_id": "S1", "code": "abc12345",
            "requested_by": "tracking"}


def apply(state: LeadState, req: dict, list_cadence: str = "daily") -> tuple[LeadState, list]:
    """Decide a request against the state and fold what it decided (as the intake agent does)."""
    decided = decide_preferences(req, state, list_cadence, "agent:intake")
    for name, ev in decided:
        CODEC.encode(name, ev)  # every decided event fits its schema
        state = evolve(state, name, ev)
    return state, decided


# ---- the form -------------------------------------------------------------------------

def test_each_action_of_the_form_is_read_with_its_one_field():
    assert parse_form(b"action=cadence&cadence=weekdays", "daily") == PreferenceForm("cadence", cadence="weekdays")
    assert parse_form(b"action=pause&weeks=2") == PreferenceForm("pause", weeks=2)
    assert parse_form(b"action=leave_list") == PreferenceForm("leave_list")
    assert parse_form(b"action=leave_all") == PreferenceForm("leave_all")


@pytest.mark.parametrize("body,problem", [
    (b"", "action must be one of"),
    (b"action=delete_everything", "action must be one of"),
    (b"action=pause&weeks=3", "weeks must be one of 1, 2, 4"),
    (b"action=pause&weeks=", "weeks must be one of"),
    (b"action=pause", "weeks must be one of"),
    (b"action=cadence&cadence=hourly", "cadence must be one of"),
    (b"action=cadence&cadence=daily", "cadence must be one of weekdays, 3_per_week, 1_per_week"),  # list: weekdays
    (b"action=leave_list&weeks=2", "takes no field 'weeks'"),
    (b"action=pause&weeks=2&cadence=daily", "takes no field 'cadence'"),
    (b"action=pause&action=leave_all", "given twice"),
    (b"action=pause&weeks=2&x=1&y=2&z=3", "not URL-encoded"),
    (b"action=leave_all&&", "not URL-encoded"),
    ("action=leave_all&é=1".encode(), "not URL-encoded"),
    (b"action=leave_all&" + b"x" * 2000, "larger than"),
])
def test_a_bad_form_says_what_was_wrong(body, problem):
    with pytest.raises(BadPreferenceForm, match=problem):
        parse_form(body, "weekdays")


def test_a_person_is_offered_the_lists_own_cadence_and_only_rarer_ones():
    assert [v for v, _ in cadence_choices("daily")] == ["daily", "weekdays", "3_per_week", "1_per_week"]
    assert [v for v, _ in cadence_choices("weekdays")] == ["weekdays", "3_per_week", "1_per_week"]
    assert [v for v, _ in cadence_choices("mon,wed")] == ["mon,wed", "1_per_week"]
    assert cadence_choices("weekly") == [("weekly", "weekly (the usual)")]
    assert cadence_choices("daily")[0][1] == "Every day (the usual)"


# ---- decide and evolve ----------------------------------------------------------------

def test_a_new_cadence_is_decided_folded_and_the_same_request_again_changes_nothing():
    state, [(name, ev)] = apply(lead(), request("cadence", cadence="weekdays"))
    assert name == "lead.preferences_changed" and ev["change"] == "cadence" and ev["cadence"] == "weekdays"
    assert ev["causation_id"] == "01PREFREQ0000000000000000A" and ev["partner"] == "feed"
    assert preference_of(state, "daily").cadence == "weekdays" and preference_of(state, "other").cadence == ""
    # redelivered (same event id), and asked again (a new event id): nothing more
    assert apply(state, request("cadence", cadence="weekdays"))[1] == []
    assert apply(state, request("cadence", event_id="01PREFREQ0000000000000000B", cadence="weekdays"))[1] == []
    # back to the list's own: the override is cleared
    state, [(_, back)] = apply(state, request("cadence", event_id="01PREFREQ0000000000000000C", cadence="daily"))
    assert back["cadence"] == "" and preference_of(state, "daily").cadence == ""


def test_a_cadence_the_list_does_not_offer_decides_nothing():
    assert apply(lead(["weekly"]), request("cadence", list_="weekly", cadence="daily"), "weekdays")[1] == []


def test_a_pause_ends_at_the_end_of_the_utc_day_and_asking_twice_that_day_changes_nothing():
    state, [(_, ev)] = apply(lead(), request("pause", weeks=2))
    assert ev["change"] == "paused" and ev["paused_until_ms"] == ms("2026-12-11T00:00:00") == pause_end(NOW, 2)
    assert preference_of(state, "daily").paused_at(ms("2026-12-10T23:59:59"))
    assert not preference_of(state, "daily").paused_at(ms("2026-12-11T00:00:00"))
    later = request("pause", event_id="01PREFREQ0000000000000000B", at=NOW + 3 * 3600 * 1000, weeks=2)
    assert apply(state, later)[1] == []
    # a shorter pause asked for replaces it
    state, [(_, short)] = apply(state, request("pause", event_id="01PREFREQ0000000000000000C", weeks=1))
    assert short["paused_until_ms"] == ms("2026-12-04T00:00:00")


def test_leaving_a_list_takes_it_off_the_lead_and_the_other_list_stays():
    state, [(_, ev)] = apply(lead(), request("leave_list"))
    assert ev["change"] == "left_list" and ev["left"] is True
    assert state.lists == ["other"] and state.status == "accepted" and preference_of(state, "daily").left
    assert apply(state, request("leave_list", event_id="01PREFREQ0000000000000000B"))[1] == []
    assert apply(state, request("pause", event_id="01PREFREQ0000000000000000C", weeks=1))[1] == []


def test_a_partner_sending_the_person_again_does_not_put_them_back_on_a_list_they_left():
    state, _ = apply(lead(), request("leave_list"))
    sub = {"event_id": "01SUBAGAIN000000000000000A", "tenant": "acme", "occurred_at": NOW + DAY, "lead_id": "L1",
           "channel": "email", "address": "ann@example.com", "partner": "feed", "list": "daily"}
    checked = Checked("ann@example.com", [], "example.com", None, None, "", None)
    [(name, ev)] = decide(sub, checked, None, state, TENANT, "agent:intake")
    assert name == "lead.resubmitted" and ev["outcome"] == "kept_unsubscribed"
    assert evolve(state, name, ev).lists == ["other"]


def test_leaving_everything_unsubscribes_the_lead_once():
    state, [(name, ev)] = apply(lead(), request("leave_all"))
    assert name == "lead.unsubscribed" and ev["reason"] == "link" and state.status == "unsubscribed"
    assert apply(state, request("leave_all", event_id="01PREFREQ0000000000000000B"))[1] == []


def test_nothing_is_decided_for_an_unknown_lead_a_list_it_is_not_on_or_a_list_gone():
    assert decide_preferences(request("pause", weeks=1), None, "daily", "t") == []
    assert apply(lead(["other"]), request("pause", weeks=1))[1] == []
    assert decide_preferences(request("pause", weeks=1), lead(), None, "t") == []
    assert apply(lead(status="unsubscribed"), request("leave_list"))[1] == []


def test_replaying_the_decided_events_folds_the_same_state():
    state, events = lead(), []
    for i, req in enumerate([request("cadence", cadence="3_per_week"), request("pause", weeks=4),
                             request("leave_list", list_="other")]):
        req["event_id"] = f"01PREFREQ000000000000000{i}Z"
        state, decided = apply(state, req)
        events += decided
    replayed = lead()
    for name, ev in events + events:  # a topic may hold copies after a crash: folded once
        replayed = evolve(replayed, name, ev)
    assert replayed.to_dict() == state.to_dict()
    assert state.preferences == {"daily": {"cadence": "3_per_week", "paused_until_ms": pause_end(NOW, 4),
                                           "left": False},
                                 "other": {"cadence": "", "paused_until_ms": 0, "left": True}}


# ---- the planner ----------------------------------------------------------------------

def test_the_planner_follows_the_leads_cadence_for_that_list_only():
    state, _ = apply(lead(), request("cadence", cadence="1_per_week"))
    due = dict((split_member(m)[1], at) for m, at in schedule_for(state, TENANT, NOW))
    assert due["daily"] == ms("2026-12-02T14:00:00")  # the next Wednesday, 09:00 in New York
    assert due["other"] == ms("2026-11-27T13:00:00")  # tomorrow 08:00: the other list as it was
    (name, ev), following = daily_request(state, TENANT, "daily", due["daily"], due["daily"])
    assert name == "send.requested" and following == ms("2026-12-09T14:00:00")


def test_nothing_is_scheduled_before_the_pause_ends_and_a_member_due_inside_it_moves_past_it():
    state, _ = apply(lead(), request("pause", weeks=2))
    due = dict((split_member(m)[1], at) for m, at in schedule_for(state, TENANT, NOW))
    assert due["daily"] == ms("2026-12-11T14:00:00")  # the first 09:00 after the pause
    assert due["other"] == ms("2026-11-27T13:00:00")
    inside = ms("2026-11-27T14:00:00")  # put in the schedule before the pause was asked for
    event, following = daily_request(state, TENANT, "daily", inside, inside)
    assert event is None and following == ms("2026-12-11T14:00:00")


def test_a_list_left_is_dropped_from_the_schedule_while_the_other_continues():
    state, _ = apply(lead(), request("leave_list"))
    scheduled = schedule_for(state, TENANT, NOW)
    assert [split_member(m)[1] for m, _ in scheduled] == ["other"]
    assert unscheduled_members(state, scheduled) == ["L1|daily"]
    assert daily_request(state, TENANT, "daily", NOW, NOW) == (None, None)


# ---- the sender's screen --------------------------------------------------------------

SEND = {"event_id": "01REQ", "tenant": "acme", "lead_id": "L1", "send_id": "S1", "channel": "email",
        "list": "daily", "kind": "daily", "due_at": NOW, "local_date": "2026-11-26", "attempt": 0,
        "not_before": None, "trigger": None}


def test_a_request_planned_before_a_pause_is_skipped_as_paused_until_it_ends():
    state, _ = apply(lead(), request("pause", weeks=1))
    assert screen(SEND, state, False, NOW + 1000).reason == "paused"
    assert screen({**SEND, "kind": "welcome"}, state, False, NOW + 1000).reason == "paused"
    assert screen({**SEND, "kind": "more_jobs"}, state, False, NOW + 1000).action == "go"  # asked for just now
    assert screen({**SEND, "list": "other"}, state, False, NOW + 1000).action == "go"
    assert screen(SEND, state, False, pause_end(NOW, 1)).action == "go"


def test_a_request_planned_before_leaving_the_list_is_skipped_as_left_list():
    state, _ = apply(lead(), request("leave_list"))
    assert screen(SEND, state, False, NOW + 1000).reason == "left_list"
    assert screen({**SEND, "list": "other"}, state, False, NOW + 1000).action == "go"
    gone, _ = apply(lead(), request("leave_all"))
    assert screen(SEND, gone, False, NOW + 1000).reason == "unsubscribed"


def test_the_choices_are_the_platforms_cadences():
    for value in CADENCES:
        assert schedule_for(apply(lead(), request("cadence", cadence=value))[0], TENANT, NOW)
