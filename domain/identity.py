"""Deterministic ids: lead_id from (tenant, channel, address) and derived event ids."""
from __future__ import annotations

import hashlib

import phonenumbers

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# two digits per 10 bits: a ULID in 13 lookups (26 single digits cost half again as much)
_PAIRS = tuple(_CROCKFORD[i >> 5] + _CROCKFORD[i & 31] for i in range(1024))
_SHIFTS = tuple(range(120, -1, -10))


def identity_email(raw: str) -> str:
    """The email as identity: trimmed and lower-cased (full validation happens later)."""
    return raw.strip().lower()


def identity_phone(raw: str, default_region: str) -> str:
    """The phone as identity: E.164 when it parses; otherwise the text itself, so that
    unrelated junk ("n/a", "call me") never shares one lead (validation rejects it later)."""
    try:
        num = phonenumbers.parse(raw, default_region)
        return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        return "raw:" + " ".join(raw.split()).lower()


def lead_id(tenant: str, channel: str, address: str) -> str:
    """One id per person per channel per tenant: every event about them shares its partition."""
    digest = hashlib.blake2b(f"{tenant}\x1f{channel}\x1f{address}".encode(), digest_size=12)
    return digest.hexdigest()


def _ulid_from(ms: int, entropy: bytes) -> str:
    value = (ms << 80) | int.from_bytes(entropy[:10], "big")
    return "".join([_PAIRS[(value >> s) & 1023] for s in _SHIFTS])


def derived_event_id(cause_id: str, kind: str, cause_ms: int) -> str:
    """A ULID for the event `kind` caused by `cause_id`: the same on every reprocessing,
    so a retried batch re-emits identical events and projections collapse them."""
    return _ulid_from(cause_ms, hashlib.blake2b(f"{cause_id}/{kind}".encode(), digest_size=10).digest())


def new_event_id(ms: int, entropy: bytes) -> str:
    """A ULID from a time in ms and 10 random bytes passed in by the caller."""
    return _ulid_from(ms, entropy)


def named_lead_id(tenant: str, lead: str | None, email: str | None, phone: str | None,
                  default_region: str) -> tuple[str, str]:
    """The lead id of a person named by exactly one of lead_id, email or phone (email and phone
    normalised as the intake does), with the field that named them. A ValueError when the
    address cannot be read."""
    if lead:
        return lead, "lead_id"
    if email:
        return lead_id(tenant, "email", identity_email(email)), "email"
    return lead_id(tenant, "sms", identity_phone(phone or "", default_region)), "phone"
