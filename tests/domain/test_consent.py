"""The consent ledger's rules (pure): what a record must carry, the order records fold in
(later `at` wins; at the same instant a withdrawal; then the larger event id), and the consent
a lead came with as the ledger's first record."""
from __future__ import annotations

import itertools
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings, strategies as st
from pydantic import ValidationError

from domain.consent import (SENDING_PURPOSE, ConsentError, ConsentIn, consent_event, entry_of, supersedes,
                            withdrawn_from_sending)
from domain.identity import LeadIds

NOW = 1_765_000_000_000


def rec(**kw) -> ConsentIn:
    return ConsentIn.model_validate({"email": "ana@example.com", "granted": True, "via": "signup_form",
                                     "text": "Job alerts by email", **kw})


def test_a_record_names_one_person_and_a_consent_given_carries_its_text():
    with pytest.raises(ValidationError, match="exactly one"):
        rec(phone="+14155550100")
    with pytest.raises(ValidationError, match="exactly one"):
        ConsentIn.model_validate({"granted": False, "via": "x"})
    with pytest.raises(ValidationError, match="text"):
        rec(text=None)
    assert rec(granted=False, text=None).granted is False  # a withdrawal needs no text


@pytest.mark.parametrize("field,value,problem", [
    ("ip", "300.1.1.1", "not an IPv4 or IPv6"), ("ip", "localhost", "not an IPv4"),
    ("purpose", "Marketing!", "not a purpose"), ("purpose", "", "not a purpose"),
    ("at", "2026-12-04T09:00:00", "time zone"), ("via", "", "at least 1"), ("surprise", 1, "Extra inputs"),
])
def test_bad_fields_are_refused_by_name(field, value, problem):
    with pytest.raises(ValidationError, match=problem):
        rec(**{field: value})


def test_an_ip_is_kept_in_its_canonical_form():
    assert rec(ip="2001:DB8:0:0::1").ip == "2001:db8::1"


def test_times_in_the_future_or_too_old_are_refused():
    future = datetime.fromtimestamp((NOW + 6 * 60_000) / 1000, tz=timezone.utc)
    with pytest.raises(ConsentError, match="future"):
        consent_event(rec(at=future.isoformat()), "t", "L", "email", "E", NOW, "key:k")
    with pytest.raises(ConsentError, match="10 years"):
        consent_event(rec(at="2010-01-01T00:00:00Z"), "t", "L", "email", "E", NOW, "key:k")


def test_the_event_carries_the_record_and_who_recorded_it():
    name, ev = consent_event(rec(at="2025-12-05T10:00:00+01:00", ip="203.0.113.7"), "acme", "L1", "email", "E1",
                             NOW, "key:ls_acme")
    assert name == "consent.given" and ev["schema"] == "consent.given@1"
    assert (ev["lead_id"], ev["channel"], ev["purpose"], ev["via"], ev["ip"], ev["recorded_by"]) == (
        "L1", "email", SENDING_PURPOSE, "signup_form", "203.0.113.7", "key:ls_acme")
    assert ev["at"] == int(datetime(2025, 12, 5, 9, tzinfo=timezone.utc).timestamp() * 1000)
    assert consent_event(rec(granted=False, text=None), "acme", "L1", "email", "E2", NOW, "k")[0] == "consent.withdrawn"


def test_the_person_resolves_as_the_intake_derives_lead_ids():
    ids = LeadIds("a-test-lead-id-secret")
    lead_id, named_lead_id = ids.of, ids.named
    assert named_lead_id("acme", None, "Ana@Example.com ", None, "US") == (
        lead_id("acme", "email", "ana@example.com"), "email")
    assert named_lead_id("acme", None, None, "(415) 555-0100", "US") == (lead_id("acme", "sms", "+14155550100"),
                                                                        "phone")
    assert named_lead_id("acme", "L9", None, None, "US") == ("L9", "lead_id")


def entry(at: int, granted: bool, eid: str) -> dict:
    return {"at": at, "granted": granted, "event_id": eid}


def test_later_wins_and_at_the_same_instant_a_withdrawal_wins():
    assert supersedes(entry(2, True, "a"), entry(1, False, "z"))
    assert not supersedes(entry(1, False, "z"), entry(2, True, "a"))  # an old withdrawal arriving late
    assert supersedes(entry(5, False, "a"), entry(5, True, "z"))
    assert not supersedes(entry(5, True, "z"), entry(5, False, "a"))
    assert supersedes(entry(5, True, "b"), entry(5, True, "a")) and not supersedes(entry(5, True, "a"),
                                                                                   entry(5, True, "a"))
    assert supersedes(entry(0, True, "a"), None)


records = st.lists(st.tuples(st.integers(0, 5), st.booleans(), st.sampled_from("abcd")), min_size=1, max_size=7)


@settings(max_examples=200, deadline=None)
@given(records)
def test_every_order_of_the_same_records_folds_to_the_same_current_consent(rs):
    entries = [entry(*r) for r in rs]
    finals = set()
    for order in itertools.islice(itertools.permutations(entries), 50):
        cur = None
        for e in order:
            if supersedes(e, cur):
                cur = e
        finals.add((cur["at"], cur["granted"], cur["event_id"]))
    assert len(finals) == 1


def test_the_consent_a_lead_came_with_is_the_first_record():
    accepted = {"tenant": "acme", "lead_id": "L1", "channel": "sms", "event_id": "E0", "occurred_at": NOW,
                "partner": "boardA", "consent": {"at": NOW - 1000, "ip": "203.0.113.7", "text": "Texts OK"}}
    e = entry_of("lead.accepted", accepted)
    assert (e["purpose"], e["granted"], e["at"], e["via"], e["channel"]) == (SENDING_PURPOSE, True, NOW - 1000,
                                                                             "lead:boardA", "sms")
    assert entry_of("lead.accepted", {**accepted, "consent": {"at": None, "ip": None, "text": None}})["at"] == NOW
    assert entry_of("lead.accepted", {**accepted, "consent": None}) is None
    assert entry_of("lead.unsubscribed", accepted) is None


def test_only_a_withdrawn_current_consent_stops_sending():
    assert withdrawn_from_sending({"granted": False}) and not withdrawn_from_sending({"granted": True})
    assert not withdrawn_from_sending(None)
