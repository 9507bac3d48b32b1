"""domain/rekeying.py: what one record becomes when the log moves to keyed lead ids."""
from __future__ import annotations

import os

import pytest

from domain.identity import LeadIds, legacy_lead_id
from domain.rekeying import LeadKey, rekeyed_event, remapped, remapped_key
from domain.sealing import SealError, field_aad, is_sealed, open_event, open_sealed, seal_event

OLD = legacy_lead_id("acme", "email", "ann@example.com")
NEW = LeadIds("a-test-lead-id-secret").of("acme", "email", "ann@example.com")
IDS = {OLD: NEW}
DEK = os.urandom(32)


def nonce() -> bytes:
    return os.urandom(12)


def accepted(**kw) -> dict:
    return {"event_id": "E1", "tenant": "acme", "lead_id": OLD, "channel": "email", "address": "ann@example.com",
            "first_name": "Ann", "last_name": None, "consent": {"at": 1, "ip": "203.0.113.7", "text": "yes"},
            "send_id": "ab" * 12, **kw}


def test_every_old_id_at_any_depth_is_replaced_and_nothing_else():
    ev = {"lead_id": OLD, "members": [OLD, "0" * 24], "nested": {"who": OLD, "n": 3}, "text": f"x{OLD}"}
    out = remapped(ev, IDS)
    assert out == {"lead_id": NEW, "members": [NEW, "0" * 24], "nested": {"who": NEW, "n": 3}, "text": f"x{OLD}"}
    assert ev["lead_id"] == OLD  # the event itself is not changed


@pytest.mark.parametrize("key,expected", [
    (OLD.encode(), NEW.encode()), (f"acme/{OLD}".encode(), f"acme/{NEW}".encode()),
    (b"sendgrid", b"sendgrid"), (None, None), (b"\xff\xfe", b"\xff\xfe")])
def test_record_keys_naming_a_lead_follow_it(key, expected):
    assert remapped_key(key, IDS) == expected


def test_sealed_fields_are_sealed_again_under_the_new_id_with_the_same_key():
    sealed = seal_event("lead.accepted", accepted(), DEK, nonce)
    out = rekeyed_event("lead.accepted", sealed, IDS, LeadKey(DEK), nonce)
    assert out["lead_id"] == NEW and is_sealed(out["address"]) and is_sealed(out["consent"]["ip"])
    assert open_event("lead.accepted", out, DEK)["address"] == "ann@example.com"
    assert open_event("lead.accepted", out, DEK)["consent"]["text"] == "yes"
    with pytest.raises(SealError):  # bound to the new id: the old one does not open it
        open_sealed(DEK, out["address"], field_aad("acme", OLD, "lead.accepted.address"))
    assert out["send_id"] == "ab" * 12


def test_fields_written_before_sealing_are_sealed_now():
    out = rekeyed_event("lead.accepted", accepted(), IDS, LeadKey(DEK), nonce)
    assert is_sealed(out["address"]) and is_sealed(out["first_name"]) and out["last_name"] is None
    assert open_event("lead.accepted", out, DEK)["first_name"] == "Ann"


def test_an_erased_lead_keeps_its_sealed_fields_unreadable_and_loses_its_clear_ones():
    sealed = seal_event("lead.accepted", accepted(), DEK, nonce)
    half = {**sealed, "first_name": "Ann"}  # one field clear: written before sealing
    out = rekeyed_event("lead.accepted", half, IDS, LeadKey(None, destroyed=True), nonce)
    assert out["lead_id"] == NEW and out["address"] == sealed["address"] and out["first_name"] == ""
    assert "Ann" not in str(out) and "ann@example.com" not in str(out)


def test_a_field_sealed_for_another_lead_is_left_as_it_was():
    other = seal_event("lead.accepted", accepted(lead_id="f" * 24), DEK, nonce)
    out = rekeyed_event("lead.accepted", {**other, "lead_id": OLD}, IDS, LeadKey(DEK), nonce)
    assert out["address"] == other["address"] and out["lead_id"] == NEW


def test_events_without_personal_fields_only_change_their_ids():
    ev = {"event_id": "E2", "tenant": "acme", "lead_id": OLD, "send_id": "s1", "outcome": "sent"}
    assert rekeyed_event("send.dispatched", ev, IDS, LeadKey(None), nonce) == {**ev, "lead_id": NEW}


def test_a_product_events_properties_follow_the_lead_sealed_again_and_the_clear_ones_sealed_unless_kept():
    import orjson
    props = {"category": "nursing", "title": "ICU Nurse", "salary": 52000}
    ev = {"event_id": "P1", "tenant": "acme", "lead_id": OLD, "name": "job_viewed",
          "properties": orjson.dumps(props).decode()}
    sealed = seal_event("product.tracked", ev, DEK, nonce, frozenset({"category"}))
    out = rekeyed_event("product.tracked", sealed, IDS, LeadKey(DEK), nonce, frozenset({"category"}))
    assert out["lead_id"] == NEW and orjson.loads(open_event("product.tracked", out, DEK)["properties"]) == props
    assert orjson.loads(out["properties"])["category"] == "nursing"
    before = rekeyed_event("product.tracked", ev, IDS, LeadKey(DEK), nonce, frozenset({"category"}))  # written clear
    got = orjson.loads(before["properties"])
    assert got["category"] == "nursing" and is_sealed(got["title"]) and is_sealed(got["salary"])
    erased = orjson.loads(rekeyed_event("product.tracked", ev, IDS, LeadKey(None, destroyed=True), nonce)["properties"])
    assert erased == {"category": None, "title": None, "salary": None}
