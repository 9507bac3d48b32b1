"""Erasure's pure parts: the do-not-contact list's keyed hashes, the erasure record without the
address, and an erased person's refused submission, which brings nobody back."""
from __future__ import annotations

import json
import os

from hypothesis import given, settings, strategies as st

from domain.erasure import ANALYTICS_KEPT, anonymised_event, anonymous_id, contact_hash, erasure_event
from domain.identity import LeadIds
from domain.intake import DO_NOT_CONTACT, evolve, refuse_erased
from schemas.codec import default_codec
from streams.settings import ROOT

CODEC = default_codec()
SECRET = "a-long-secret-of-the-deployment"
lead_id = LeadIds("a-test-lead-id-secret").of


def submitted(**kw) -> dict:
    return {**json.loads((ROOT / "schemas/lead/examples/submitted.v1.json").read_text()), **kw}


def test_an_entry_is_keyed_by_the_secret_and_the_tenant_and_stable_for_one_lead():
    lid = lead_id("acme", "email", "ann@example.com")
    entry = contact_hash(SECRET, "acme", lid)
    assert entry == contact_hash(SECRET, "acme", lid) and len(entry) == 32
    assert entry != contact_hash("another-secret-of-the-same-length", "acme", lid)  # nobody without it
    assert entry != contact_hash(SECRET, "globex", lid)  # one tenant's list says nothing of another's
    assert entry != contact_hash(SECRET, "acme", lead_id("acme", "email", "bob@example.com"))
    assert "ann" not in entry and lid not in entry


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_two_leads_never_share_an_entry(a, b):
    la, lb = lead_id("acme", "email", a), lead_id("acme", "email", b)
    assert (contact_hash(SECRET, "acme", la) == contact_hash(SECRET, "acme", lb)) == (la == lb)


def test_anonymous_ids_are_random_and_say_nothing():
    ids = {anonymous_id(os.urandom(12)) for _ in range(1000)}
    assert len(ids) == 1000 and all(i.startswith("erased-") and len(i) == 31 for i in ids)


def test_the_erasure_record_holds_who_when_and_why_and_never_the_address():
    lid = lead_id("acme", "email", "ann@example.com")
    ev = erasure_event("01KBF2T000000000000000000C", "acme", 1_764_842_400_000, lid, "email",
                       contact_hash(SECRET, "acme", lid), "erased-abc", "person:dpo@acme.example",
                       "ticket 4411", "api")
    raw = CODEC.encode("privacy.subject_erased", ev)
    assert b"ann@example.com" not in raw and b"ann" not in raw
    name, back = CODEC.decode(raw)
    assert name == "privacy.subject_erased" and back["reason"] == "ticket 4411" and back["lead_id"] == lid


def test_an_erased_persons_submission_is_refused_without_the_address_and_changes_no_state():
    sub = submitted()
    name, ev = refuse_erased(sub, "intake")
    assert name == "lead.rejected" and ev["reasons"] == [DO_NOT_CONTACT] and ev["address"] == ""
    assert ev["causation_id"] == sub["event_id"] and ev["lead_id"] == sub["lead_id"]
    assert refuse_erased(sub, "intake") == (name, ev)  # redelivered: the identical event
    raw = CODEC.encode(name, ev)
    for personal in (sub["address"], sub.get("email"), sub.get("first_name"), sub.get("last_name")):
        assert not personal or personal.encode() not in raw
    assert evolve(None, name, ev) is None  # not even a rejected read model
    accepted = json.loads((ROOT / "schemas/lead/examples/accepted.v2.json").read_text())
    state = evolve(None, "lead.accepted", accepted)
    assert evolve(state, name, {**ev, "lead_id": accepted["lead_id"]}) is state


def test_a_late_event_of_an_erased_person_keeps_its_counts_and_loses_everything_about_them():
    """Over every event type's example."""
    for path in sorted((ROOT / "schemas").glob("*/examples/*.json")):
        ev = json.loads(path.read_text())
        out = anonymised_event(ev, "erased-0123")
        assert out["lead_id"] == "erased-0123" and out["erased"] is True
        assert set(out) <= set(ANALYTICS_KEPT) | {"lead_id", "erased", "location"}, path
        for field in ("address", "email", "phone", "first_name", "last_name", "ip", "user_agent", "text",
                      "properties", "interests", "attribution", "consent", "profile"):
            assert field not in out, (path, field)
        if isinstance(ev.get("location"), dict):
            assert set(out["location"]) <= {"country", "state"}
        for kept in ("event_id", "tenant", "occurred_at", "send_id", "revision", "is_bot", "reason"):
            assert out.get(kept) == ev.get(kept), (path, kept)
