"""Sealed fields and wrapped data keys (pure): a field opens only with its lead's key and its
own binding; a wrapped key unwraps with the KEK that wrapped it, whichever of the ring; any text
that is not a sealed value is refused cleanly, never a crash."""
from __future__ import annotations

import base64
import os

import pytest
from hypothesis import given, settings, strategies as st

from domain.sealing import (SealError, field_aad, is_sealed, key_aad, open_sealed, parse_key_ring, seal, unwrap,
                            wrap, wrapped_by)

DEK, OTHER = os.urandom(32), os.urandom(32)
KEK_A, KEK_B = os.urandom(32), os.urandom(32)


def n() -> bytes:
    return os.urandom(12)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_opens_again_with_its_key_and_binding(text):
    sealed = seal(DEK, n(), text, field_aad("acme", "L1", "address"))
    assert is_sealed(sealed)
    assert open_sealed(DEK, sealed, field_aad("acme", "L1", "address")) == text


def test_a_field_does_not_open_with_another_key_lead_tenant_or_field():
    sealed = seal(DEK, n(), "ana@example.com", field_aad("acme", "L1", "address"))
    for key, aad in ((OTHER, field_aad("acme", "L1", "address")), (DEK, field_aad("acme", "L2", "address")),
                     (DEK, field_aad("beta", "L1", "address")), (DEK, field_aad("acme", "L1", "first_name"))):
        with pytest.raises(SealError):
            open_sealed(key, sealed, aad)


def test_the_same_text_seals_differently_each_time():
    aad = field_aad("acme", "L1", "address")
    assert seal(DEK, n(), "x", aad) != seal(DEK, n(), "x", aad)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_that_is_not_a_sealed_value_is_refused_cleanly(junk):
    with pytest.raises(SealError):
        open_sealed(DEK, junk, field_aad("acme", "L1", "address"))
    with pytest.raises(SealError):
        open_sealed(DEK, "ls1." + junk, field_aad("acme", "L1", "address"))


def test_a_tampered_value_is_refused():
    sealed = seal(DEK, n(), "ana@example.com", b"aad")
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(SealError):
        open_sealed(DEK, flipped, b"aad")


def test_a_wrapped_key_unwraps_with_the_kek_that_wrapped_it_and_only_for_its_lead():
    wrapped = wrap("k2", KEK_B, n(), DEK, key_aad("acme", "L1"))
    assert wrapped_by(wrapped) == "k2"
    assert unwrap({"k1": KEK_A, "k2": KEK_B}, wrapped, key_aad("acme", "L1")) == DEK
    with pytest.raises(SealError, match="not in the key ring"):
        unwrap({"k1": KEK_A}, wrapped, key_aad("acme", "L1"))
    with pytest.raises(SealError, match="does not unwrap"):
        unwrap({"k2": KEK_A}, wrapped, key_aad("acme", "L1"))  # the id names another key
    with pytest.raises(SealError):
        unwrap({"k2": KEK_B}, wrapped, key_aad("acme", "L2"))


def test_the_key_ring_names_the_current_kek_first_and_refuses_bad_ones():
    a, b = base64.b64encode(KEK_A).decode(), base64.b64encode(KEK_B).decode()
    assert parse_key_ring(f"new:{a}, old:{b}") == ("new", {"new": KEK_A, "old": KEK_B})
    for bad, problem in (("", "no key"), ("k1", "id:base64"), (f"k.1:{a}", "without dots"), (a, "not id:base64"),
                         ("k1:not-base64!", "not base64"), (f"k1:{base64.b64encode(b'short').decode()}", "32 bytes")):
        with pytest.raises(ValueError, match=problem):
            parse_key_ring(bad)


def test_an_events_personal_fields_are_sealed_and_open_again_and_read_none_once_erased():
    from domain.sealing import open_event, seal_event
    ev = {"tenant": "acme", "lead_id": "L1", "ip": "203.0.113.7", "text": "Jobs by email", "via": "form"}
    sealed = seal_event("consent.given", ev, DEK, n)
    assert is_sealed(sealed["ip"]) and is_sealed(sealed["text"]) and sealed["via"] == "form"
    assert "203.0.113.7" not in repr(sealed) and "Jobs by email" not in repr(sealed)
    assert seal_event("consent.given", sealed, DEK, n) == sealed  # never sealed twice
    assert open_event("consent.given", sealed, DEK) == ev
    assert open_event("consent.given", sealed, None) == {**ev, "ip": None, "text": None}
    assert seal_event("consent.withdrawn", {**ev, "ip": None, "text": None}, DEK, n)["ip"] is None
    with pytest.raises(SealError):  # the ip of one kind of event is not another's
        open_event("consent.withdrawn", sealed, DEK)
    assert seal_event("send.requested", ev, DEK, n) == ev  # a kind of event without personal fields listed


def test_each_sealed_field_opens_on_its_own_and_what_does_not_reads_none():
    from domain.sealing import open_readable, seal_event
    n = iter(bytes([i]) * 12 for i in range(1, 20)).__next__
    ev = {"tenant": "acme", "lead_id": "L1", "address": "ann@example.com", "first_name": "Ann", "last_name": ""}
    sealed = seal_event("lead.accepted", ev, DEK, n)
    assert sealed["last_name"] == ""  # empty: nothing to seal
    other = seal_event("lead.accepted", {**ev, "lead_id": "L2"}, DEK, n)
    pasted = {**sealed, "address": other["address"]}  # another lead's value: bound to L2
    assert open_readable("lead.accepted", pasted, DEK) == ({**ev, "address": None}, 1)
    assert open_readable("lead.accepted", sealed, None) == ({**ev, "address": None, "first_name": None}, 2)
    assert open_readable("lead.accepted", ev, None) == (ev, 0)  # clear: as it is


def test_the_consent_record_a_lead_came_with_is_sealed_inside_it_and_left_unchanged_where_it_was():
    from domain.sealing import has_clear, has_sealed, open_event, open_readable, seal_event
    consent = {"at": 1764064700000, "ip": "203.0.113.7", "text": "I agree to receive job alerts."}
    ev = {"tenant": "acme", "lead_id": "L1", "address": "ann@example.com", "consent": consent}
    sealed = seal_event("lead.submitted", ev, DEK, n)
    assert ev["consent"] is consent and consent["ip"] == "203.0.113.7"  # the caller's record is not changed
    assert sealed["consent"]["at"] == 1764064700000  # the time stays clear: the ledger ranks by it
    assert is_sealed(sealed["consent"]["ip"]) and is_sealed(sealed["consent"]["text"])
    assert "203.0.113.7" not in repr(sealed) and "job alerts" not in repr(sealed)
    assert has_sealed("lead.submitted", sealed) and not has_clear("lead.submitted", sealed)
    assert open_event("lead.submitted", sealed, DEK) == ev
    assert open_readable("lead.submitted", sealed, None) == (
        {**ev, "address": None, "consent": {**consent, "ip": None, "text": None}}, 3)
    accepted = seal_event("lead.accepted", {**ev, "consent": {**consent, "ip": None}}, DEK, n)
    assert accepted["consent"]["ip"] is None and is_sealed(accepted["consent"]["text"])
    with pytest.raises(SealError):  # the submission's consent text is not the decision's
        open_event("lead.accepted", {**accepted, "consent": sealed["consent"]}, DEK)
    for none in ({**ev, "consent": None}, {k: v for k, v in ev.items() if k != "consent"}):
        assert open_event("lead.submitted", seal_event("lead.submitted", none, DEK, n), DEK) == none


@pytest.mark.parametrize("ip, network", [("203.0.113.77", "203.0.113.0"), (" 198.51.100.9 ", "198.51.100.0"),
                                         ("2001:db8:1234:5678::1", "2001:db8:1234::"), ("[2001:db8::1]", "2001:db8::"),
                                         ("::ffff:17.5.6.7", "17.5.6.0"), ("fe80::1%eth0", "fe80::"),
                                         ("not an ip", ""), ("", ""), ("999.1.1.1", ""), ("01.2.3.4", ""),
                                         ("10.0.0.255", "10.0.0.0"), ("0.0.0.0", "0.0.0.0"), ("1.2.3", ""),
                                         ("1.2.3.4.5", ""), ("1.2.3.-4", ""), ("١.2.3.4", "")])
def test_an_ip_that_cannot_be_sealed_keeps_only_its_network(ip, network):
    import ipaddress

    from domain.sealing import coarse_ip, ip_kept
    assert coarse_ip(ip) == network
    if network and ":" not in ip:  # the quick path agrees with ipaddress
        assert network == str(ipaddress.ip_network(f"{ip.strip()}/24", strict=False).network_address)
    assert ip_kept({"ip": ip, "user_agent": "UA"}) == {"ip": network if ip else "", "user_agent": "UA"}


def test_where_a_person_opened_or_clicked_from_is_sealed_in_every_engagement_event_that_carries_it():
    from domain.sealing import ip_kept, open_event, seal_event
    for name in ("engagement.hit", "webhook.observation", "engagement.opened", "engagement.clicked"):
        ev = {"tenant": "acme", "lead_id": "L1", "ip": "203.0.113.77", "user_agent": "Mozilla/5.0"}
        sealed = seal_event(name, ev, DEK, n)
        assert is_sealed(sealed["ip"]) and sealed["user_agent"] == "Mozilla/5.0"
        assert ip_kept(sealed) == sealed  # sealed: written as it is
        assert open_event(name, sealed, DEK) == ev and open_event(name, sealed, None)["ip"] is None


# -- free properties: a product event's, and a triggered message's context ----------------------

def _product(props: dict, lead: str = "L1") -> dict:
    import orjson
    return {"tenant": "acme", "lead_id": lead, "name": "job_viewed", "properties": orjson.dumps(props).decode()}


def test_a_product_events_property_values_are_sealed_one_by_one_except_those_kept_clear():
    import orjson
    from domain.sealing import has_clear, has_sealed, open_event, open_readable, seal_event
    props = {"category": "nursing", "title": "ICU Nurse at Mercy", "salary": 52000, "remote": True,
             "tags": ["night", "icu"], "note": None}
    ev = _product(props)
    assert has_clear("product.tracked", ev) and not has_sealed("product.tracked", ev)
    sealed = seal_event("product.tracked", ev, DEK, n, frozenset({"category"}))
    got = orjson.loads(sealed["properties"])
    assert list(got) == list(props)  # the names stay, in their order: what analysts group by
    assert got["category"] == "nursing" and got["note"] is None  # kept clear; nothing to seal
    assert all(is_sealed(got[k]) for k in ("title", "salary", "remote", "tags"))
    assert "Mercy" not in sealed["properties"] and "52000" not in sealed["properties"]
    assert has_sealed("product.tracked", sealed) and not has_clear("product.tracked", sealed, frozenset({"category"}))
    assert has_clear("product.tracked", sealed)  # kept nothing: the category is still clear
    assert orjson.loads(open_event("product.tracked", sealed, DEK)["properties"]) == props  # types come back
    opened, unreadable = open_readable("product.tracked", sealed, None)  # erased: the key destroyed
    assert orjson.loads(opened["properties"]) == {**props, "title": None, "salary": None, "remote": None,
                                                  "tags": None} and unreadable == 4


def test_a_sealed_property_is_bound_to_its_lead_and_its_name():
    import orjson
    from domain.sealing import open_event, open_readable, seal_event
    sealed = orjson.loads(seal_event("product.tracked", _product({"a": "x", "b": "y"}), DEK, n)["properties"])
    swapped = _product({"a": sealed["b"], "b": sealed["a"]})  # each value moved to the other name
    opened, unreadable = open_readable("product.tracked", swapped, DEK)
    assert orjson.loads(opened["properties"]) == {"a": None, "b": None} and unreadable == 2
    with pytest.raises(SealError):
        open_event("product.tracked", _product({"a": sealed["a"]}, lead="L2"), DEK)


def test_an_event_about_nobody_known_keeps_only_the_properties_kept_clear():
    import orjson
    from domain.sealing import kept_properties
    ev = _product({"category": "nursing", "email_typed": "ann@example.com"}, lead="")
    assert orjson.loads(kept_properties("product.tracked", ev, frozenset({"category"}))["properties"]) == {
        "category": "nursing"}
    assert kept_properties("product.tracked", {**ev, "properties": "{}"}, frozenset()) == {**ev, "properties": "{}"}


def test_an_erased_persons_clear_properties_are_emptied_and_sealed_ones_left():
    import orjson
    from domain.sealing import emptied_clear, seal_event
    half = orjson.loads(seal_event("product.tracked", _product({"a": "x"}), DEK, n)["properties"])
    ev = _product({**half, "b": "clear words", "c": None})
    out = orjson.loads(emptied_clear("product.tracked", ev)["properties"])
    assert out == {"a": half["a"], "b": None, "c": None}


def test_a_triggered_messages_context_carries_its_causes_properties_sealed_and_its_name_clear():
    import orjson
    from domain.sealing import has_sealed, open_event, seal_event
    context = {"trigger": "nursing-follow-up", "event": {"name": "job_viewed", "category": "nursing",
                                                         "title": "ICU Nurse"}}
    req = {"tenant": "acme", "lead_id": "L1", "kind": "triggered", "context": orjson.dumps(context).decode()}
    sealed = seal_event("send.requested", req, DEK, n, frozenset({"category"}))
    got = orjson.loads(sealed["context"])
    assert got["trigger"] == "nursing-follow-up" and got["event"]["name"] == "job_viewed"
    assert got["event"]["category"] == "nursing" and is_sealed(got["event"]["title"])
    assert has_sealed("send.requested", sealed) and open_event("send.requested", sealed, DEK) == req
    alert = {"tenant": "acme", "lead_id": "L1", "kind": "daily", "context": '{"items":[{"title":"x"}]}'}
    assert seal_event("send.requested", alert, DEK, n) == alert  # no cause: nothing of a person to seal
    assert not has_sealed("send.requested", alert)
