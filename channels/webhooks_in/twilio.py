"""Twilio Messaging webhooks: status callbacks (our StatusCallback) and incoming messages.

Both are application/x-www-form-urlencoded POSTs (https://www.twilio.com/docs/messaging/guides/
track-outbound-message-status, https://www.twilio.com/docs/messaging/guides/webhook-request).

Status callback: MessageSid (also SmsSid), MessageStatus (also SmsStatus), To, From, AccountSid,
ErrorCode (undelivered / failed), sometimes ErrorMessage.

    delivered               -> delivered
    undelivered, failed     -> failed; bounce_type hard for ErrorCode 30003 (unreachable handset),
                               30005 (unknown handset), 30006 (landline / unreachable carrier),
                               soft otherwise; reason = the ErrorCode
    queued, sending, sent, accepted, scheduled, read, canceled, ... skipped

Incoming message: MessageSid / SmsSid / SmsMessageSid, From, To, Body, SmsStatus "received"
(no MessageStatus) -> reply. Neither carries an event time: occurred_ms is the time of receipt.

Security (https://www.twilio.com/docs/usage/webhooks/webhooks-security): X-Twilio-Signature =
base64(HMAC-SHA1(auth token, full URL + every POST parameter's name and value, sorted by name)).
As Twilio's own validators do, the URL is also tried with the default port added / removed.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from typing import Iterable, Mapping

from channels.webhooks_in.base import (
    Observation, Parsed, WebhookSecrets, bad_request, lower_keys, now_or_clock, unauthorized,
)

PROVIDER = "twilio"
SIGNATURE_HEADER = "X-Twilio-Signature"
FORM = "application/x-www-form-urlencoded"
HARD_ERROR_CODES = {"30003", "30005", "30006"}
_FAILED = {"undelivered", "failed"}


def _form(body: bytes) -> list[tuple[str, str]]:
    """The POST parameters, in order; 400 when the body is not a form."""
    try:
        return urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=1000)
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_request(f"Twilio body is not a UTF-8 form: {str(exc)[:100]}") from None


def sign(url: str, params: Mapping[str, str] | Iterable[tuple[str, str]], auth_token: str) -> str:
    """The X-Twilio-Signature Twilio would send for a POST of `params` to `url`."""
    values: dict[str, set[str]] = {}
    for name, value in (params.items() if isinstance(params, Mapping) else params):
        values.setdefault(name, set()).add(value)
    data = url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def _url_variants(url: str) -> list[str]:
    """The URL as given, and with its default port removed or added (proxies differ on this)."""
    parts = urllib.parse.urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:
        return [url]
    if default is None or not parts.hostname or (port and port != default):
        return [url]
    netloc = parts.netloc.rsplit(":", 1)[0] if port else f"{parts.netloc}:{default}"
    return [url, urllib.parse.urlunsplit(parts._replace(netloc=netloc))]


def verify(headers: Mapping[str, str], body: bytes, url: str, secrets: WebhookSecrets, now_s: float,
           cert_pem: bytes | None = None) -> None:
    """Check X-Twilio-Signature against `url` (the full public URL Twilio posted to); 401 if wrong."""
    signature = lower_keys(headers).get(SIGNATURE_HEADER.lower(), "").strip()
    if not signature:
        raise unauthorized("missing X-Twilio-Signature")
    if not secrets.twilio_auth_token:
        raise unauthorized("no Twilio auth token configured")
    params = _form(body)
    for candidate in _url_variants(url):
        if hmac.compare_digest(sign(candidate, params, secrets.twilio_auth_token).encode(), signature.encode()):
            return
    raise unauthorized("X-Twilio-Signature does not match")


def parse(headers: Mapping[str, str], body: bytes, *, now_s: float | None = None) -> Parsed:
    """A status callback's or an incoming message's observation; 400 if it is neither."""
    content_type = lower_keys(headers).get("content-type", FORM).split(";")[0].strip().lower()
    if content_type != FORM:
        raise bad_request(f"Twilio webhooks are {FORM}, not {content_type}")
    fields = dict(_form(body))
    sid = fields.get("MessageSid") or fields.get("SmsSid") or fields.get("SmsMessageSid") or ""
    status = fields.get("MessageStatus") or fields.get("SmsStatus") or ""
    if not sid:
        raise bad_request("Twilio webhook has no MessageSid")
    occurred_ms = int(now_or_clock(now_s) * 1000)
    if status == "received" or (not status and "Body" in fields):
        sender, ours = fields.get("From", ""), fields.get("To", "")
        if not sender or not ours:
            raise bad_request("Twilio incoming message needs From and To")
        return Parsed([Observation(
            provider=PROVIDER, kind="reply", provider_event_id=f"{sid}:received", provider_message_id=sid,
            occurred_ms=occurred_ms, recipient=sender, from_number=sender, to_number=ours,
            text=fields.get("Body", ""))])
    if not status:
        raise bad_request("Twilio status callback has no MessageStatus")
    if status != "delivered" and status not in _FAILED:
        return Parsed([])  # queued, sending, sent, accepted, scheduled, read, canceled, …
    if not fields.get("To"):
        raise bad_request("Twilio status callback has no To")
    code = fields.get("ErrorCode", "").strip()
    failed = status in _FAILED
    reason = ": ".join(filter(None, [code, fields.get("ErrorMessage", "")])) if failed else ""
    return Parsed([Observation(
        provider=PROVIDER, kind="failed" if failed else "delivered", provider_event_id=f"{sid}:{status}",
        provider_message_id=sid, occurred_ms=occurred_ms, recipient=fields["To"],
        bounce_type=("hard" if code in HARD_ERROR_CODES else "soft") if failed else "", reason=reason)])
