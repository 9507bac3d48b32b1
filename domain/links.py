"""Tracked links: short codes, the record each code stands for, and sealed tokens.

A tracking URL carries only an opaque code (base62 of a counter the caller allocates) or a
sealed token (authenticated encryption), never personal data. The redirect looks the code up
and goes only to the destination recorded here when the message was composed, so there is
no open redirect. Pure: counters, keys and nonces are passed in.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Literal, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.identity import derived_event_id
from domain.schema_labels import schema_label

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_DIGIT = {c: i for i, c in enumerate(ALPHABET)}

LinkKind = Literal["click", "open", "unsubscribe", "preferences"]  # a honeypot is a click in slot "honeypot"
PATH_OF_KIND: dict[str, str] = {"click": "c", "open": "o", "unsubscribe": "u", "preferences": "p"}

TOKEN_VERSION = "v1"
NONCE_BYTES = 12  # AES-GCM's standard nonce; never reuse one with the same key
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # no '.', which separates the token's parts


def base62(n: int) -> str:
    """The base62 spelling of a non-negative integer (0 -> "0")."""
    if n < 0:
        raise ValueError(f"base62 needs a non-negative integer, got {n}")
    if n == 0:
        return ALPHABET[0]
    out = []
    while n:
        n, r = divmod(n, 62)
        out.append(ALPHABET[r])
    return "".join(reversed(out))


def unbase62(s: str) -> int:
    """The integer a base62 string spells; ValueError for an empty or foreign string."""
    if not s:
        raise ValueError("empty base62 string")
    n = 0
    for c in s:
        d = _DIGIT.get(c)
        if d is None:
            raise ValueError(f"not a base62 character: {c!r}")
        n = n * 62 + d
    return n


def is_code(s: str) -> bool:
    """Whether s can be a short code (the redirect checks this before any lookup)."""
    return 0 < len(s) <= 20 and all(c in _DIGIT for c in s)


TAG_CHARS = 4  # 62**4 = 14.8 M guesses per valid code: counters can't be enumerated


def _tag(n: int, key: bytes) -> str:
    """TAG_CHARS base62 characters of HMAC-SHA256(key, n): the code's keyed check."""
    digest = hmac.new(key, n.to_bytes(8, "big"), hashlib.sha256).digest()
    t = int.from_bytes(digest[:8], "big") % 62 ** TAG_CHARS
    return base62(t).rjust(TAG_CHARS, ALPHABET[0])


CODE_EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
CODES_PER_MS = 10


def counter_floor(now_ms: int) -> int:
    """Where the link-code counter starts when it is missing (a fresh Redis, or one wiped).

    Above every code handed out before, provided fewer than CODES_PER_MS codes a millisecond
    were made on average since CODE_EPOCH_MS (864 million a day): so a code in an email sent
    before a Redis wipe can never come to stand for another person's new link.
    """
    return max(0, now_ms - CODE_EPOCH_MS) * CODES_PER_MS


def signed_code(n: int, key: bytes) -> str:
    """The public short code for counter value n: base62(n) followed by its keyed tag."""
    return base62(n) + _tag(n, key)


def code_number(code: str, keys: Sequence[bytes]) -> int | None:
    """The counter value a signed code stands for, or None when it is malformed or tampered
    with. keys holds the current key first and the retired ones still honoured after it."""
    if not is_code(code) or len(code) <= TAG_CHARS:
        return None
    n = unbase62(code[:-TAG_CHARS])
    if n >= 2 ** 64:
        return None
    tag = code[-TAG_CHARS:]
    if any(hmac.compare_digest(tag, _tag(n, k)) for k in keys):
        return n
    return None


@dataclass(frozen=True)
class LinkRecord:
    """What a short code stands for, stored under the code when the message is composed."""

    code: str
    kind: LinkKind
    send_id: str
    tenant: str
    lead_id: str
    destination_url: str  # "" for opens, unsubscribes and preference pages: they never redirect
    job_key: str  # Job.key for a job link, "" otherwise
    position: int  # 1-based rank of the job in the message; 0 for non-job links
    cpc_cents: int
    list: str
    template: str  # template version (content hash)
    campaign: str
    creative: str  # creative id for the creative's link, "" otherwise
    created_ms: int
    slot: str = ""  # where in the message: job, creative, pixel_top, pixel_bottom, unsubscribe, preferences
    partner: str = ""  # the lead's source (domain.intake.source_partner), for partner analytics

    def to_dict(self) -> dict:
        """Plain dict for storage (Redis hash / JSON); every field is a plain value, so a copy of
        the instance's dict is it (dataclasses.asdict's deep copy cost 4 % of a sender's time)."""
        return dict(vars(self))

    @classmethod
    def from_dict(cls, d: dict) -> "LinkRecord":
        """Inverse of to_dict; ignores fields it does not know so old readers survive additions."""
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in known})


LINKS_EVENT = "send.links"
# what every link of one message shares (the event carries it once) and what each has of its own
_PER_MESSAGE = ("tenant", "lead_id", "send_id", "list", "template", "campaign", "partner")
_PER_LINK = ("code", "kind", "destination_url", "job_key", "position", "cpc_cents", "creative", "slot")


def links_event(records: Sequence[dict], causation_id: str | None, source: str) -> tuple[str, dict]:
    """One message's link records (LinkRecord.to_dict, one send) as the send.links event that
    keeps them durable; its id comes from the send id and the first code, so the same message
    composed again (a redelivered batch) makes the same event."""
    first = records[0]
    if any(r["send_id"] != first["send_id"] for r in records):
        raise ValueError("one send.links event holds the links of one message")
    ev = {"event_id": derived_event_id(first["send_id"], f"{LINKS_EVENT}:{first['code']}", first["created_ms"]),
          "occurred_at": first["created_ms"], "schema": schema_label(LINKS_EVENT),
          "causation_id": causation_id, "source": source}
    ev.update({k: first[k] for k in _PER_MESSAGE})
    ev["links"] = [{k: r[k] for k in _PER_LINK} for r in records]
    return LINKS_EVENT, ev


def records_of(ev: dict, created_ms: int) -> list[dict]:
    """The link records a send.links event holds, each as LinkRecord.to_dict gave it."""
    base = {k: ev.get(k, "") for k in _PER_MESSAGE} | {"created_ms": created_ms}
    return [LinkRecord.from_dict({**link, **base}).to_dict() for link in ev["links"]]


def tracked_url(base_url: str, kind: LinkKind, code: str) -> str:
    """The public URL for a code: {base}/c/{code}, /o/{code}, /u/{code} or /p/{code}."""
    if kind not in PATH_OF_KIND:
        raise ValueError(f"unknown link kind {kind!r}")
    if not is_code(code):
        raise ValueError(f"not a short code: {code!r}")
    return f"{base_url.rstrip('/')}/{PATH_OF_KIND[kind]}/{code}"


class TamperedToken(ValueError):
    """A sealed token that was altered, truncated, forged or sealed with a key we don't hold."""


class UnknownKey(TamperedToken):
    """A sealed token naming a key id that is not (or no longer) in the key ring."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _aad(key_id: str) -> bytes:
    # Binding version and key id into the tag means neither can be swapped on a token.
    return f"{TOKEN_VERSION}.{key_id}".encode("ascii")


def seal(payload: dict, key: bytes, key_id: str, nonce: bytes) -> str:
    """A URL-safe token holding payload, encrypted and authenticated with AES-GCM."""
    if not _KEY_ID.match(key_id):
        raise ValueError(f"key id must be 1-32 of [A-Za-z0-9_-], got {key_id!r}")
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"nonce must be {NONCE_BYTES} bytes, got {len(nonce)}")
    plain = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
    sealed = AESGCM(key).encrypt(nonce, plain, _aad(key_id))
    return f"{TOKEN_VERSION}.{key_id}.{_b64(nonce + sealed)}"


def unseal(token: str, keys: dict[str, bytes]) -> dict:
    """The payload of a sealed token; TamperedToken (or UnknownKey) if it can't be trusted."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_VERSION:
        raise TamperedToken("malformed token")
    _, key_id, body = parts
    key = keys.get(key_id)
    if key is None:
        raise UnknownKey(f"unknown key id {key_id!r}")
    try:
        raw = _unb64(body)
    except (binascii.Error, ValueError) as e:
        raise TamperedToken("token body is not base64url") from e
    if _b64(raw) != body:  # the decoder ignores stray characters and spare bits; we don't
        raise TamperedToken("token body is not canonical base64url")
    if len(raw) < NONCE_BYTES + 16:
        raise TamperedToken("token too short")
    try:
        plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(key_id))
    except InvalidTag as e:
        raise TamperedToken("token failed authentication") from e
    return json.loads(plain)
