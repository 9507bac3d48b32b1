"""Telnyx Messaging webhooks (API v2): message.sent, message.finalized, message.received.

One JSON POST per event (https://developers.telnyx.com/docs/messaging/messages/receiving-webhooks):

    {"data": {"record_type": "event", "event_type": "message.finalized", "id": "<event uuid>",
              "occurred_at": "2026-11-26T09:00:00.000+00:00",
              "payload": {"id": "<message id, as our send recorded it>", "direction": "outbound",
                          "to": [{"phone_number": "+1...", "status": "delivered"}],
                          "from": {"phone_number": "+1..."}, "text": "...", "errors": [...]}},
     "meta": {"attempt": 1, "delivered_to": "https://..."}}

    message.finalized, to[].status delivered                       -> delivered (one per recipient)
    message.finalized, to[].status delivery_failed, sending_failed -> failed; reason = the payload's
        errors ("code title"); bounce_type hard for 40300 (blocked by the recipient's STOP) and
        40310 (invalid 'to' number), soft otherwise
    message.received (payload.from.phone_number wrote to payload.to[0].phone_number) -> reply
    message.sent, other statuses (delivery_unconfirmed, ...), other event types  skipped

Security (https://developers.telnyx.com/docs/messaging/messages/receiving-webhooks#webhook-signing):
headers telnyx-signature-ed25519 (base64 Ed25519 signature) and telnyx-timestamp (epoch
seconds); the signed data is f"{timestamp}|{raw body}", checked with the account's public key
(base64 of the raw 32-byte key, as the portal shows it; PEM accepted). A stale timestamp is 401.
"""
from __future__ import annotations

import base64
import binascii
import functools
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from channels.webhooks_in.base import (
    Observation, Parsed, WebhookSecrets, b64decode_strict, bad_request, check_fresh, iso_to_ms, load_json,
    lower_keys, unauthorized, window,
)

PROVIDER = "telnyx"
# telnyx-timestamp is when this attempt was sent (Telnyx retries a few times within seconds,
# then the failover URL); Telnyx's own SDKs allow 300 s.
MAX_AGE_S = 300
SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"
HARD_ERROR_CODES = {"40300", "40310"}
_FINAL = {"delivered": "delivered", "delivery_failed": "failed", "sending_failed": "failed"}


@functools.lru_cache(maxsize=8)
def _public_key(key: str) -> Ed25519PublicKey:
    """The account's public key from base64 (raw 32 bytes, as the portal shows it) or PEM."""
    try:
        if "BEGIN PUBLIC KEY" in key:
            loaded = serialization.load_pem_public_key(key.encode())
            if not isinstance(loaded, Ed25519PublicKey):
                raise ValueError("not an Ed25519 key")
            return loaded
        return Ed25519PublicKey.from_public_bytes(base64.b64decode("".join(key.split()), validate=True))
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"the Telnyx public key does not load: {exc}") from None


def generate_key_pair() -> tuple[bytes, str]:
    """(private key PEM, public key base64): a dev pair for the stand-in and tests."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return pem, base64.b64encode(raw).decode()


def sign(body: bytes, private_pem: bytes, now_s: float) -> dict[str, str]:
    """The signature headers Telnyx would send with `body` at `now_s`."""
    private = serialization.load_pem_private_key(private_pem, password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError("the Telnyx signing key must be Ed25519")
    timestamp = str(int(now_s))
    signature = private.sign(timestamp.encode() + b"|" + body)
    return {SIGNATURE_HEADER: base64.b64encode(signature).decode(), TIMESTAMP_HEADER: timestamp}


def verify(headers: Mapping[str, str], body: bytes, url: str, secrets: WebhookSecrets, now_s: float,
           cert_pem: bytes | None = None) -> None:
    """Check the Ed25519 signature over timestamp|body and the timestamp's age; 401 if not right."""
    h = lower_keys(headers)
    signature, timestamp = h.get(SIGNATURE_HEADER, "").strip(), h.get(TIMESTAMP_HEADER, "").strip()
    if not signature or not timestamp:
        raise unauthorized("missing telnyx-signature-ed25519 or telnyx-timestamp")
    if not secrets.telnyx_public_key:
        raise unauthorized("no Telnyx public key configured")
    try:
        key = _public_key(secrets.telnyx_public_key)
    except ValueError as exc:
        raise unauthorized(str(exc)) from None
    if not timestamp.isdigit():
        raise unauthorized("telnyx-timestamp is not epoch seconds")
    try:
        key.verify(b64decode_strict(signature, "telnyx-signature-ed25519"), timestamp.encode() + b"|" + body)
    except InvalidSignature:
        raise unauthorized("telnyx-signature-ed25519 does not match") from None
    check_fresh(int(timestamp), now_s, window(secrets, MAX_AGE_S), "telnyx-timestamp")


def _number(party: Any, what: str) -> str:
    if not isinstance(party, dict) or not isinstance(party.get("phone_number"), str) or not party["phone_number"]:
        raise bad_request(f"Telnyx {what} has no phone_number")
    return party["phone_number"]


def _reason(payload: Mapping[str, Any]) -> tuple[str, str]:
    """(reason text, first error code) from a payload's `errors`."""
    errors = [e for e in payload.get("errors") or [] if isinstance(e, dict)]
    reason = "; ".join(f"{e.get('code', '')} {e.get('title', '')}".strip() for e in errors)
    return reason, str(errors[0].get("code", "")) if errors else ""


def parse(headers: Mapping[str, str], body: bytes, *, now_s: float | None = None) -> Parsed:
    """The observations in one event; 400 if the body is not a Telnyx event."""
    document = load_json(body, "Telnyx webhook")
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict):
        raise bad_request("Telnyx webhook has no data object")
    event_type, event_id, payload = data.get("event_type"), data.get("id"), data.get("payload")
    if not isinstance(event_type, str) or not isinstance(event_id, str) or not event_id:
        raise bad_request("Telnyx event needs event_type and id")
    if not isinstance(payload, dict):
        raise bad_request("Telnyx event has no payload object")
    if event_type not in ("message.finalized", "message.received"):
        return Parsed([])  # message.sent and anything newer: nothing final to tell
    message_id = payload.get("id")
    if not isinstance(message_id, str) or not message_id:
        raise bad_request(f"Telnyx {event_type} payload has no id")
    occurred_ms = iso_to_ms(data.get("occurred_at"), "Telnyx occurred_at")
    recipients = payload.get("to")
    if not isinstance(recipients, list) or not recipients:
        raise bad_request(f"Telnyx {event_type} payload has no to list")
    if event_type == "message.received":
        sender = _number(payload.get("from"), "message.received from")
        return Parsed([Observation(
            provider=PROVIDER, kind="reply", provider_event_id=event_id, provider_message_id=message_id,
            occurred_ms=occurred_ms, recipient=sender, from_number=sender,
            to_number=_number(recipients[0], "message.received to"), text=str(payload.get("text") or ""))])
    reason, code = _reason(payload)
    observations = []
    for recipient in recipients:
        kind = _FINAL.get(recipient.get("status", "") if isinstance(recipient, dict) else "")
        if kind is None:
            continue  # delivery_unconfirmed and the like: Telnyx will not learn more
        number = _number(recipient, "message.finalized to")
        observations.append(Observation(
            provider=PROVIDER, kind=kind,  # type: ignore[arg-type]  # a value of _FINAL
            provider_event_id=event_id if len(recipients) == 1 else f"{event_id}:{number}",
            provider_message_id=message_id, occurred_ms=occurred_ms, recipient=number,
            bounce_type=("hard" if code in HARD_ERROR_CODES else "soft") if kind == "failed" else "",
            reason=reason if kind == "failed" else ""))
    return Parsed(observations)
