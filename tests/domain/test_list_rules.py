"""Each kind of list rule, evaluated on its own and inside the intake decision."""
import pytest

from domain.intake import LeadState, check_submission, decide, evolve, source_cap_key
from domain.list_rules import (CARRIER_EXCLUDED, CARRIER_UNKNOWN, PARTNER_NOT_ON_LIST, SOURCE_CAP_REACHED,
                               CarrierRule, IntakeRule, ListRules, ReactivationRule, carrier_verdict,
                               over_source_cap, partner_verdict, reactivates_on_click, reactivates_on_resubmit,
                               resubmission_policy, source_cap)
from tests.domain.conftest import make_tenant

# --- carriers ------------------------------------------------------------------------------


@pytest.mark.parametrize("rule, carrier, verdict", [
    (CarrierRule(), "EE", None),                                    # no targeting: everyone
    (CarrierRule(), None, None),
    (CarrierRule(exclude=["EE"]), "EE", CARRIER_EXCLUDED),
    (CarrierRule(exclude=["ee"]), "EE", CARRIER_EXCLUDED),           # names compare without case
    (CarrierRule(exclude=["EE"]), "Vodafone", None),
    (CarrierRule(include=["O2", "Vodafone"]), "Vodafone", None),
    (CarrierRule(include=["O2", "Vodafone"]), "EE", CARRIER_EXCLUDED),
    (CarrierRule(include=["O2"], exclude=["O2"]), "O2", CARRIER_EXCLUDED),  # exclude wins
    (CarrierRule(include=["O2"]), None, None),                      # unknown carriers accepted by default
    (CarrierRule(include=["O2"], unknown="reject"), None, CARRIER_UNKNOWN),
    (CarrierRule(unknown="reject"), None, None),                    # no targeting: nothing to reject
])
def test_carrier_targeting(rule, carrier, verdict):
    assert carrier_verdict(rule, carrier) == verdict


def test_a_blank_carrier_name_is_refused():
    with pytest.raises(ValueError, match="blank"):
        CarrierRule(exclude=[" "])


# --- intake: partners and per-source caps --------------------------------------------------

def test_partners_feeding_a_list():
    assert partner_verdict(IntakeRule(), "anyone") is None
    assert partner_verdict(IntakeRule(partners=["feed"]), "feed") is None
    assert partner_verdict(IntakeRule(partners=["feed"]), "other") == PARTNER_NOT_ON_LIST


def test_source_caps_per_partner_and_for_everyone_else():
    rule = IntakeRule(source_caps={"feed": 2, "*": 1})
    assert source_cap(rule, "feed") == 2 and source_cap(rule, "other") == 1
    assert source_cap(IntakeRule(), "feed") is None
    assert not over_source_cap(rule, "feed", 1) and over_source_cap(rule, "feed", 2)
    assert over_source_cap(rule, "other", 1)
    assert not over_source_cap(IntakeRule(), "feed", 10_000)
    with pytest.raises(ValueError, match="0 or more"):
        IntakeRule(source_caps={"feed": -1})


# --- dedupe and reactivation ----------------------------------------------------------------

@pytest.mark.parametrize("mine, brand, out", [("inherit", "merge", "merge"), ("inherit", "ignore", "ignore"),
                                              ("merge", "ignore", "merge"), ("ignore", "merge", "ignore")])
def test_dedupe_policy_inherits_or_overrides(mine, brand, out):
    assert resubmission_policy(ListRules(dedupe=mine), brand) == out


def test_reactivation_on_resubmit_only_for_inactivity():
    on = ListRules(reactivation=ReactivationRule(on_resubmit=True))
    assert reactivates_on_resubmit(on, "unsubscribed", ["inactive"])
    assert not reactivates_on_resubmit(ListRules(), "unsubscribed", ["inactive"])
    for reasons in (["complaint"], ["sms_stop"], ["hard_bounce"], ["tenant_request"], []):
        assert not reactivates_on_resubmit(on, "unsubscribed", reasons)
    assert not reactivates_on_resubmit(on, "accepted", [])


@pytest.mark.parametrize("on_click, brand, out", [("inherit", True, True), ("inherit", False, False),
                                                  ("yes", False, True), ("no", True, False)])
def test_reactivation_on_click(on_click, brand, out):
    assert reactivates_on_click(ListRules(reactivation=ReactivationRule(on_click=on_click)), brand) == out
    assert reactivates_on_click(None, brand) == brand


# --- the rules inside the intake decision -----------------------------------------------------

def _tenant(**rules):
    return make_tenant(lists={"daily": {"channel": "email", "rules": rules}, "texts": {"channel": "sms"},
                              "uk-texts": {"channel": "sms", "rules": rules}},
                       partners=["feed", "other"], validation={"default_region": "US", "allowed_countries": [],
                                                               "require_sms_consent": False})


def _sub(**over):
    base = {"event_id": "01KB0Z8Y9G8N7R0Q5W3E2T1Y6U", "tenant": "acme", "occurred_at": 1764064800000,
            "schema": "lead.submitted@1", "causation_id": None, "source": "api", "lead_id": "L1",
            "channel": "email", "address": "ann@example.com", "partner": "feed", "list": "daily"}
    return {**base, **over}


def _decided(tenant, sub, state=None, suppressed=None, today=0):
    return decide(sub, check_submission(sub, tenant), suppressed, state, tenant, "t", today)


def test_a_partner_not_feeding_the_list_is_rejected_with_the_rule_reason():
    tenant = _tenant(intake={"partners": ["feed"]})
    [(name, ev)] = _decided(tenant, _sub(partner="other"))
    assert name == "lead.rejected" and ev["reasons"] == [PARTNER_NOT_ON_LIST]
    [(name, _)] = _decided(tenant, _sub())
    assert name == "lead.accepted"


def test_the_source_cap_rejects_past_the_days_count():
    tenant = _tenant(intake={"source_caps": {"feed": 2}})
    assert _decided(tenant, _sub(), today=1)[0][0] == "lead.accepted"
    [(name, ev)] = _decided(tenant, _sub(), today=2)
    assert name == "lead.rejected" and ev["reasons"] == [SOURCE_CAP_REACHED]
    assert source_cap_key(_sub(), tenant) == ("acme", "daily", "feed", "20251125")
    assert source_cap_key(_sub(list="texts"), tenant) is None  # that list caps nobody


def test_carrier_exclusion_for_a_british_mobile():
    tenant = _tenant(carriers={"exclude": ["Three"]})
    sub = _sub(channel="sms", address="+447400123456", list="uk-texts")  # a Three range
    checked = check_submission(sub, tenant)
    assert checked.carrier == "Three" and CARRIER_EXCLUDED in checked.reasons
    [(name, ev)] = decide(sub, checked, None, None, tenant, "t")
    assert name == "lead.rejected" and ev["carrier"] == "Three"
    ok = check_submission(_sub(channel="sms", address="+447400123456", list="texts"), tenant)
    assert ok.reasons == () and ok.carrier == "Three"
    o2 = check_submission(_sub(channel="sms", address="+447834123456", list="uk-texts"), tenant)
    assert o2.reasons == () and o2.carrier == "O2"


def test_a_list_can_ignore_resubmissions_where_the_brand_merges():
    tenant = _tenant(dedupe="ignore")
    state = evolve(None, "lead.accepted", {**_decided(_tenant(), _sub(list="texts", channel="email"))[0][1]})
    state.lists = ["other"]
    [(name, ev)] = _decided(tenant, _sub(event_id="01KB0Z8Y9G8N7R0Q5W3E2T1Y6V"), state)
    assert name == "lead.resubmitted" and ev["outcome"] == "ignored"
    [(name, ev)] = _decided(_tenant(), _sub(event_id="01KB0Z8Y9G8N7R0Q5W3E2T1Y6V"), state)
    assert ev["outcome"] == "merged"


def test_reactivation_by_resubmission_brings_back_a_pruned_lead():
    tenant = _tenant(reactivation={"on_resubmit": True})
    state = LeadState("acme", "L1", "email", "ann@example.com", "unsubscribed", reasons=["inactive"],
                      lists=["other"], partners=["feed"])
    decided = _decided(tenant, _sub(), state, suppressed="opted_out")
    assert [n for n, _ in decided] == ["lead.resubmitted", "lead.resubscribed"]
    resub, back = decided[0][1], decided[1][1]
    assert resub["outcome"] == "reactivated" and back["reason"] == "reactivated_by_resubmission"
    assert back["causation_id"] == resub["event_id"]
    for name, ev in decided:
        state = evolve(state, name, ev)
    assert state.status == "accepted" and "daily" in state.lists
    # a person who complained, or one on the blocklist, stays out
    complained = LeadState("acme", "L1", "email", "ann@example.com", "unsubscribed", reasons=["complaint"])
    assert _decided(tenant, _sub(), complained)[0][1]["outcome"] == "kept_unsubscribed"
    pruned = LeadState("acme", "L1", "email", "ann@example.com", "unsubscribed", reasons=["inactive"])
    assert _decided(tenant, _sub(), pruned, suppressed="blocklisted")[0][1]["outcome"] == "kept_unsubscribed"
