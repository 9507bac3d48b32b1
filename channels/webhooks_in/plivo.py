"""Plivo message webhooks: status callbacks (the `url` we send with a message) and inbound messages.

Both are form-encoded POSTs (https://www.plivo.com/docs/messaging/concepts/callbacks,
https://www.plivo.com/docs/messaging/use-cases/receive-sms).

Status callback: MessageUUID, Status, ErrorCode, From, To, TotalRate, TotalAmount, Units, MCC,
MNC, PartInfo, ParentMessageUUID, MessageTime (when present; otherwise the time of receipt).

    delivered                       -> delivered
    undelivered, failed, rejected   -> failed; bounce_type hard for ErrorCode 50 (invalid destination
                                       number), 70 (destination permanently unavailable) and 200
                                       (the destination sent STOP), soft otherwise; reason = ErrorCode
                                       and Plivo's description
    queued, sent, read, ...         skipped (not final)

Inbound message: From (who wrote), To (our number), Text, Type ("sms"), MessageUUID, no Status
-> reply. Plivo writes numbers without '+': they are normalised to E.164.

Security (signature V3, https://www.plivo.com/docs/messaging/concepts/signature-validation):
headers X-Plivo-Signature-V3-Nonce and X-Plivo-Signature-V3 = base64(HMAC-SHA256(auth token,
signed URL + "." + nonce)), possibly several comma-separated (one per auth token in use). For a
POST with parameters the signed URL is the callback URL without its query, then "?", the query
parameters sorted by name as name=value joined by '&' and a "." if there were any, then every POST
parameter sorted by name as name + value (no separators); for a POST without parameters it is the
URL with its sorted query. The V3 scheme carries no timestamp: the nonce is the only replay
material Plivo gives, so the replay window cannot be enforced here.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from typing import Mapping

from channels.webhooks_in.base import (
    Observation, Parsed, WebhookSecrets, bad_request, e164, iso_to_ms, lower_keys, now_or_clock, unauthorized,
)

PROVIDER = "plivo"
SIGNATURE_HEADER = "X-Plivo-Signature-V3"
NONCE_HEADER = "X-Plivo-Signature-V3-Nonce"
FORM = "application/x-www-form-urlencoded"
HARD_ERROR_CODES = {"50", "70", "200"}
_FAILED = {"undelivered", "failed", "rejected"}
# Plivo's message error codes (the ErrorCode of a failed or undelivered message)
ERROR_CODES = {
    "10": "Invalid Message", "20": "Network Error", "30": "Spam Detected", "40": "Invalid Source Number",
    "50": "Invalid Destination Number", "60": "Loop Detected", "70": "Destination Permanently Unavailable",
    "80": "Destination Temporarily Unavailable", "90": "No Route Available", "100": "Prohibited by Carrier",
    "110": "Message Too Long", "200": "Source Number Blocked by STOP from Destination Number",
    "300": "Failed to Dispatch Message", "420": "Message Expired", "900": "Insufficient Credit",
    "1000": "Unknown Error",
}


def _form(body: bytes) -> dict[str, list[str]]:
    """The POST parameters (every value of each); 400 when the body is not a form."""
    try:
        return urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=1000)
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_request(f"Plivo body is not a UTF-8 form: {str(exc)[:100]}") from None


def signed_url(url: str, params: Mapping[str, list[str]]) -> str:
    """The string Plivo's V3 signature covers (before ".nonce") for a POST of `params` to `url`."""
    parts = urllib.parse.urlsplit(url)
    base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    query_text = "&".join(f"{name}={value}" for name in sorted(query) for value in sorted(query[name]))
    if not params:
        return base + (f"?{query_text}" if query_text else "")
    return (base + "?" + query_text + ("." if query_text else "")
            + "".join(f"{name}{value}" for name in sorted(params) for value in sorted(params[name])))


def sign(url: str, params: Mapping[str, list[str]] | Mapping[str, str], nonce: str, auth_token: str) -> str:
    """The X-Plivo-Signature-V3 Plivo would send for a POST of `params` to `url` with this nonce."""
    lists = {k: v if isinstance(v, list) else [str(v)] for k, v in params.items()}
    text = f"{signed_url(url, lists)}.{nonce}".encode("utf-8")
    return base64.b64encode(hmac.new(auth_token.encode(), text, hashlib.sha256).digest()).decode()


def verify(headers: Mapping[str, str], body: bytes, url: str, secrets: WebhookSecrets, now_s: float,
           cert_pem: bytes | None = None) -> None:
    """Check X-Plivo-Signature-V3 against `url` (the full URL Plivo posted to); 401 if wrong."""
    h = lower_keys(headers)
    signatures, nonce = h.get(SIGNATURE_HEADER.lower(), "").strip(), h.get(NONCE_HEADER.lower(), "").strip()
    if not signatures or not nonce:
        raise unauthorized("missing X-Plivo-Signature-V3 or its nonce")
    if not secrets.plivo_auth_token:
        raise unauthorized("no Plivo auth token configured")
    expected = sign(url, _form(body), nonce, secrets.plivo_auth_token).encode()
    if not any(hmac.compare_digest(expected, s.strip().encode()) for s in signatures.split(",")):
        raise unauthorized("X-Plivo-Signature-V3 does not match")


def _occurred_ms(fields: Mapping[str, str], now_s: float | None) -> int:
    stamp = fields.get("MessageTime", "").strip()
    if stamp:
        return iso_to_ms(stamp.replace(" ", "T", 1), "Plivo MessageTime")
    return int(now_or_clock(now_s) * 1000)


def parse(headers: Mapping[str, str], body: bytes, *, now_s: float | None = None) -> Parsed:
    """A status callback's or an inbound message's observation; 400 if it is neither."""
    content_type = lower_keys(headers).get("content-type", FORM).split(";")[0].strip().lower()
    if content_type != FORM:
        raise bad_request(f"Plivo webhooks are {FORM}, not {content_type}")
    fields = {name: values[0] for name, values in _form(body).items()}
    uuid = fields.get("MessageUUID", "").strip()
    if not uuid:
        raise bad_request("Plivo webhook has no MessageUUID")
    status = fields.get("Status", "").strip().lower()
    if not status:
        if "Text" not in fields:
            raise bad_request("Plivo webhook is neither a status callback (Status) nor a message (Text)")
        sender, ours = fields.get("From", ""), fields.get("To", "")
        if not sender or not ours:
            raise bad_request("Plivo inbound message needs From and To")
        sender = e164(sender)
        return Parsed([Observation(
            provider=PROVIDER, kind="reply", provider_event_id=f"{uuid}:received", provider_message_id=uuid,
            occurred_ms=_occurred_ms(fields, now_s), recipient=sender, from_number=sender, to_number=e164(ours),
            text=fields["Text"])])
    if status != "delivered" and status not in _FAILED:
        return Parsed([])  # queued, sent, read, ...: not final
    if not fields.get("To"):
        raise bad_request("Plivo status callback has no To")
    failed = status in _FAILED
    code = fields.get("ErrorCode", "").strip()
    reason = f"{status} {code}: {ERROR_CODES.get(code, 'unknown error code')}" if failed else ""
    return Parsed([Observation(
        provider=PROVIDER, kind="failed" if failed else "delivered", provider_event_id=f"{uuid}:{status}",
        provider_message_id=uuid, occurred_ms=_occurred_ms(fields, now_s), recipient=e164(fields["To"]),
        bounce_type=("hard" if code in HARD_ERROR_CODES else "soft") if failed else "", reason=reason)])
