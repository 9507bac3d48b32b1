import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.identity import LeadIds, derived_event_id, identity_email, identity_phone, legacy_lead_id, new_event_id
from projections.event_rows import ulid_ms


def test_lead_id_is_deterministic_and_scoped_by_tenant_and_channel():
    lead_id = LeadIds("a-test-lead-id-secret").of
    a = lead_id("t1", "email", identity_email("  Ann@Example.COM "))
    assert a == lead_id("t1", "email", "ann@example.com")
    assert a != lead_id("t2", "email", "ann@example.com")
    assert a != lead_id("t1", "sms", "ann@example.com")
    assert len(a) == 24 and int(a, 16) >= 0


def test_an_address_becomes_its_lead_id_only_with_the_secret():
    ours, theirs = LeadIds("a-test-lead-id-secret"), LeadIds("another-secret-of-some-length")
    a = ours.of("t1", "email", "ann@example.com")
    assert a != theirs.of("t1", "email", "ann@example.com")  # a guess at the secret gives another id
    assert a != legacy_lead_id("t1", "email", "ann@example.com")  # the unkeyed hash anyone could compute
    assert a == LeadIds("a-test-lead-id-secret").of("t1", "email", "ann@example.com")  # stable across processes
    # one tenant's key says nothing of another's: the same address, unrelated ids
    assert ours.of("t2", "email", "ann@example.com") != a
    with pytest.raises(ValueError):
        LeadIds("")


def test_a_lead_whose_address_is_unreadable_gets_an_id_from_its_old_one():
    ids = LeadIds("a-test-lead-id-secret")
    old = legacy_lead_id("t1", "email", "ann@example.com")
    assert ids.of_unread("t1", old) == ids.of_unread("t1", old) != old
    assert ids.of_unread("t1", old) != ids.of("t1", "email", "ann@example.com")


def test_phone_identity_is_e164_whatever_the_format():
    forms = ["(415) 555-2671", "415.555.2671", "+1 415 555 2671", "1-415-555-2671"]
    assert {identity_phone(f, "US") for f in forms} == {"+14155552671"}
    assert identity_phone("020 7946 0018", "GB") == "+442079460018"


def test_unparseable_phones_keep_distinct_stable_identities():
    assert identity_phone("call me", "US") == identity_phone(" Call  me ", "US") == "raw:call me"
    assert identity_phone("n/a", "US") != identity_phone("call me", "US")


def test_derived_event_id_is_stable_and_carries_the_cause_time():
    one = derived_event_id("01ABC", "lead.accepted", 1_764_064_800_000)
    assert one == derived_event_id("01ABC", "lead.accepted", 1_764_064_800_000)
    assert one != derived_event_id("01ABC", "lead.rejected", 1_764_064_800_000)
    assert len(one) == 26 and ulid_ms(one) == 1_764_064_800_000


def test_new_event_id_is_a_ulid_of_the_given_time():
    eid = new_event_id(1_700_000_000_123, bytes(range(10)))
    assert len(eid) == 26 and ulid_ms(eid) == 1_700_000_000_123


def _ulid_digit_by_digit(ms: int, entropy: bytes) -> str:
    """The ULID spec read literally: 26 Crockford digits of (48-bit time, 80-bit randomness)."""
    value, digits = (ms << 80) | int.from_bytes(entropy, "big"), "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    return "".join(digits[(value >> (5 * i)) & 31] for i in reversed(range(26)))


@settings(max_examples=500)
@given(ms=st.integers(0, (1 << 48) - 1), entropy=st.binary(min_size=10, max_size=10))
def test_event_ids_are_the_specs_digits(ms, entropy):
    assert new_event_id(ms, entropy) == _ulid_digit_by_digit(ms, entropy)
    assert ulid_ms(new_event_id(ms, entropy)) == ms
