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

import orjson
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
    "webhook.received": ("body",),  # a provider's raw request about one lead
    "engagement.opened": ("ip",),
    "engagement.clicked": ("ip",),
    "engagement.replied": ("from_number", "text"),
}


# events with a JSON object of free properties (a brand's product events): each value is sealed
# on its own (its name stays clear: what analysts group by), except the names the brand keeps
# clear (triggering.clear_properties); a sealed value opens to its JSON type again
# (field, where its object of properties lies in the field's JSON, names never sealed); a
# triggered message's request carries the properties of the event that caused it
SEALED_PROPERTIES: dict[str, tuple[str, tuple[str, ...], frozenset[str]]] = {
    "product.tracked": ("properties", (), frozenset()),
    "send.requested": ("context", ("event",), frozenset({"name"})),
}
NOTHING_KEPT: frozenset[str] = frozenset()


def coarse_ip(ip: str) -> str:
    """The network an address is in, not the address: IPv4 to its /24, IPv6 to its /48 (what is
    written when no data key can seal it). Text that is not an address gives ""."""
    quad = ip.strip().split(".")
    if len(quad) == 4 and all(_octet(q) for q in quad):  # the usual case, without ipaddress' cost
        return f"{quad[0]}.{quad[1]}.{quad[2]}.0"
    try:
        address = ipaddress.ip_address(ip.strip().strip("[]").split("%")[0])
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def _octet(text: str) -> bool:
    """A decimal IPv4 octet as ipaddress takes one: 0-255, no sign, no leading zero."""
    return 0 < len(text) <= 3 and text.isascii() and text.isdigit() and (text == "0" or text[0] != "0") \
        and int(text) <= 255


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


def _properties(name: str, ev: dict) -> tuple[str, dict, dict] | None:
    """(field, the field's JSON document, the object of properties in it) of an event with free
    properties that holds any; None otherwise."""
    spec = SEALED_PROPERTIES.get(name)
    raw = ev.get(spec[0]) if spec else None
    if not raw:
        return None
    try:
        doc = orjson.loads(raw) if isinstance(raw, (str, bytes)) else raw
    except orjson.JSONDecodeError:
        return None
    obj = doc
    for step in spec[1]:
        obj = obj.get(step) if isinstance(obj, dict) else None
    return (spec[0], doc, obj) if isinstance(obj, dict) and obj else None


def _rebuilt(name: str, doc: dict, obj: dict) -> str:
    """The field's JSON with its object of properties replaced."""
    path = SEALED_PROPERTIES[name][1]
    if not path:
        return _json(obj)
    out = dict(doc)
    inner = out
    for step in path[:-1]:
        inner[step] = dict(inner[step])
        inner = inner[step]
    inner[path[-1]] = obj
    return _json(out)


def _clear_properties(name: str, ev: dict, keep: frozenset[str]) -> tuple[str, dict, dict, list[str]] | None:
    """(field, document, object, names of the values to seal) where a property outside `keep` is clear."""
    found = _properties(name, ev)
    if found is None:
        return None
    never = SEALED_PROPERTIES[name][2]
    todo = [k for k, v in found[2].items() if v is not None and k not in keep and k not in never and not is_sealed(v)]
    return (*found, todo) if todo else None


def _sealed_properties(name: str, ev: dict) -> tuple[str, dict, dict] | None:
    spec = SEALED_PROPERTIES.get(name)
    raw = ev.get(spec[0]) if spec else None
    if isinstance(raw, str) and f'"{PREFIX}' not in raw:
        return None  # the cheap test first: most events have no sealed value
    found = _properties(name, ev)
    return found if found is not None and any(is_sealed(v) for v in found[2].values()) else None


def _json(obj) -> str:
    return orjson.dumps(obj).decode()


def property_aad(tenant: str, lead: str, name: str, key: str) -> bytes:
    field, path, _ = SEALED_PROPERTIES[name]
    return field_aad(tenant, lead, ".".join((name, field, *path, key)))


def kept_properties(name: str, ev: dict, keep: frozenset[str]) -> dict:
    """The event with only the properties in `keep` (an event about nobody the platform knows:
    no data key can seal the others, and nobody could erase them)."""
    found = _properties(name, ev)
    if found is None:
        return ev
    field, doc, obj = found
    return {**ev, field: _rebuilt(name, doc, {k: v for k, v in obj.items() if k in keep})}


def has_clear(name: str, ev: dict, keep: frozenset[str] = NOTHING_KEPT) -> bool:
    """Whether any personal field of the event is set and not sealed (a property named in `keep`
    is not personal)."""
    return (any((v := _get(ev, f)) and not is_sealed(v) for f in PERSONAL_FIELDS.get(name, ()))
            or (name in SEALED_PROPERTIES and _clear_properties(name, ev, keep) is not None))


def has_sealed(name: str, ev: dict) -> bool:
    """Whether any personal field of the event is sealed."""
    return (any(is_sealed(_get(ev, f)) for f in PERSONAL_FIELDS.get(name, ()))
            or (name in SEALED_PROPERTIES and _sealed_properties(name, ev) is not None))


def emptied_clear(name: str, ev: dict) -> dict:
    """The event with its clear personal fields emptied (an erased person's, written before
    sealing: no key can seal them any more; free properties: null); sealed ones stay as they are."""
    clear: dict[str, object] = {f: "" for f in PERSONAL_FIELDS.get(name, ()) if (v := _get(ev, f)) and not is_sealed(v)}
    props = _clear_properties(name, ev, NOTHING_KEPT) if name in SEALED_PROPERTIES else None
    if props is not None:
        field, doc, obj, todo = props
        clear[field] = _rebuilt(name, doc, {**obj, **{k: None for k in todo}})
    return _with(ev, clear) if clear else ev


def seal_event(name: str, ev: dict, dek: bytes, nonce, keep: frozenset[str] = NOTHING_KEPT) -> dict:
    """The event with its personal fields sealed (None and "" stay as they are; free properties
    named in `keep` too); `nonce()` gives 12 bytes."""
    todo: dict[str, object] = {f: v for f in PERSONAL_FIELDS.get(name, ()) if (v := _get(ev, f)) and not is_sealed(v)}
    props = _clear_properties(name, ev, keep) if name in SEALED_PROPERTIES else None
    if not todo and props is None:
        return ev
    aead = AESGCM(dek)
    tenant, lead = ev["tenant"], ev["lead_id"]
    out = {f: _seal(aead, nonce(), v, field_aad(tenant, lead, f"{name}.{f}")) for f, v in todo.items()}
    if props is not None:
        field, doc, obj, names = props
        out[field] = _rebuilt(name, doc, {k: _seal(aead, nonce(), _json(v), property_aad(tenant, lead, name, k))
                                          if k in names else v for k, v in obj.items()})
    return _with(ev, out)


def _opened_properties(name: str, ev: dict, aead: AESGCM | None, strict: bool) -> tuple[dict, int]:
    """({field: the JSON with every sealed value opened (None where it does not: no key, or not
    this lead's)}, how many did not open); SealError instead when strict and one does not."""
    found = _sealed_properties(name, ev)
    if found is None:
        return {}, 0
    field, doc, obj = found
    out, unreadable = {}, 0
    for k, v in obj.items():
        if not is_sealed(v):
            out[k] = v
            continue
        try:
            if aead is None:
                raise SealError("no data key")
            out[k] = orjson.loads(_open(aead, v, property_aad(ev["tenant"], ev["lead_id"], name, k)))
        except (SealError, orjson.JSONDecodeError):
            if strict and aead is not None:
                raise
            out[k], unreadable = None, unreadable + 1
    return {field: _rebuilt(name, doc, out)}, unreadable


def open_event(name: str, ev: dict, dek: bytes | None) -> dict:
    """The event with its sealed fields opened; without the key (erased), they read None.
    SealError when a field does not open with the key."""
    sealed = {f: v for f in PERSONAL_FIELDS.get(name, ()) if is_sealed(v := _get(ev, f))}
    props, _ = _opened_properties(name, ev, AESGCM(dek) if dek is not None else None, strict=True)
    if not sealed and not props:
        return dict(ev)
    return _with(ev, {**{f: None if dek is None else open_sealed(dek, v, field_aad(ev["tenant"], ev["lead_id"],
                                                                                   f"{name}.{f}"))
                         for f, v in sealed.items()}, **props})


def open_readable(name: str, ev: dict, dek: bytes | None) -> tuple[dict, int]:
    """(the event with each sealed field opened, None where it does not open: no key, or a value
    sealed for another lead or field; how many did not open)."""
    sealed = {f: v for f in PERSONAL_FIELDS.get(name, ()) if is_sealed(v := _get(ev, f))}
    aead = AESGCM(dek) if dek is not None else None
    props, unreadable = _opened_properties(name, ev, aead, strict=False)
    if not sealed and not props:
        return dict(ev), 0
    opened: dict[str, object] = {}
    for f, v in sealed.items():
        try:
            opened[f] = None if aead is None else _open(aead, v, field_aad(ev["tenant"], ev["lead_id"], f"{name}.{f}"))
        except SealError:
            opened[f] = None
    return _with(ev, {**opened, **props}), unreadable + sum(1 for v in opened.values() if v is None)


def ip_kept(ev: dict) -> dict:
    """The event as written where its ip could not be sealed: the ip's network only."""
    return ev if not ev.get("ip") or is_sealed(ev["ip"]) else {**ev, "ip": coarse_ip(ev["ip"])}
