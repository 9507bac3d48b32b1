"""Mailgun's webhooks (https://documentation.mailgun.com/docs/mailgun/user-manual/tracking-messages/#webhooks).

Wire format: one POST per event, a JSON object

    {"signature": {"timestamp": "1529006854", "token": "a8ce0edb2dd8...", "signature": "d2271d12..."},
     "event-data": {"event": "delivered", "id": "CPgfbmQMTCKtHW6uIWtuVe", "timestamp": 1521472262.908181,
                    "recipient": "alice@example.com", "message": {"headers": {"message-id": "2018...@example.com"}},
                    "user-variables": {"send_id": "..."}, ...}}

`id` is the event's id (the dedupe key); `message.headers.message-id` the Message-Id of our
message (what the send adapter records, without the angle brackets Mailgun's send answer has);
`user-variables` echo the `v:` variables we sent, among them our `send_id`. Events:

    delivered                        -> delivered (delivery-status.message)
    failed, severity "permanent"     -> bounced hard; reason "suppress-unsubscribe" / "suppress-complaint"
                                        (Mailgun did not try: on its own lists) -> failed; reason "old"
                                        (temporary failures until Mailgun gave up) -> bounced soft
    failed, severity "temporary"     -> deferred (Mailgun retries; the last word is delivered or failed)
    rejected                         -> failed (Mailgun refused to send it)
    opened / clicked                 -> opened / clicked (client-info.user-agent, ip, url)
    unsubscribed / complained        -> unsubscribed / complained
    accepted, stored, list events, new types: skipped

Security: `signature.signature` is the hex HMAC-SHA256, keyed with the account's HTTP webhook
signing key, of `timestamp` followed by `token`. A timestamp outside the replay window is refused.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Any, Mapping

from channels.webhooks_in.base import (
    Observation, Parsed, WebhookSecrets, bad_request, check_fresh, load_json, opt_text, text_field, unauthorized,
    window,
)

PROVIDER = "mailgun"
# Mailgun retries a webhook for 8 hours (5, 10, 15 min, 1, 2, 4 h) and does not say whether a
# retry is signed anew: a retry's timestamp may be that old. A replay inside the window decides
# nothing twice (our event id comes from the event's own id).
MAX_AGE_S = 8 * 3600 + 300
_SIMPLE = {"delivered": "delivered", "opened": "opened", "clicked": "clicked", "unsubscribed": "unsubscribed",
           "complained": "complained", "rejected": "failed"}
_NOT_TRIED = {"suppress-unsubscribe", "suppress-complaint"}  # permanent, but no bounce of this message


def signature(signing_key: str, timestamp: str, token: str) -> str:
    """The hex HMAC-SHA256 Mailgun puts in signature.signature."""
    return hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def _document(body: bytes) -> dict[str, Any]:
    doc = load_json(body, "Mailgun webhook body")
    if not isinstance(doc, dict):
        raise bad_request("Mailgun webhook body must be a JSON object with signature and event-data")
    return doc


def verify(headers: Mapping[str, str], body: bytes, url: str, secrets: WebhookSecrets, now_s: float,
           cert_pem: bytes | None = None) -> None:
    """Check signature.signature against HMAC(signing key, timestamp + token) and the timestamp's
    age; 401 if not right (400 when the body is not even a JSON object)."""
    doc = _document(body)
    if not secrets.mailgun_signing_key:
        raise unauthorized("no Mailgun webhook signing key configured")
    signed = doc.get("signature")
    if not isinstance(signed, dict):
        raise unauthorized("the Mailgun webhook has no signature object")
    timestamp, token, given = (signed.get(k) for k in ("timestamp", "token", "signature"))
    if not all(isinstance(v, (str, int)) and not isinstance(v, bool) and str(v) for v in (timestamp, token, given)):
        raise unauthorized("the Mailgun signature needs timestamp, token and signature")
    timestamp, token, given = str(timestamp).strip(), str(token), str(given).strip().lower()
    if not timestamp.isdigit():
        raise unauthorized("the Mailgun signature timestamp is not epoch seconds")
    if not hmac.compare_digest(signature(secrets.mailgun_signing_key, timestamp, token).encode(), given.encode()):
        raise unauthorized("Mailgun signature does not match")
    check_fresh(int(timestamp), now_s, window(secrets, MAX_AGE_S), "Mailgun signature timestamp")


def parse(headers: Mapping[str, str], body: bytes, *, now_s: float | None = None) -> Parsed:
    """The observation in one Mailgun webhook POST (none for events we skip); 400 if not one."""
    data = _document(body).get("event-data")
    if not isinstance(data, dict):
        raise bad_request("Mailgun webhook has no event-data object")
    observation = _observation(data)
    return Parsed([observation] if observation is not None else [])


def _observation(data: dict[str, Any]) -> Observation | None:
    name = text_field(data, "event", "Mailgun event-data")
    if name != "failed" and name not in _SIMPLE:
        return None
    what = f"Mailgun {name} event"
    timestamp = data.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
        raise bad_request(f"{what}: timestamp is missing or not epoch seconds")
    message = data.get("message")
    message_headers = message.get("headers") if isinstance(message, dict) else None
    if not isinstance(message_headers, dict):
        raise bad_request(f"{what}: message.headers is missing")
    message_id = text_field(message_headers, "message-id", f"{what} message.headers").strip().strip("<>")
    variables = data.get("user-variables")
    variables = variables if isinstance(variables, dict) else {}
    client = data.get("client-info")
    client = client if isinstance(client, dict) else {}
    kind, bounce_type, reason = _SIMPLE.get(name, ""), "", _reason(data)
    if name == "failed":
        kind, bounce_type = _failure(data, what)
    return Observation(
        provider=PROVIDER, kind=kind, provider_event_id=text_field(data, "id", what),
        provider_message_id=message_id, occurred_ms=int(round(timestamp * 1000)),
        send_id=opt_text(variables, "send_id"), recipient=text_field(data, "recipient", what),
        bounce_type=bounce_type, reason=reason, url=opt_text(data, "url") if name == "clicked" else "",
        user_agent=opt_text(client, "user-agent") if name in ("opened", "clicked", "unsubscribed", "complained") else "",
        ip=opt_text(data, "ip") if name in ("opened", "clicked", "unsubscribed") else "",
    )


def _failure(data: dict[str, Any], what: str) -> tuple[str, str]:
    """(kind, bounce_type) of a failed event, from its severity and reason."""
    severity, reason = data.get("severity"), opt_text(data, "reason")
    if severity == "temporary":
        return "deferred", ""
    if severity != "permanent":
        raise bad_request(f"{what}: severity must be permanent or temporary, not {str(severity)[:30]!r}")
    if reason in _NOT_TRIED:
        return "failed", ""
    return "bounced", "soft" if reason == "old" else "hard"


def _reason(data: dict[str, Any]) -> str:
    """The SMTP answer Mailgun reports ('550 5.1.1 No such user'), else its reason code."""
    status = data.get("delivery-status")
    status = status if isinstance(status, dict) else {}
    text = opt_text(status, "message") or opt_text(status, "description")
    code = opt_text(status, "code")
    reject = data.get("reject")
    if not text and isinstance(reject, dict):
        text = opt_text(reject, "reason")
    said = f"{code} {text}".strip() if text else ""
    return said or opt_text(data, "reason")


# ---- signing, for the local stand-in and tests --------------------------------------------

def signed_body(event_data: Mapping[str, Any], signing_key: str, timestamp: float, token: str) -> dict[str, Any]:
    """The JSON document Mailgun would POST for `event_data`, signed at `timestamp` with `token`."""
    stamp = str(int(timestamp))
    return {"signature": {"timestamp": stamp, "token": token, "signature": signature(signing_key, stamp, token)},
            "event-data": dict(event_data)}
