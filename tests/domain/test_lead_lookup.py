"""domain/lead_lookup.py: the lookup finds the lead id the intake gave, and tells what is wrong."""
from __future__ import annotations

import pytest

from domain.identity import LeadIds
from domain.lead_input import LeadIn
from domain.lead_lookup import LookupProblem, contact_of, subscription_of
from domain.submission import build_submitted
from domain.timeline import EventRow

IDS = LeadIds("a-test-lead-id-secret")


def _submitted_id(tenant, **lead) -> str:
    return build_submitted(LeadIn(partner="feed", **lead), tenant, "E1", 0, "test", ids=IDS)["lead_id"]


def test_an_email_or_a_phone_finds_the_lead_id_the_intake_gave(tenant):
    assert contact_of("acme", " Ann@Example.COM ", None, "US").lead_id(IDS) == \
        _submitted_id(tenant, email="ann@example.com", list="daily")
    found = contact_of("acme", None, "(212) 555-0142", "US")
    assert (found.channel, found.address) == ("sms", "+12125550142")
    assert found.lead_id(IDS) == _submitted_id(tenant, phone="+1 212 555 0142", list="texts")


@pytest.mark.parametrize("email, phone, field", [(None, None, "(query)"), ("a@b.co", "+12125550142", "email"),
                                                 ("no-at-sign", None, "email"), ("a b@c.co", None, "email"),
                                                 (None, "call me", "phone")])
def test_a_query_naming_no_single_well_formed_address_is_refused(email, phone, field):
    with pytest.raises(LookupProblem) as bad:
        contact_of("acme", email, phone, "US")
    assert bad.value.field == field and str(bad.value)


def test_the_subscription_says_per_list_and_when_and_why_it_ended():
    state = {"status": "unsubscribed", "lists": ["daily"],
             "preferences": {"daily": {"cadence": "weekly", "paused_until_ms": 0, "left": False},
                             "other": {"left": True}}}
    events = [EventRow("U", "lead.unsubscribed", 2_000, "email", "", "", "", [], "", {"reason": "link"}),
              EventRow("S", "lead.submitted", 1_000, "email", "daily", "", "", [], "",
                       {"consent": {"at": "1970-01-01T00:00:00.5+00:00", "text": "OK", "ip": "203.0.113.9"}})]
    sub = subscription_of(state, "email", events)
    assert (sub["subscribed"], sub["unsubscribe_reason"], sub["unsubscribed_at"]) == (
        False, "link", "1970-01-01T00:00:02Z")
    assert sub["consent"] == {"at": "1970-01-01T00:00:00.5Z", "text": "OK"}  # no IP address
    assert sub["lists"] == [
        {"list": "daily", "subscribed": False, "left": False, "paused_until": None, "cadence": "weekly"},
        {"list": "other", "subscribed": False, "left": True, "paused_until": None, "cadence": None}]
    assert subscription_of(None, "sms", [])["lists"] == []
