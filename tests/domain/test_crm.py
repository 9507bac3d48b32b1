"""The CRM's pure rules: v3 webhook signatures (what is signed, the five minutes, HubSpot's URI
decoding) and which webhooks ask for a poll (our own writes echoed back do not)."""
from __future__ import annotations

import base64
import hashlib
import hmac

from hypothesis import given, strategies as st

from domain.crm import asks_for_poll, signature_problem, signature_v3

SECRET, URI, NOW = "app-secret", "https://hooks.example/webhooks/crm/hubspot/acme", 1_764_842_400_000


def test_the_signature_is_base64_hmac_sha256_of_method_uri_body_and_timestamp():
    body, ts = b'[{"eventId":1}]', str(NOW)
    want = base64.b64encode(hmac.new(SECRET.encode(), b"POST" + URI.encode() + body + ts.encode(),
                                     hashlib.sha256).digest()).decode()
    assert signature_v3(SECRET, "post", URI, body, ts) == want
    assert signature_problem(SECRET, "POST", URI, body, ts, want, NOW) is None
    assert signature_problem(SECRET, "POST", URI + "?x=1", body, ts, want, NOW) is not None  # another URI
    assert signature_problem(SECRET, "PUT", URI, body, ts, want, NOW) is not None
    assert "not a time" in signature_problem(SECRET, "POST", URI, body, "soon", want, NOW)
    assert "ahead" in signature_problem(SECRET, "POST", URI, body, str(NOW + 301_000),
                                        signature_v3(SECRET, "POST", URI, body, str(NOW + 301_000)), NOW)


@given(st.binary(max_size=300), st.integers(min_value=0, max_value=300_000))
def test_any_body_signed_within_five_minutes_verifies_and_any_flipped_byte_does_not(body, age):
    ts = str(NOW - age)
    sig = signature_v3(SECRET, "POST", URI, body, ts)
    assert signature_problem(SECRET, "POST", URI, body, ts, sig, NOW) is None
    if body:
        flipped = bytes([body[0] ^ 1]) + body[1:]
        assert signature_problem(SECRET, "POST", URI, flipped, ts, sig, NOW) is not None


def test_our_own_writes_echoed_back_ask_for_no_poll_and_anything_else_does():
    ours = {"changeSource": "INTEGRATION", "sourceId": "777", "subscriptionType": "contact.propertyChange"}
    assert not asks_for_poll([ours, ours], "777")
    assert asks_for_poll([ours, {**ours, "changeSource": "CRM", "sourceId": None}], "777")
    assert asks_for_poll([{**ours, "sourceId": "999"}], "777")  # another integration's change
    assert asks_for_poll([ours], "")  # no app id configured: nothing is taken for ours
    assert not asks_for_poll([], "777")
