"""Personal fields sealed with a lead's own data key (AES-256-GCM), and data keys wrapped by a
key-encryption key (KEK). Pure: the caller passes the keys and the nonces (os.urandom(12)).

A sealed field is text: "ls1." + base64url(nonce | ciphertext | tag). Its associated data binds
it to its tenant, lead and field, so a value copied into another lead's event, or into another
field, does not open. A wrapped data key is "kek_id." + base64url(nonce | wrapped | tag), bound
to its tenant and lead the same way. Destroying a lead's data key (erasure) leaves every field
sealed with it unreadable, wherever a copy of the event lies.
"""
from __future__ import annotations

import base64
import binascii
import ipaddress

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "ls1."
KEY_BYTES = 32
NONCE_BYTES = 12


class SealError(ValueError):
    """A sealed value or wrapped key that does not open (wrong key, tampered, or not one)."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise SealError("not base64") from exc


def field_aad(tenant: str, lead: str, field: str) -> bytes:
    return f"field\x1f{tenant}\x1f{lead}\x1f{field}".encode()


def key_aad(tenant: str, lead: str) -> bytes:
    return f"dek\x1f{tenant}\x1f{lead}".encode()


def is_sealed(value) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def seal(dek: bytes, nonce: bytes, plaintext: str, aad: bytes) -> str:
    """The sealed form of one field."""
    return _seal(AESGCM(dek), nonce, plaintext, aad)


def _seal(aead: AESGCM, nonce: bytes, plaintext: str, aad: bytes) -> str:
    return PREFIX + _b64(nonce + aead.encrypt(nonce, plaintext.encode(), aad))


def open_sealed(dek: bytes, sealed: str, aad: bytes) -> str:
    """The field's text; SealError when it does not open with this key and binding."""
    return _open(AESGCM(dek), sealed, aad)


def _open(aead: AESGCM, sealed: str, aad: bytes) -> str:
    if not is_sealed(sealed):
        raise SealError("not a sealed value")
    raw = _unb64(sealed[len(PREFIX):])
    if len(raw) < NONCE_BYTES + 16:
        raise SealError("too short to be sealed")
    try:
        return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad).decode()
    except (InvalidTag, UnicodeDecodeError) as exc:
        raise SealError("does not open with this key") from exc


def wrap(kek_id: str, kek: bytes, nonce: bytes, dek: bytes, aad: bytes) -> str:
    """A data key wrapped by the KEK `kek_id`."""
    return f"{kek_id}.{_b64(nonce + AESGCM(kek).encrypt(nonce, dek, aad))}"


def wrapped_by(wrapped: str) -> str:
    """The id of the KEK a wrapped key needs."""
    return wrapped.split(".", 1)[0]


def unwrap(keks: dict[str, bytes], wrapped: str, aad: bytes) -> bytes:
    """The data key, with whichever of the KEKs wrapped it; SealError when none did."""
    kek_id, _, body = wrapped.partition(".")
    kek = keks.get(kek_id)
    if kek is None:
        raise SealError(f"wrapped by KEK {kek_id!r}, which is not in the key ring")
    raw = _unb64(body)
    try:
        dek = AESGCM(kek).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad)
    except InvalidTag as exc:
        raise SealError(f"does not unwrap with KEK {kek_id!r}") from exc
    if len(dek) != KEY_BYTES:
        raise SealError("not a data key")
    return dek


def parse_key_ring(text: str) -> tuple[str, dict[str, bytes]]:
    """"id:base64key,id:base64key" (the current KEK first) -> (current id, {id: key})."""
    ring: dict[str, bytes] = {}
    for n, part in enumerate((p.strip() for p in text.split(",")), 1):
        if not part:
            continue
        kek_id, sep, b64 = part.partition(":")
        if not sep or not kek_id or "." in kek_id:  # never echoed: it may be the key itself
            raise ValueError(f"entry {n} of the ring is not id:base64 (a KEK id without dots, then its key)")
        try:
            key = base64.b64decode(b64, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"KEK {kek_id!r} is not base64") from exc
        if len(key) != KEY_BYTES:
            raise ValueError(f"KEK {kek_id!r} is {len(key)} bytes: a KEK is 32 bytes (AES-256)")
        ring[kek_id] = key
    if not ring:
        raise ValueError("the KEK ring holds no key")
    return next(iter(ring)), ring


# the personal fields of each event, sealed with the lead's data key where the event is made;
# "consent.ip" is the field ip of the record in the event's field consent
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "consent.given": ("text", "ip"),
    "consent.withdrawn": ("text", "ip"),
    "lead.submitted": ("address", "email", "phone", "first_name", "last_name", "consent.ip", "consent.text"),
    "lead.accepted": ("address", "first_name", "last_name", "consent.ip", "consent.text"),
    "lead.rejected": ("address",),
    "lead.resubmitted": ("first_name", "last_name"),
    "lead.unsubscribed": ("address",),
    "lead.resubscribed": ("address",),
    # where a person opened or clicked from: the bot filter reads it, analysts never need it;
    # a provider's word on a message: the address it went to, a text's number and its words (the
    # engagement agent opens them to read the keyword; the intent and keyword stay clear)
    "engagement.hit": ("ip",),
    "webhook.observation": ("ip", "recipient", "from_number", "text"),
    "engagement.opened": ("ip",),
    "engagement.clicked": ("ip",),
    "engagement.replied": ("from_number", "text"),
}


def coarse_ip(ip: str) -> str:
    """The network an address is in, not the address: IPv4 to its /24, IPv6 to its /48 (what is
    written when no data key can seal it). Text that is not an address gives ""."""
    try:
        address = ipaddress.ip_address(ip.strip().strip("[]").split("%")[0])
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def _get(ev: dict, path: str):
    head, _, rest = path.partition(".")
    value = ev.get(head)
    if not rest:
        return value
    return value.get(rest) if isinstance(value, dict) else None


def _with(ev: dict, values: dict[str, object]) -> dict:
    """A copy of the event with these fields (paths) replaced; nested records copied, never changed."""
    out = dict(ev)
    for path, value in values.items():
        head, _, rest = path.partition(".")
        if rest:
            out[head] = {**out[head], rest: value}
        else:
            out[head] = value
    return out


def has_clear(name: str, ev: dict) -> bool:
    """Whether any personal field of the event is set and not sealed."""
    return any((v := _get(ev, f)) and not is_sealed(v) for f in PERSONAL_FIELDS.get(name, ()))


def has_sealed(name: str, ev: dict) -> bool:
    """Whether any personal field of the event is sealed."""
    return any(is_sealed(_get(ev, f)) for f in PERSONAL_FIELDS.get(name, ()))


def emptied_clear(name: str, ev: dict) -> dict:
    """The event with its clear personal fields emptied (an erased person's, written before
    sealing: no key can seal them any more); sealed ones stay as they are."""
    clear = {f: "" for f in PERSONAL_FIELDS.get(name, ()) if (v := _get(ev, f)) and not is_sealed(v)}
    return _with(ev, clear) if clear else ev


def seal_event(name: str, ev: dict, dek: bytes, nonce) -> dict:
    """The event with its personal fields sealed (None and "" stay as they are); `nonce()` gives
    12 bytes."""
    todo = {f: v for f in PERSONAL_FIELDS.get(name, ()) if (v := _get(ev, f)) and not is_sealed(v)}
    if not todo:
        return ev
    aead = AESGCM(dek)
    return _with(ev, {f: _seal(aead, nonce(), v, field_aad(ev["tenant"], ev["lead_id"], f"{name}.{f}"))
                      for f, v in todo.items()})


def open_event(name: str, ev: dict, dek: bytes | None) -> dict:
    """The event with its sealed fields opened; without the key (erased), they read None.
    SealError when a field does not open with the key."""
    sealed = {f: v for f in PERSONAL_FIELDS.get(name, ()) if is_sealed(v := _get(ev, f))}
    if not sealed:
        return dict(ev)
    return _with(ev, {f: None if dek is None else open_sealed(dek, v, field_aad(ev["tenant"], ev["lead_id"],
                                                                                 f"{name}.{f}"))
                      for f, v in sealed.items()})


def open_readable(name: str, ev: dict, dek: bytes | None) -> tuple[dict, int]:
    """(the event with each sealed field opened, None where it does not open: no key, or a value
    sealed for another lead or field; how many did not open)."""
    sealed = {f: v for f in PERSONAL_FIELDS.get(name, ()) if is_sealed(v := _get(ev, f))}
    if not sealed:
        return dict(ev), 0
    aead = AESGCM(dek) if dek is not None else None
    opened: dict[str, str | None] = {}
    for f, v in sealed.items():
        try:
            opened[f] = None if aead is None else _open(aead, v, field_aad(ev["tenant"], ev["lead_id"], f"{name}.{f}"))
        except SealError:
            opened[f] = None
    return _with(ev, opened), sum(1 for v in opened.values() if v is None)


def ip_kept(ev: dict) -> dict:
    """The event as written where its ip could not be sealed: the ip's network only."""
    return ev if not ev.get("ip") or is_sealed(ev["ip"]) else {**ev, "ip": coarse_ip(ev["ip"])}
