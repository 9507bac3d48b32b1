"""The intake decision: accept, reject with reasons, dedupe, never re-subscribe."""
from domain.identity import LeadIds
from domain.intake import LeadState, check_submission, decide, decide_resubscribe, decide_unsubscribe, evolve
from domain.lead_input import LeadIn
from domain.submission import SubmissionError, build_submitted

import pytest

NOW = 1_764_064_800_000
IDS = LeadIds("a-test-lead-id-secret")


def submitted(tenant, n=1, list_="daily", partner="feed", strict=True, **lead):
    body = {"email": "Ann@Example.com", "partner": partner, "list": list_, **lead}
    return build_submitted(LeadIn.model_validate(body), tenant, f"01EVENT{n:019d}", NOW, "test",
                           strict=strict, ids=IDS)


def run(tenant, sub, state=None, suppressed=None):
    """decide + evolve, as the agent does; returns (events, new state)."""
    events = decide(sub, check_submission(sub, tenant), suppressed, state, tenant, "test")
    for name, ev in events:
        state = evolve(state, name, ev)
    return events, state


def test_a_new_valid_lead_is_accepted(tenant):
    events, state = run(tenant, submitted(tenant, attribution={"utm_source": "fb"}))
    assert [n for n, _ in events] == ["lead.accepted"]
    ev = events[0][1]
    assert ev["address"] == "ann@example.com" and ev["causation_id"] == "01EVENT" + "0" * 18 + "1"
    assert state.status == "accepted" and state.lists == ["daily"]
    assert state.attribution == {"utm_source": "fb"}


def test_an_invalid_lead_is_rejected_with_every_reason(tenant):
    sub = submitted(tenant, email="x@mailinator.com", location={"country": "FR"})
    events, state = run(tenant, sub)
    assert events[0][0] == "lead.rejected"
    assert events[0][1]["reasons"] == ["disposable_email", "country_not_allowed"]
    assert state.status == "rejected"


@pytest.mark.parametrize("suppressed", ["blocklisted", "opted_out"])
def test_suppressed_new_leads_are_rejected(tenant, suppressed):
    events, _ = run(tenant, submitted(tenant), suppressed=suppressed)
    assert events[0][0] == "lead.rejected" and events[0][1]["reasons"] == [suppressed]


def test_resubmission_to_another_list_merges(tenant):
    _, state = run(tenant, submitted(tenant, 1))
    events, state = run(tenant, submitted(tenant, 2, list_="other", attribution={"utm": "x"}), state)
    assert events[0][0] == "lead.resubmitted" and events[0][1]["outcome"] == "merged"
    assert state.lists == ["daily", "other"] and state.submissions == 2
    assert state.attribution == {"utm": "x"}


def test_resubmission_to_the_same_list_is_recorded_but_changes_nothing(tenant):
    _, state = run(tenant, submitted(tenant, 1))
    events, state = run(tenant, submitted(tenant, 2, email=" ANN@example.com"), state)
    assert events[0][1]["outcome"] == "already_on_list" and state.lists == ["daily"]


def test_ignore_policy_records_without_merging(tenant):
    t = tenant.model_copy(update={"dedupe": tenant.dedupe.model_copy(update={"resubmission": "ignore"})})
    _, state = run(t, submitted(t, 1))
    events, state = run(t, submitted(t, 2, list_="other"), state)
    assert events[0][1]["outcome"] == "ignored" and state.lists == ["daily"]


def test_an_unsubscribed_person_is_never_resubscribed(tenant):
    _, state = run(tenant, submitted(tenant, 1))
    req = {"event_id": "01REQ", "tenant": "acme", "occurred_at": NOW, "lead_id": state.lead_id,
           "reason": "tenant_request"}
    [(name, ev)] = decide_unsubscribe(req, state, "test")
    state = evolve(state, name, ev)
    assert name == "lead.unsubscribed" and state.status == "unsubscribed"
    events, state = run(tenant, submitted(tenant, 2, list_="other"), state)
    assert events[0][1]["outcome"] == "kept_unsubscribed"
    assert state.status == "unsubscribed" and state.lists == ["daily"]
    assert decide_unsubscribe(req, state, "test") == []


def test_known_lead_in_the_tenant_opt_outs_is_not_merged(tenant):
    _, state = run(tenant, submitted(tenant, 1))
    events, state = run(tenant, submitted(tenant, 2, list_="other"), state, suppressed="opted_out")
    assert events[0][1]["outcome"] == "kept_unsubscribed" and state.lists == ["daily"]


def test_a_cold_lead_is_not_accepted_as_new(tenant):
    _, state = run(tenant, submitted(tenant, 1))
    state.status = "cold"
    events, state = run(tenant, submitted(tenant, 2), state)
    assert events[0][1]["outcome"] == "kept_cold" and state.status == "cold"


def test_a_rejected_lead_can_be_accepted_when_fixed(tenant):
    _, state = run(tenant, submitted(tenant, 1, list_="texts", phone="(415) 555-2671"))
    assert state.status == "rejected" and state.reasons == ["missing_sms_consent"]
    fixed = submitted(tenant, 2, list_="texts", phone="(415) 555-2671",
                      consent={"at": "2026-11-20T10:00:00Z", "ip": "203.0.113.9"})
    events, state = run(tenant, fixed, state)
    assert events[0][0] == "lead.accepted" and state.status == "accepted"
    assert state.timezone == "America/Los_Angeles" and state.submissions == 2


def test_a_redelivered_event_is_decided_once_with_the_same_ids(tenant):
    sub = submitted(tenant, 1)
    first, state = run(tenant, sub)
    again, state2 = run(tenant, sub, state)
    assert again == [] and state2.submissions == 1
    replayed, _ = run(tenant, sub)  # from scratch: the same event id again
    assert replayed[0][1]["event_id"] == first[0][1]["event_id"]


def test_replaying_the_events_rebuilds_the_same_state(tenant):
    state, log = None, []
    for n, extra in enumerate([{}, {"list_": "other"}, {"email": "x@mailinator.com"}]):
        events, state = run(tenant, submitted(tenant, n, **extra), state)
        log += events
    rebuilt = None
    for name, ev in log:
        rebuilt = evolve(rebuilt, name, ev)
    assert rebuilt == state


def test_queue_path_routes_unknown_lists_to_a_rejection(tenant):
    sub = submitted(tenant, list_="nope", strict=False)
    events, _ = run(tenant, sub)
    assert events[0][1]["reasons"] == ["unknown_list"]


def test_api_path_refuses_an_unknown_list_or_a_missing_contact(tenant):
    with pytest.raises(SubmissionError, match="unknown list 'nope'"):
        submitted(tenant, list_="nope")
    with pytest.raises(SubmissionError, match="SMS list"):
        submitted(tenant, list_="texts")


def test_state_survives_its_json_round_trip(tenant):
    _, state = run(tenant, submitted(tenant))
    assert LeadState.from_dict(state.to_dict()) == state


def test_a_duplicated_output_event_is_folded_once(tenant):
    _, state = run(tenant, submitted(tenant, 1))
    events, state = run(tenant, submitted(tenant, 2, list_="other"), state)
    again = evolve(state, *events[0])
    assert again.submissions == 2 and again.lists == ["daily", "other"]


def test_a_redelivered_submission_is_decided_into_identical_events(tenant):
    """After a crash between produce and save, the same submission is decided again from the
    same state: the copy must equal the first, or a replay would fold a different lead."""
    sub = submitted(tenant)
    first = decide(sub, check_submission(sub, tenant), None, None, tenant, "test")
    again = decide(dict(sub), check_submission(sub, tenant), None, None, tenant, "test")
    assert first == again and first[0][1]["occurred_at"] == NOW


def _unsubscribed(tenant, reason: str):
    _, state = run(tenant, submitted(tenant, 1))
    req = {"event_id": f"01UNSUB{reason}", "tenant": "acme", "occurred_at": NOW, "lead_id": state.lead_id,
           "reason": reason}
    [(name, ev)] = decide_unsubscribe(req, state, "test")
    return evolve(state, name, ev)


def _resubscribe(state, reason: str, event_id: str = "01RESUB"):
    return {"event_id": event_id, "tenant": "acme", "occurred_at": NOW + 1000, "lead_id": state.lead_id, "reason": reason}


def test_start_brings_back_a_lead_that_texted_stop_and_a_click_one_pruned_as_inactive(tenant):
    for left, asked in (("sms_stop", "sms_start"), ("inactive", "reactivated_by_click"), ("inactive", "sms_start")):
        state = _unsubscribed(tenant, left)
        [(name, ev)] = decide_resubscribe(_resubscribe(state, asked), state, "test")
        assert name == "lead.resubscribed" and ev["reason"] == asked
        state = evolve(state, name, ev)
        assert state.status == "accepted" and state.reasons == [] and state.lists == ["daily"]
        assert decide_resubscribe(_resubscribe(state, asked), state, "test") == []  # already back


def test_nothing_brings_back_a_complaint_a_bounce_or_the_tenants_own_unsubscribe(tenant):
    for left in ("complaint", "hard_bounce", "tenant_request", "link"):
        state = _unsubscribed(tenant, left)
        for asked in ("sms_start", "reactivated_by_click"):
            assert decide_resubscribe(_resubscribe(state, asked), state, "test") == []
    state = _unsubscribed(tenant, "sms_stop")
    assert decide_resubscribe(_resubscribe(state, "reactivated_by_click"), state, "test") == []  # a click is not consent


def test_only_the_crm_sync_renames_a_known_person(tenant):
    _, state = run(tenant, submitted(tenant, 1, first_name="Ann"))
    events, state = run(tenant, submitted(tenant, 2, first_name="Mallory"), state)  # a partner again
    assert events[0][1]["first_name"] is None and state.first_name == "Ann"
    crm = {**submitted(tenant, 3, first_name="Anne"), "source": "crm"}  # a CRM change that won the field
    events, state = run(tenant, crm, state)
    assert events[0][0] == "lead.resubmitted" and events[0][1]["first_name"] == "Anne"
    assert state.first_name == "Anne"
    same = {**submitted(tenant, 4, first_name="Anne"), "source": "crm"}
    events, state = run(tenant, same, state)
    assert events[0][1]["first_name"] is None  # no change, no rename
