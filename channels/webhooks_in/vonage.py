"""Vonage SMS API webhooks: delivery receipts and inbound messages (https://developer.vonage.com/en/api/sms#webhooks).

Vonage POSTs either a form (method "POST") or a JSON object of strings ("POST-JSON"); both
are read.

Delivery receipt: messageId (the message-id our send recorded), msisdn (the recipient), to (our
sender id), network-code, price, status, scts, err-code, message-timestamp ("2020-01-01 12:00:00",
UTC), client-ref (our send id, echoed), api-key.

    delivered                      -> delivered
    failed, rejected, expired      -> failed; bounce_type hard for err-code 3 (absent subscriber,
                                      permanent) and 9 (illegal number), soft otherwise;
                                      reason = "err-code: Vonage's description"
    accepted, buffered, unknown    skipped (not final)

Inbound message: msisdn (who wrote), to (our number), messageId, text, type, keyword,
message-timestamp -> reply. A long inbound message arrives in parts (concat, concat-ref,
concat-part, concat-total); each part is its own reply with its own text.

Security ("Signing Messages", https://developer.vonage.com/en/getting-started/concepts/signing-messages):
with signed webhooks on, every request carries `timestamp` (epoch seconds), `nonce` and `sig`.
sig is computed over all the other parameters sorted by name, each written "&name=value" with
'&' and '=' in values replaced by '_': md5hash = MD5 hex of that string followed by the
signature secret; md5 / sha1 / sha256 / sha512 = hex HMAC of the string keyed with the secret.
A missing or wrong sig, or a timestamp outside the replay window, is refused (401).
"""
from __future__ import annotations

import hashlib
import hmac
import urllib.parse
from typing import Mapping

from channels.webhooks_in.base import (
    Observation, Parsed, WebhookSecrets, bad_request, check_fresh, e164, iso_to_ms, load_json, lower_keys,
    now_or_clock, unauthorized, window,
)

PROVIDER = "vonage"
# Vonage signs the time it started to push the message (the first attempt) and keeps resending
# for 24 hours. A replay inside the window decides nothing twice (ids from Vonage's own).
MAX_AGE_S = 24 * 3600 + 300
FORM, JSON = "application/x-www-form-urlencoded", "application/json"
METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")
HARD_ERROR_CODES = {"3", "9"}
_FAILED = {"failed", "rejected", "expired"}
# Vonage's delivery receipt error codes (the DLR "err-code" table)
ERROR_CODES = {
    "0": "Delivered", "1": "Unknown", "2": "Absent Subscriber - Temporary", "3": "Absent Subscriber - Permanent",
    "4": "Call Barred by User", "5": "Portability Error", "6": "Anti-Spam Rejection", "7": "Handset Busy",
    "8": "Network Error", "9": "Illegal Number", "10": "Illegal Message", "11": "Unroutable",
    "12": "Destination Unreachable", "13": "Subscriber Age Restriction", "14": "Number Blocked by Carrier",
    "15": "Prepaid Insufficient Funds", "16": "Gateway Quota Exceeded", "50": "Entity Filter",
    "51": "Header Filter", "52": "Content Filter", "53": "Consent Filter", "54": "Regulation Error",
    "99": "General Error",
}


def fields_of(headers: Mapping[str, str], body: bytes) -> dict[str, str]:
    """The webhook's parameters from a form or a JSON body; 400 for anything else."""
    content_type = lower_keys(headers).get("content-type", FORM).split(";")[0].strip().lower()
    if content_type == JSON:
        data = load_json(body, "Vonage webhook")
        if not isinstance(data, dict):
            raise bad_request("Vonage webhook JSON must be an object")
        return {str(k): v if isinstance(v, str) else str(v) for k, v in data.items()
                if not isinstance(v, (dict, list)) and v is not None}
    if content_type != FORM:
        raise bad_request(f"Vonage webhooks are {FORM} or {JSON}, not {content_type}")
    try:
        return dict(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=1000))
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_request(f"Vonage body is not a UTF-8 form: {str(exc)[:100]}") from None


def sign(params: Mapping[str, str], secret: str, method: str = "sha256") -> str:
    """The `sig` Vonage computes for these parameters (every one but sig itself)."""
    if method not in METHODS:
        raise ValueError(f"Vonage signature method {method!r}: one of {', '.join(METHODS)}")
    text = "".join(f"&{name}={str(params[name]).replace('&', '_').replace('=', '_')}"
                   for name in sorted(params) if name != "sig").encode("utf-8")
    if method == "md5hash":
        return hashlib.md5(text + secret.encode()).hexdigest()
    return hmac.new(secret.encode(), text, method).hexdigest()


def verify(headers: Mapping[str, str], body: bytes, url: str, secrets: WebhookSecrets, now_s: float,
           cert_pem: bytes | None = None) -> None:
    """Check `sig` over the parameters and the signed timestamp's age; 401 if not right."""
    if not secrets.vonage_signature_secret:
        raise unauthorized("no Vonage signature secret configured")
    params = fields_of(headers, body)  # the signature is among the parameters: an unreadable body is a 400
    signature, timestamp = params.get("sig", "").strip().lower(), params.get("timestamp", "").strip()
    if not signature or not timestamp:
        raise unauthorized("Vonage webhook is not signed (sig and timestamp are required)")
    if not timestamp.isdigit():
        raise unauthorized("Vonage timestamp is not epoch seconds")
    try:
        expected = sign(params, secrets.vonage_signature_secret, secrets.vonage_signature_method)
    except ValueError as exc:
        raise unauthorized(str(exc)) from None
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise unauthorized("Vonage sig does not match")
    check_fresh(int(timestamp), now_s, window(secrets, MAX_AGE_S), "Vonage timestamp")


def _occurred_ms(fields: Mapping[str, str], now_s: float | None) -> int:
    stamp = fields.get("message-timestamp", "").strip()
    if stamp:
        return iso_to_ms(stamp.replace(" ", "T", 1), "Vonage message-timestamp")
    return int(now_or_clock(now_s) * 1000)


def parse(headers: Mapping[str, str], body: bytes, *, now_s: float | None = None) -> Parsed:
    """A delivery receipt's or an inbound message's observation; 400 if it is neither."""
    fields = fields_of(headers, body)
    message_id = fields.get("messageId", "").strip()
    if not message_id:
        raise bad_request("Vonage webhook has no messageId")
    if "status" not in fields:
        if "text" not in fields and "keyword" not in fields:
            raise bad_request("Vonage webhook is neither a delivery receipt (status) nor a message (text)")
        sender, ours = fields.get("msisdn", ""), fields.get("to", "")
        if not sender or not ours:
            raise bad_request("Vonage inbound message needs msisdn and to")
        sender = e164(sender)
        return Parsed([Observation(
            provider=PROVIDER, kind="reply", provider_event_id=f"{message_id}:received",
            provider_message_id=message_id, occurred_ms=_occurred_ms(fields, now_s), recipient=sender,
            from_number=sender, to_number=e164(ours), text=fields.get("text", ""))])
    status = fields["status"].strip().lower()
    if status != "delivered" and status not in _FAILED:
        return Parsed([])  # accepted, buffered, unknown: not final
    if not fields.get("msisdn"):
        raise bad_request("Vonage delivery receipt has no msisdn")
    failed = status in _FAILED
    code = fields.get("err-code", "").strip()
    reason = f"{status} {code}: {ERROR_CODES.get(code, 'unknown error code')}" if failed else ""
    return Parsed([Observation(
        provider=PROVIDER, kind="failed" if failed else "delivered", provider_event_id=f"{message_id}:{status}",
        provider_message_id=message_id, occurred_ms=_occurred_ms(fields, now_s),
        send_id=fields.get("client-ref", ""), recipient=e164(fields["msisdn"]),
        bounce_type=("hard" if code in HARD_ERROR_CODES else "soft") if failed else "", reason=reason)])
