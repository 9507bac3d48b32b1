"""Deterministic ids: lead ids (keyed hashes of tenant, channel and address) and derived event ids."""
from __future__ import annotations

import hashlib
import hmac

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


def legacy_lead_id(tenant: str, channel: str, address: str) -> str:
    """The lead id before ids were keyed: anyone could compute it from an address. Still asked by
    the do-not-contact check (entries made before the migration) and by the migration itself."""
    digest = hashlib.blake2b(f"{tenant}\x1f{channel}\x1f{address}".encode(), digest_size=12)
    return digest.hexdigest()


def legacy_id_of(channel: str, tenant: str, address: str | None, default_region: str) -> str:
    """The unkeyed lead id a submission's clear address made before ids were keyed ("" without
    an address): an erasure from before the migration is listed under it."""
    if not address:
        return ""
    identity = identity_email(address) if channel == "email" else identity_phone(address, default_region)
    return legacy_lead_id(tenant, channel, identity)


class LeadIds:
    """One id per person per channel per tenant (every event about them shares its partition): a
    blake2b hash keyed with the tenant's own key, an HMAC of the deployment's secret and the tenant.
    Without the secret an address cannot be turned into its lead id, and one tenant's ids say
    nothing about another's."""

    def __init__(self, secret: str):
        if not secret:
            raise ValueError("a lead id secret is required")
        self._secret = secret.encode()
        self._keys: dict[str, bytes] = {}

    def _key(self, tenant: str) -> bytes:
        key = self._keys.get(tenant)
        if key is None:
            key = hmac.new(self._secret, f"lead-id\x1f{tenant}".encode(), hashlib.sha256).digest()
            self._keys[tenant] = key
        return key

    def of(self, tenant: str, channel: str, address: str) -> str:
        """The lead id of an address already normalised (identity_email / identity_phone)."""
        return hashlib.blake2b(f"{channel}\x1f{address}".encode(), key=self._key(tenant),
                               digest_size=12).hexdigest()

    def of_unread(self, tenant: str, legacy: str) -> str:
        """The new id of a lead whose address can no longer be read (erased before the migration):
        derived from its old id, so every event of theirs still shares one id."""
        return hashlib.blake2b(f"legacy\x1f{legacy}".encode(), key=self._key(tenant), digest_size=12).hexdigest()

    def named(self, tenant: str, lead: str | None, email: str | None, phone: str | None,
              default_region: str) -> tuple[str, str]:
        """The lead id of a person named by exactly one of lead_id, email or phone (email and phone
        normalised as the intake does), with the field that named them."""
        if lead:
            return lead, "lead_id"
        if email:
            return self.of(tenant, "email", identity_email(email)), "email"
        return self.of(tenant, "sms", identity_phone(phone or "", default_region)), "phone"


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
