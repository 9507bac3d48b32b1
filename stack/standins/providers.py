"""Local stand-ins for the email and SMS providers' HTTP APIs, in their documented formats.

One aiohttp app serves, at the providers' own paths:

- SendGrid v3    POST /v3/mail/send                                   Bearer API key
- Amazon SES v2  POST /v2/email/outbound-emails                       AWS SigV4 (verified)
- Twilio         POST /2010-04-01/Accounts/{AccountSid}/Messages.json HTTP Basic SID:token
- Esendex        POST /v1.0/messagedispatcher                         HTTP Basic, XML body
- Mailgun        POST /v3/{domain}/messages.mime                      HTTP Basic api:key (stack/standins/email_apis.py)
- Postmark       POST /email/batch                                    X-Postmark-Server-Token (email_apis.py)
- Vonage, Plivo and Telnyx (SMS): stack/standins/sms_gateways.py, mounted here (its docstring)

Each checks auth and the request's shape, answers like the provider (success and error
bodies), and records every accepted message. Tests steer and inspect it over HTTP:

- POST /control/{provider}  {"mode": "ok"|"fail"|"throttle"|"slow", "fail_next": N,
  "retry_after_s": 2, "delay_s": 1}: fail = 500, throttle = 429 with Retry-After, slow = answer
  after delay_s. With fail_next, only the next N requests misbehave, then mode returns to ok.
- GET /control/{provider}   the current mode and how many requests arrived
- GET /sent/{provider}      the accepted messages, in order; DELETE clears them and the count

It also plays the providers' side of their inbound webhooks (formats and signing in
`channels.webhooks_in`), with dev keys generated once per process at start:

- GET /webhook-keys  {"sendgrid_public_key": base64 DER of the dev ECDSA P-256 key, "sns_cert_url": the
  dev SNS certificate's URL (allow its prefix in WebhookSecrets.ses_cert_url_prefixes), "sns_topic_arn"}
- GET /sns/SimpleNotificationService-standin.pem  the self-signed dev SNS signing certificate
- POST /webhooks/emit  {"provider": ..., "target": "http://127.0.0.1:18080/webhooks/sendgrid",
  "events": [...], "tamper": false}: POSTs a correctly signed webhook in the provider's wire format to
  target (tamper=true flips one byte of the signature; for Esendex, of the Basic password) and answers
  {"status": <target's status>, "body": <target's body text>, "results": [one per POST]}; with several
  POSTs, status/body are the first non-2xx answer, else the last. `events` are:
    sendgrid  Event Webhook event dicts, sent as one JSON array signed with the dev key
    ses       SES event dicts (eventType, mail, ...), each in its own SNS Notification envelope signed
              (SignatureVersion 2) by the dev certificate on topic sns_topic_arn; an item with "Type":
              "SubscriptionConfirmation" | "UnsubscribeConfirmation" (+ "SubscribeURL", "Token") is sent as that
    twilio    status-callback / incoming-message form fields (AccountSid and ApiVersion added), one POST each,
              X-Twilio-Signature with the stand-in's auth token over target + params
    esendex   {"type": "MessageDelivered" | "MessageFailed" | "InboundMessage", "Id": ..., ...} elements
              (a dict value such as FailureReason nests), one XML POST each, HTTP Basic with the
              DEFAULT_CREDENTIALS esendex username / password
    mailgun   event-data dicts, one POST each, signed with the mailgun webhook_signing_key (also on
              /webhook-keys as mailgun_signing_key); tamper changes the signature
    postmark  webhook records (RecordType ...), one POST each, HTTP Basic with the postmark webhook_user /
              webhook_password

    python -m stack.standins.providers --port 8025

The credentials it accepts are `DEFAULT_CREDENTIALS` unless `start(credentials=...)` says else.
"""
from __future__ import annotations

import argparse
from collections import deque
import asyncio
import base64
import email.utils
import functools
import hashlib
import hmac
import json
import re
import secrets
import signal
import time
import urllib.parse
import xml.etree.ElementTree as ET  # builds answers; requests are parsed with defusedxml
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import aiohttp
from aiohttp import web
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from stack.standins.threaded import Steering, serve_in_thread
from channels.base import EmailMessage
from channels.dkim import SigningKey, sign_message
from channels.sendgrid import RESERVED_HEADERS
from channels.smtp_pool import mime_bytes
from streams.settings import get_settings
from channels.webhooks_in import esendex as esendex_hooks, sendgrid as sendgrid_hooks
from channels.webhooks_in import ses as ses_hooks, twilio as twilio_hooks
from channels.webhooks_in.base import tamper as tamper_signature
from stack.standins import sms_gateways

PROVIDERS = ("sendgrid", "ses", "twilio", "esendex")
PROVIDERS += ("mailgun", "postmark")  # served by stack/standins/email_apis.py
DEFAULT_CREDENTIALS: dict[str, dict[str, str]] = {
    "sendgrid": {"api_key": "SG.standin-key"},
    "ses": {"access_key_id": "AKIDSTANDIN", "secret_access_key": "standin/secret+key", "region": "eu-west-1"},
    "twilio": {"account_sid": "AC" + "0" * 32, "auth_token": "standin-token"},
    "esendex": {"username": "standin@example.com", "password": "standin-pass",
                "account_reference": "EX0000000"},
    "mailgun": {"api_key": "key-standin", "webhook_signing_key": "standin-mailgun-signing-key"},
    "postmark": {"server_token": "standin-postmark-server-token", "webhook_user": "postmark-hooks",
                 "webhook_password": "standin-postmark-hook-pass"},
}
ESENDEX_NS = "http://api.esendex.com/ns/"
MAX_REQUEST_BYTES = 50 * 1024 * 1024
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_MAX_CLOCK_SKEW_S = 15 * 60  # SigV4 refuses requests signed more than 15 minutes away
PROVIDERS += sms_gateways.PROVIDERS  # vonage, plivo, telnyx
DEFAULT_CREDENTIALS.update(sms_gateways.CREDENTIALS)


@dataclass
class ProviderState(Steering):
    """What one provider stand-in has seen and how it should behave."""

    # the last KEEP accepted messages: a long-running stand-in must not grow without bound
    accepted: deque = field(default_factory=lambda: deque(maxlen=KEEP))


KEEP = 20_000
CREDENTIALS = web.AppKey("credentials", dict)
STATES = web.AppKey("states", dict)


# ---- shared helpers -----------------------------------------------------------------------

def _basic_auth(request: web.Request) -> tuple[str, str] | None:
    """(user, password) from an HTTP Basic Authorization header, or None."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value).decode().partition(":")
    except ValueError:
        return None
    return user, password


def _json_error(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


async def _apply_mode(state: ProviderState,
                      fail: Callable[[int, dict[str, str]], web.Response]) -> web.Response | None:
    """Misbehave as told: a 500/429 answer from `fail`, a delay, or None to carry on."""
    mode = state.next_mode()
    if mode == "fail":
        return fail(500, {})
    if mode == "throttle":
        return fail(429, {"Retry-After": f"{state.retry_after_s:g}"})
    if mode == "slow":
        await asyncio.sleep(state.delay_s)
    return None


def _state(request: web.Request, provider: str) -> ProviderState:
    state: ProviderState = request.app[STATES][provider]
    state.requests += 1
    return state


# ---- SendGrid v3 --------------------------------------------------------------------------

def _sendgrid_error(status: int, headers: dict[str, str], message: str = "",
                    field_: str | None = None) -> web.Response:
    if status == 429:
        headers = {**headers, "X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0",
                   "X-RateLimit-Reset": str(int(time.time() + float(headers.get("Retry-After", "1"))))}
    message = message or {500: "internal server error", 429: "too many requests"}.get(status, "error")
    return _json_error(status, {"errors": [{"message": message, "field": field_, "help": None}]}, headers)


def _sendgrid_problems(body: Any) -> tuple[str, str] | None:
    """(field, message) for the first thing wrong with a mail/send body, or None."""
    if not isinstance(body, dict):
        return "", "Bad Request"
    people = body.get("personalizations")
    if not isinstance(people, list) or not people:
        return "personalizations", ("The personalizations field is required and must have at least "
                                    "one personalization.")
    for i, person in enumerate(people):
        for j, to in enumerate(person.get("to") or []):
            if not _EMAIL.match(str(to.get("email", ""))):
                return f"personalizations.{i}.to.{j}.email", "Does not contain a valid address."
    if not _EMAIL.match(str((body.get("from") or {}).get("email", ""))):
        return "from.email", "The from email does not contain a valid address."
    if not body.get("subject") and not all(p.get("subject") for p in people):
        return "subject", "The subject is required."
    content = body.get("content") or []
    types = [c.get("type") for c in content]
    if not content or any(not c.get("value") for c in content):
        return "content", "Unless a valid template_id is provided, the content parameter is required."
    if "text/plain" in types and types[0] != "text/plain":
        return "content.0.type", "If present, text/plain content must be first."
    for name in (body.get("headers") or {}):
        if str(name).lower() in RESERVED_HEADERS:
            return "headers", f"{name} is a reserved header and cannot be set in headers."
    return None


def provider_signed_mime(provider: str, message: EmailMessage) -> str:
    """The MIME message an API provider that builds mail itself delivers for `message`, DKIM-signed
    with the key the brand's domain authenticated with it (stack.mail_dns: generated on first use;
    ./dev dns prints its record)."""
    from stack.mail_dns import PROVIDER_SELECTORS, ensure_provider_key
    domain = message.from_addr.rpartition("@")[2].lower()
    raw, _ = mime_bytes(message, domain)
    key = ensure_provider_key(get_settings(), provider, domain).read_bytes()
    signed = sign_message(raw, [SigningKey(domain, PROVIDER_SELECTORS[provider], "rsa-sha256", key)])
    return signed.decode("utf-8", "replace")


def _sendgrid_message(body: dict, person: dict, to: str) -> EmailMessage:
    content = {c.get("type"): c.get("value", "") for c in body.get("content") or []}
    sender = body.get("from") or {}
    return EmailMessage(send_id=str((person.get("custom_args") or {}).get("send_id", "")),
                        from_addr=sender.get("email", ""), from_name=sender.get("name", ""), to_addr=to,
                        subject=person.get("subject") or body.get("subject", ""),
                        html=content.get("text/html", ""), text=content.get("text/plain", ""),
                        headers=body.get("headers") or {})


async def sendgrid_send(request: web.Request) -> web.Response:
    """POST /v3/mail/send: 202 with X-Message-Id, or SendGrid's error JSON."""
    state = _state(request, "sendgrid")
    key = request.app[CREDENTIALS]["sendgrid"]["api_key"]
    if request.headers.get("Authorization") != f"Bearer {key}":
        return _sendgrid_error(401, {}, "The provided authorization grant is invalid, expired, or revoked")
    if (failure := await _apply_mode(state, lambda s, h: _sendgrid_error(s, h))) is not None:
        return failure
    try:
        body = await request.json()
    except ValueError:
        return _sendgrid_error(400, {}, "Invalid JSON")
    if problem := _sendgrid_problems(body):
        return _sendgrid_error(400, {}, problem[1], problem[0])
    message_id = secrets.token_urlsafe(16)[:22]
    for person in body["personalizations"]:
        to = [t["email"] for t in person["to"]]
        state.accepted.append({"id": message_id, "to": to, "from": body["from"]["email"],
                               "subject": person.get("subject") or body.get("subject"),
                               "content_type": request.content_type, "request": body,
                               "raw": provider_signed_mime("sendgrid", _sendgrid_message(body, person, to[0]))})
    return web.Response(status=202, headers={"X-Message-Id": message_id})


# ---- Amazon SES v2 ------------------------------------------------------------------------

def _ses_error(status: int, error_type: str, message: str,
               headers: dict[str, str] | None = None) -> web.Response:
    """AWS REST-JSON error: type in x-amzn-ErrorType, {"message": ...} in the body."""
    return _json_error(status, {"message": message}, {"x-amzn-ErrorType": error_type, **(headers or {})})


def _ses_mode_error(status: int, headers: dict[str, str]) -> web.Response:
    if status == 429:
        return _ses_error(429, "TooManyRequestsException", "Maximum sending rate exceeded.", headers)
    return _ses_error(status, "InternalFailure",
                      "The request processing has failed because of an unknown error.")


def _canonical_query(query: str) -> str:
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    quote = lambda s: urllib.parse.quote(s, safe="-_.~")  # noqa: E731
    return "&".join(f"{quote(k)}={quote(v)}" for k, v in sorted(pairs))


def expected_sigv4(method: str, path: str, query: str, headers: dict[str, str], signed: list[str],
                   body: bytes, secret: str, scope: str, amz_date: str) -> str:
    """The SigV4 signature AWS would compute for this request (independent of the client's code)."""
    canonical_path = "/".join(urllib.parse.quote(urllib.parse.quote(seg, safe="-_.~"), safe="-_.~")
                              for seg in path.split("/")) or "/"
    canonical_headers = "".join(f"{h}:{' '.join(headers.get(h, '').split())}\n" for h in signed)
    canonical = "\n".join([method, canonical_path, _canonical_query(query), canonical_headers,
                           ";".join(signed), hashlib.sha256(body).hexdigest()])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in scope.split("/"):  # date, region, service, "aws4_request"
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


_SIGV4 = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([a-z0-9-]+)/([a-z0-9]+)/aws4_request,"
                    r"\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$")


def _ses_auth_problem(request: web.Request, body: bytes, creds: dict[str, str]) -> str | None:
    """Why this request's SigV4 signature is not acceptable, or None when it is."""
    match = _SIGV4.match(request.headers.get("Authorization", ""))
    if not match:
        return ("Authorization header missing or not "
                "AWS4-HMAC-SHA256 Credential=.../aws4_request, SignedHeaders=..., Signature=...")
    access_key, date, region, service, signed_csv, signature = match.groups()
    amz_date = request.headers.get("X-Amz-Date", "")
    signed = signed_csv.split(";")
    if access_key != creds["access_key_id"]:
        return "The security token included in the request is invalid."
    if region != creds["region"] or service != "ses":
        return f"Credential should be scoped to a valid region/service: {region}/{service}"
    if not amz_date.startswith(date) or not {"host", "x-amz-date"} <= set(signed) or signed != sorted(signed):
        return ("SignedHeaders must be sorted and include host and x-amz-date; "
                "X-Amz-Date must match the scope date")
    try:
        when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return "X-Amz-Date must be YYYYMMDDTHHMMSSZ"
    if abs(when.timestamp() - time.time()) > _MAX_CLOCK_SKEW_S:
        return "Signature expired"
    headers = {k.lower(): v for k, v in request.headers.items()}
    scope = f"{date}/{region}/{service}/aws4_request"
    expected = expected_sigv4(request.method, request.path, request.query_string, headers, signed, body,
                              creds["secret_access_key"], scope, amz_date)
    if not hmac.compare_digest(expected, signature):
        return "The request signature we calculated does not match the signature you provided."
    return None


def _ses_raw(body: Any) -> bytes | None:
    """The MIME message of a Raw-content SendEmail body (None: not Raw, or not base64)."""
    data = ((body.get("Content") or {}).get("Raw") or {}).get("Data") if isinstance(body, dict) else None
    if not isinstance(data, str):
        return None
    try:
        return base64.b64decode(data, validate=True)
    except ValueError:
        return None


def _ses_problems(body: Any) -> tuple[str, str] | None:
    """(error type, message) for the first thing wrong with a SendEmail body, or None."""
    if not isinstance(body, dict):
        return "SerializationException", "Request body is not a JSON object"
    to = (body.get("Destination") or {}).get("ToAddresses") or []
    content = body.get("Content") or {}
    simple = content.get("Simple")
    if not to:
        return "BadRequestException", "Missing required field Destination.ToAddresses"
    sender = email.utils.parseaddr(str(body.get("FromEmailAddress", "")))[1]  # may carry a display name
    if not all(_EMAIL.match(str(a)) for a in to) or not _EMAIL.match(sender):
        return "BadRequestException", "Illegal address"
    if "Raw" in content:
        raw = _ses_raw(body)
        if not raw or b"\r\n\r\n" not in raw:
            return "BadRequestException", "Content.Raw.Data must be a base64 MIME message"
        return None
    if not simple or not (simple.get("Subject") or {}).get("Data") or not simple.get("Body"):
        return "BadRequestException", "Content.Simple needs Subject.Data and Body"
    return None


async def ses_send(request: web.Request) -> web.Response:
    """POST /v2/email/outbound-emails: 200 {"MessageId"} or an AWS error."""
    state = _state(request, "ses")
    raw = await request.read()
    if problem := _ses_auth_problem(request, raw, request.app[CREDENTIALS]["ses"]):
        kind = "UnrecognizedClientException" if "token" in problem else "InvalidSignatureException"
        return _ses_error(403, kind, problem)
    if (failure := await _apply_mode(state, _ses_mode_error)) is not None:
        return failure
    try:
        body = json.loads(raw)
    except ValueError:
        return _ses_error(400, "SerializationException", "Invalid JSON")
    if problem := _ses_problems(body):
        return _ses_error(400, *problem)
    message_id = f"{int(time.time() * 1000):016x}-{secrets.token_hex(4)}-{secrets.token_hex(2)}-000000"
    mime = _ses_raw(body)
    if mime is not None:
        subject = str(email.message_from_bytes(mime).get("Subject", ""))
    else:
        subject = body["Content"]["Simple"]["Subject"]["Data"]
    state.accepted.append({"id": message_id, "to": body["Destination"]["ToAddresses"],
                           "from": body["FromEmailAddress"], "subject": subject,
                           "signed_headers": _SIGV4.match(request.headers["Authorization"]).group(5),
                           "request": body,
                           # what SES delivers: our MIME as it is (Raw), so our DKIM signature stays
                           "raw": mime.decode("utf-8", "replace") if mime is not None else None})
    return web.json_response({"MessageId": message_id})


# ---- Twilio -------------------------------------------------------------------------------

def _twilio_error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json_error(status, {"code": code, "message": message, "status": status,
                                "more_info": f"https://www.twilio.com/docs/errors/{code}"}, headers)


def _twilio_mode_error(status: int, headers: dict[str, str]) -> web.Response:
    if status == 429:
        return _twilio_error(429, 20429, "Too Many Requests", headers)
    return _twilio_error(status, 20500, "Internal Server Error")


async def twilio_send(request: web.Request) -> web.Response:
    """POST .../Messages.json: 201 with the Message resource, or Twilio's error JSON."""
    state = _state(request, "twilio")
    creds = request.app[CREDENTIALS]["twilio"]
    sid = request.match_info["account_sid"]
    if _basic_auth(request) != (creds["account_sid"], creds["auth_token"]) or sid != creds["account_sid"]:
        return _twilio_error(401, 20003, "Authenticate")
    if (failure := await _apply_mode(state, _twilio_mode_error)) is not None:
        return failure
    if request.content_type != "application/x-www-form-urlencoded":
        return _twilio_error(400, 20001, "Parameters must be form-encoded")
    form = dict(await request.post())
    for name in ("To", "From", "Body"):
        if not form.get(name):
            return _twilio_error(400, 21604 if name == "To" else 21603 if name == "From" else 21602,
                                 f"A '{name}' parameter is required.")
    if not _E164.match(str(form["To"])):
        return _twilio_error(400, 21211, f"The 'To' number {form['To']} is not a valid phone number.")
    message_sid = "SM" + secrets.token_hex(16)
    state.accepted.append({"id": message_sid, "to": form["To"], "from": form["From"], "body": form["Body"],
                           "request": {k: str(v) for k, v in form.items()}})
    now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    return web.json_response(status=201, data={
        "sid": message_sid, "account_sid": sid, "to": form["To"], "from": form["From"], "body": form["Body"],
        "status": "queued", "direction": "outbound-api", "num_segments": "1", "api_version": "2010-04-01",
        "date_created": now, "date_updated": now, "date_sent": None, "error_code": None, "error_message": None,
        "uri": f"/2010-04-01/Accounts/{sid}/Messages/{message_sid}.json",
    })


# ---- Esendex (XML) ------------------------------------------------------------------------

def _esendex_error(status: int, headers: dict[str, str], message: str = "") -> web.Response:
    text = message or {500: "Internal Server Error", 429: "Too Many Requests"}.get(status, "Bad Request")
    return web.Response(status=status, text=text, content_type="text/plain", headers=headers)


def _local(tag: str) -> str:
    """An element name without its namespace: clients send <messages> with or without xmlns."""
    return tag.rsplit("}", 1)[-1]


def _esendex_parse(raw: bytes) -> tuple[str, str | None, list[dict[str, str]]]:
    """(accountreference, batch-level from, messages) from a messagedispatcher body."""
    root = SafeET.fromstring(raw)
    if _local(root.tag) != "messages":
        raise ValueError("root element must be <messages>")
    fields = {_local(child.tag): (child.text or "") for child in root if _local(child.tag) != "message"}
    messages = [{_local(part.tag): (part.text or "") for part in child}
                for child in root if _local(child.tag) == "message"]
    return fields.get("accountreference", ""), fields.get("from"), messages


async def esendex_send(request: web.Request) -> web.Response:
    """POST /v1.0/messagedispatcher: 200 <messageheaders batchid=...> or an error status."""
    state = _state(request, "esendex")
    creds = request.app[CREDENTIALS]["esendex"]
    if _basic_auth(request) != (creds["username"], creds["password"]):
        return _esendex_error(401, {}, "Unauthorised")
    if (failure := await _apply_mode(state, _esendex_error)) is not None:
        return failure
    try:
        reference, sender, messages = _esendex_parse(await request.read())
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        return _esendex_error(400, {}, f"Invalid XML: {exc}")
    if reference != creds["account_reference"]:
        return _esendex_error(403, {}, f"Account reference {reference!r} is not accessible")
    for message in messages:
        if not message.get("body") or not re.fullmatch(r"\+?[1-9]\d{6,14}", message.get("to", "")):
            return _esendex_error(400, {}, f"Invalid recipient: {message.get('to', '')!r}")
    if not messages:
        return _esendex_error(400, {}, "No messages")
    batch_id = _uuid()
    root = ET.Element("messageheaders", {"batchid": batch_id, "xmlns": ESENDEX_NS})
    for message in messages:
        message_id = _uuid()
        ET.SubElement(root, "messageheader", {"uri": f"{request.url.origin()}/v1.0/messageheaders/{message_id}",
                                              "id": message_id})
        state.accepted.append({"id": message_id, "batch_id": batch_id, "to": message["to"],
                               "from": message.get("from") or sender, "body": message["body"],
                               "request": {"accountreference": reference, "from": sender, **message}})
    xml = '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")
    return web.Response(text=xml, content_type="application/xml")


def _uuid() -> str:
    return "-".join(secrets.token_hex(n) for n in (4, 2, 2, 2, 6)).upper()


# ---- inbound webhooks: the providers' side -------------------------------------------------

SNS_CERT_PATH = "/sns/SimpleNotificationService-standin.pem"
SNS_TOPIC_ARN = "arn:aws:sns:eu-west-1:000000000000:leadstream-ses-events"


@dataclass(frozen=True)
class WebhookKeys:
    """The dev signing keys: SendGrid's ECDSA pair, SNS's RSA key and self-signed certificate."""

    sendgrid_private_pem: bytes
    sendgrid_public_key: str  # base64 DER, as SendGrid shows it
    sns_private_pem: bytes
    sns_cert_pem: bytes


@functools.lru_cache(maxsize=1)
def webhook_keys() -> WebhookKeys:
    """Generated once per process (make_app asks at start)."""
    return WebhookKeys(*sendgrid_hooks.generate_key_pair(), *ses_hooks.generate_signing_cert())


async def webhook_keys_get(request: web.Request) -> web.Response:
    """GET /webhook-keys: what a receiver needs to verify the stand-in's webhooks."""
    return web.json_response({"sendgrid_public_key": webhook_keys().sendgrid_public_key,
                              "sns_cert_url": f"{request.url.origin()}{SNS_CERT_PATH}",
                              "sns_topic_arn": SNS_TOPIC_ARN, **sms_gateways.published_keys(),
                              "mailgun_signing_key": request.app[CREDENTIALS]["mailgun"]["webhook_signing_key"]})


async def sns_cert_get(request: web.Request) -> web.Response:
    """GET /sns/SimpleNotificationService-standin.pem: the dev SNS signing certificate."""
    return web.Response(body=webhook_keys().sns_cert_pem, content_type="application/x-pem-file")


def _webhook_posts(request: web.Request, provider: str, target: str, events: list[dict[str, Any]],
                   tamper: bool) -> list[tuple[bytes, dict[str, str]]]:
    """(body, headers) of each POST the provider would make for `events`."""
    if provider in sms_gateways.PROVIDERS:
        return sms_gateways.webhook_posts(request, provider, target, events, tamper)
    keys, now, creds = webhook_keys(), time.time(), request.app[CREDENTIALS]
    if provider in ("mailgun", "postmark"):
        from stack.standins import email_apis  # it builds on this module's helpers
        return email_apis.webhook_posts(creds, provider, events, tamper)
    if provider == "sendgrid":
        body = json.dumps(events).encode()
        headers = sendgrid_hooks.sign(body, keys.sendgrid_private_pem, now)
        if tamper:
            headers[sendgrid_hooks.SIGNATURE_HEADER] = tamper_signature(headers[sendgrid_hooks.SIGNATURE_HEADER])
        return [(body, {**headers, "Content-Type": "application/json"})]
    posts = []
    for event in events:
        if provider == "ses":
            cert_url, kind = f"{request.url.origin()}{SNS_CERT_PATH}", event.get("Type", "Notification")
            message = event if kind == "Notification" else event.get("Message", f"Confirm {SNS_TOPIC_ARN}")
            envelope = ses_hooks.sign_envelope(message, SNS_TOPIC_ARN, cert_url, keys.sns_private_pem, now,
                                               message_type=kind, subscribe_url=event.get("SubscribeURL", ""),
                                               token=event.get("Token", ""))
            if tamper:
                envelope["Signature"] = tamper_signature(envelope["Signature"])
            posts.append((json.dumps(envelope).encode(), {
                "Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": kind,
                "x-amz-sns-message-id": envelope["MessageId"], "x-amz-sns-topic-arn": SNS_TOPIC_ARN}))
        elif provider == "twilio":
            params = {"AccountSid": creds["twilio"]["account_sid"], "ApiVersion": "2010-04-01",
                      **{k: str(v) for k, v in event.items()}}
            signature = twilio_hooks.sign(target, params, creds["twilio"]["auth_token"])
            posts.append((urllib.parse.urlencode(params).encode(), {
                "Content-Type": twilio_hooks.FORM,
                "X-Twilio-Signature": tamper_signature(signature) if tamper else signature}))
        else:  # esendex
            fields = dict(event)
            password = creds["esendex"]["password"]
            if tamper:
                password = password[:-1] + chr(ord(password[-1]) ^ 1)
            posts.append((esendex_hooks.notification_xml(str(fields.pop("type", "")), fields), {
                "Content-Type": "application/xml; charset=utf-8",
                "Authorization": esendex_hooks.basic_auth_header(creds["esendex"]["username"], password)}))
    return posts


async def webhooks_emit(request: web.Request) -> web.Response:
    """POST /webhooks/emit: send `events` to `target` as the provider would, signed; relay the answer."""
    try:
        spec = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="body must be JSON") from None
    provider, target, events = spec.get("provider"), spec.get("target"), spec.get("events")
    if provider not in PROVIDERS:
        raise web.HTTPBadRequest(text=f"provider must be one of {', '.join(PROVIDERS)}")
    if not isinstance(target, str) or not target.startswith(("http://", "https://")):
        raise web.HTTPBadRequest(text="target must be an http(s) URL")
    if not isinstance(events, list) or not events or not all(isinstance(e, dict) for e in events):
        raise web.HTTPBadRequest(text="events must be a non-empty list of objects")
    if provider == "esendex" and any(e.get("type") not in esendex_hooks.KINDS for e in events):
        raise web.HTTPBadRequest(text=f"esendex events need a type: one of {', '.join(esendex_hooks.KINDS)}")
    from stack.standins import email_apis
    if problem := email_apis.emit_problem(provider, events):
        raise web.HTTPBadRequest(text=problem)
    results = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        for body, headers in _webhook_posts(request, provider, target, events, bool(spec.get("tamper"))):
            try:
                async with session.post(target, data=body, headers=headers) as response:
                    results.append({"status": response.status, "body": await response.text()})
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                return web.json_response({"error": f"POST {target} failed: {exc!r}", "results": results},
                                         status=502)
    answer = next((r for r in results if not 200 <= r["status"] < 300), results[-1])
    return web.json_response({**answer, "results": results})


# ---- control ------------------------------------------------------------------------------

def _provider(request: web.Request) -> str:
    provider = request.match_info["provider"]
    if provider not in PROVIDERS:
        raise web.HTTPNotFound(text=f"unknown provider {provider!r}; one of {', '.join(PROVIDERS)}")
    return provider


async def control_set(request: web.Request) -> web.Response:
    """POST /control/{provider}: set mode, fail_next, retry_after_s, delay_s."""
    state: ProviderState = request.app[STATES][_provider(request)]
    body = await request.json()
    mode = body.get("mode", "ok")
    if mode not in ("ok", "fail", "throttle", "slow"):
        raise web.HTTPBadRequest(text="mode must be ok, fail, throttle or slow")
    remaining = body.get("fail_next")
    if remaining is not None and int(remaining) <= 0:
        mode, remaining = "ok", None  # "misbehave 0 more times" is behaving
    state.mode, state.remaining = mode, remaining
    state.retry_after_s = float(body.get("retry_after_s", state.retry_after_s))
    state.delay_s = float(body.get("delay_s", state.delay_s))
    return await control_get(request)


async def control_get(request: web.Request) -> web.Response:
    """GET /control/{provider}: mode, remaining and request count."""
    state: ProviderState = request.app[STATES][_provider(request)]
    return web.json_response({"mode": state.mode, "fail_next": state.remaining, "requests": state.requests,
                              "accepted": len(state.accepted), "retry_after_s": state.retry_after_s})


async def sent_list(request: web.Request) -> web.Response:
    """GET /sent/{provider}: every accepted message, in order."""
    return web.json_response(list(request.app[STATES][_provider(request)].accepted))


async def sent_clear(request: web.Request) -> web.Response:
    """DELETE /sent/{provider}: forget accepted messages and the request count."""
    state: ProviderState = request.app[STATES][_provider(request)]
    state.accepted.clear()
    state.requests = 0
    return web.json_response({"cleared": True})


def make_app(credentials: dict[str, dict[str, str]] | None = None) -> web.Application:
    """The stand-in app with fresh state."""
    # the largest request any of these providers takes (Postmark's batch: 50 MB); aiohttp's
    # default of 1 MiB answered 413 to an ordinary batch of 500 alerts
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app[CREDENTIALS] = {**DEFAULT_CREDENTIALS, **(credentials or {})}
    app[STATES] = {p: ProviderState() for p in PROVIDERS}
    app.router.add_post("/v3/mail/send", sendgrid_send)
    app.router.add_post("/v2/email/outbound-emails", ses_send)
    app.router.add_post("/2010-04-01/Accounts/{account_sid}/Messages.json", twilio_send)
    app.router.add_post("/v1.0/messagedispatcher", esendex_send)
    from stack.standins import email_apis  # Mailgun and Postmark; it builds on this module's helpers
    email_apis.install(app)
    app.router.add_post("/control/{provider}", control_set)
    app.router.add_get("/control/{provider}", control_get)
    app.router.add_get("/sent/{provider}", sent_list)
    app.router.add_delete("/sent/{provider}", sent_clear)
    sms_gateways.install(app)
    webhook_keys()  # generate the dev webhook keys now, not on the first request
    app.router.add_get("/webhook-keys", webhook_keys_get)
    app.router.add_get(SNS_CERT_PATH, sns_cert_get)
    app.router.add_post("/webhooks/emit", webhooks_emit)
    return app


def start(port: int = 0, *, host: str = "127.0.0.1",
          credentials: dict[str, dict[str, str]] | None = None) -> tuple[str, Callable[[], None]]:
    """Serve the stand-ins on their own thread and loop; returns (base url, stop)."""
    return serve_in_thread(make_app(credentials), host, port, "provider-standins")


async def _main(port: int, host: str = "127.0.0.1") -> None:
    """Serve until SIGINT/SIGTERM, then print what was accepted."""
    app = make_app()
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    url = f"http://{host}:{runner.addresses[0][1]}"
    print(f"provider stand-ins on {url} ({', '.join(PROVIDERS)})", flush=True)
    print(f"credentials they accept: {json.dumps(DEFAULT_CREDENTIALS)}", flush=True)
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stopping.set)
    await stopping.wait()
    await runner.cleanup()
    counts = ", ".join(f"{p} {len(app[STATES][p].accepted)}" for p in PROVIDERS)
    print(f"provider stand-ins stopped; accepted: {counts}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Command line: python -m stack.standins.providers --port P."""
    parser = argparse.ArgumentParser(description="Local stand-ins for SendGrid, SES, Mailgun, Postmark, Twilio and Esendex.")
    parser.add_argument("--port", type=int, default=8025, help="port (0 = any free)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 in a container)")
    args = parser.parse_args(argv)
    asyncio.run(_main(args.port, args.host))


if __name__ == "__main__":
    # run the importable module, not this __main__ copy: the Mailgun/Postmark and SMS-gateway
    # stand-ins import stack.standins.providers, and its app keys must be the ones the app uses
    from stack.standins import providers as _module
    _module.main()
