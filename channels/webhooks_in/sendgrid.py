"""SendGrid's Event Webhook, signed (Twilio SendGrid "Signed Event Webhook Requests").

Wire format (https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event):
a POST whose JSON body is an array of events, each with `event`, `email`, `timestamp` (epoch
seconds), `sg_event_id`, `sg_message_id` (the X-Message-Id of the send, then '.filter…'), and
the send's custom_args as top-level keys (our `send_id`). Event-specific fields:

    processed                      skipped (we know we handed it over)
    delivered   response           -> delivered
    deferred    response, attempt  -> deferred
    bounce      type "bounce"      -> bounced hard; type "blocked" -> bounced soft (reason, status)
    dropped     reason             -> bounced hard when reason is "Bounced Address", else failed
    open        useragent, ip, sg_machine_open -> opened (reason "machine_open" for machine opens)
    click       url, useragent, ip -> clicked
    spamreport                     -> complained
    unsubscribe                    -> unsubscribed (from everything)
    group_unsubscribe (asm_group_id) -> left_list: only the list of the message (an unsubscribe
                                    group is one kind of mail, not all of it)
    anything else (group_resubscribe, account events, new types) is skipped

Security: headers X-Twilio-Email-Event-Webhook-Signature (base64 DER ECDSA signature) and
X-Twilio-Email-Event-Webhook-Timestamp; the signed data is the timestamp followed by the raw
body bytes, ECDSA P-256 with SHA-256, checked with the verification key SendGrid shows
(base64 DER SubjectPublicKeyInfo).
"""
from __future__ import annotations

import base64
import functools
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from channels.webhooks_in.base import (
    Observation, Parsed, WebhookSecrets, b64decode_strict, bad_request, check_fresh, load_json,
    lower_keys, opt_text, text_field, unauthorized, window,
)

PROVIDER = "sendgrid"
# SendGrid retries events "for up to 24 hours after the event occurs" and does not say whether a
# retry is signed anew: a retry's timestamp may be that old. A replay inside the window decides
# nothing twice (our event id comes from sg_event_id).
MAX_AGE_S = 24 * 3600 + 300
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
SKIPPED = {"processed", "group_resubscribe"}
_DELIVERY = {"delivered", "deferred", "bounce", "dropped"}
_SIMPLE = {"delivered": "delivered", "deferred": "deferred", "open": "opened", "click": "clicked",
           "spamreport": "complained", "unsubscribe": "unsubscribed", "group_unsubscribe": "left_list"}


@functools.lru_cache(maxsize=8)
def _public_key(key: str) -> ec.EllipticCurvePublicKey:
    """The verification key from base64 DER (as SendGrid shows it) or PEM."""
    try:
        if "BEGIN PUBLIC KEY" in key:
            loaded = serialization.load_pem_public_key(key.encode())
        else:
            loaded = serialization.load_der_public_key(base64.b64decode("".join(key.split())))
    except ValueError as exc:
        raise ValueError(f"the SendGrid verification key does not load: {exc}") from None
    if not isinstance(loaded, ec.EllipticCurvePublicKey):
        raise ValueError("the SendGrid verification key is not an elliptic-curve key")
    return loaded


def verify(headers: Mapping[str, str], body: bytes, url: str, secrets: WebhookSecrets, now_s: float,
           cert_pem: bytes | None = None) -> None:
    """Check the ECDSA signature over timestamp + body and the timestamp's age; 401 if not right."""
    h = lower_keys(headers)
    signature, timestamp = h.get(SIGNATURE_HEADER.lower(), ""), h.get(TIMESTAMP_HEADER.lower(), "").strip()
    if not signature or not timestamp:
        raise unauthorized("missing SendGrid signature or timestamp header")
    if not secrets.sendgrid_public_key:
        raise unauthorized("no SendGrid verification key configured")
    try:
        key = _public_key(secrets.sendgrid_public_key)
    except ValueError as exc:
        raise unauthorized(str(exc)) from None
    if not timestamp.isdigit():
        raise unauthorized("SendGrid timestamp header is not epoch seconds")
    try:
        key.verify(b64decode_strict(signature, "SendGrid signature"), timestamp.encode() + body,
                   ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise unauthorized("SendGrid signature does not match") from None
    check_fresh(int(timestamp), now_s, window(secrets, MAX_AGE_S), "SendGrid timestamp")


def parse(headers: Mapping[str, str], body: bytes, *, now_s: float | None = None) -> Parsed:
    """The observations in an Event Webhook POST; 400 for anything that is not one."""
    events = load_json(body, "SendGrid event body")
    if not isinstance(events, list):
        raise bad_request("SendGrid event body must be a JSON array of events")
    observations = []
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            raise bad_request(f"SendGrid event {i} is not an object")
        if (observation := _observation(event, i)) is not None:
            observations.append(observation)
    return Parsed(observations)


def _observation(event: dict[str, Any], i: int) -> Observation | None:
    name = text_field(event, "event", f"SendGrid event {i}")
    if name in SKIPPED or (name not in _SIMPLE and name not in ("bounce", "dropped")):
        return None
    what = f"SendGrid {name} event {i}"
    timestamp = event.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
        raise bad_request(f"{what}: timestamp is missing or not epoch seconds")
    kind, bounce_type = _SIMPLE.get(name, "bounced"), ""
    reason = opt_text(event, "reason") or opt_text(event, "response")
    if name == "bounce":
        bounce_type = "soft" if event.get("type") == "blocked" else "hard"
    elif name == "dropped":
        kind, bounce_type = ("bounced", "hard") if reason == "Bounced Address" else ("failed", "")
    elif name == "open" and event.get("sg_machine_open") in (True, "true"):
        reason = "machine_open"
    elif name == "group_unsubscribe" and event.get("asm_group_id") is not None:
        reason = f"asm_group_id {event['asm_group_id']}"
    return Observation(
        provider=PROVIDER, kind=kind,
        provider_event_id=text_field(event, "sg_event_id", what),
        provider_message_id=text_field(event, "sg_message_id", what).split(".", 1)[0],
        occurred_ms=int(timestamp * 1000), send_id=opt_text(event, "send_id"),
        recipient=text_field(event, "email", what), bounce_type=bounce_type, reason=reason,
        url=opt_text(event, "url") if name == "click" else "",
        # delivery events carry SendGrid's sending IP, engagement events the reader's
        user_agent=opt_text(event, "useragent"), ip="" if name in _DELIVERY else opt_text(event, "ip"),
    )


# ---- signing, for the local stand-in and tests --------------------------------------------

def generate_key_pair() -> tuple[bytes, str]:
    """(private key PEM, public key as base64 DER) of a fresh P-256 key, like SendGrid's pair."""
    private = ec.generate_private_key(ec.SECP256R1())
    public_der = private.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return pem, base64.b64encode(public_der).decode()


def sign(body: bytes, private_key_pem: bytes, timestamp: float) -> dict[str, str]:
    """The two signature headers SendGrid would send with `body` at `timestamp`."""
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    stamp = str(int(timestamp))
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {SIGNATURE_HEADER: base64.b64encode(signature).decode(), TIMESTAMP_HEADER: stamp}
