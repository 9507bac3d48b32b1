"""What every inbound provider webhook turns into, and the shared checking helpers.

A provider module (sendgrid, ses, mailgun, postmark, twilio, esendex) is pure: `verify` checks who sent the
request (WebhookRejected 401 if not the provider), `parse` turns the body into `Observation`s
(WebhookRejected 400 if the body is not what the provider sends). No network I/O happens here:
the API process reads the request, fetches what must be fetched (the SNS signing certificate,
a SubscribeURL) and produces the observations.

Formats without an event time of their own (Twilio callbacks, Esendex inbound messages) get
the time of receipt: `parse(..., now_s=...)`, default the wall clock.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal, Mapping

# unsubscribed: from everything; left_list: only the list of the message (SendGrid's group_unsubscribe)
ObservationKind = Literal["delivered", "bounced", "complained", "opened", "clicked", "failed", "deferred",
                          "unsubscribed", "left_list", "reply"]


@dataclass(frozen=True)
class Observation:
    """One thing a provider tells us about one of our messages (or one reply to us)."""

    provider: str                 # a key of webhooks_in.PROVIDERS: "sendgrid", "ses", "mailgun", ...
    kind: ObservationKind
    provider_event_id: str        # unique per provider event: the dedupe key
    provider_message_id: str      # the provider's id of our message, as our send adapter records it
    occurred_ms: int
    send_id: str = ""             # when the provider echoes it back
    recipient: str = ""           # email / E.164 our message went to; for a reply the lead's number
    bounce_type: str = ""         # "hard" | "soft" | ""
    reason: str = ""              # provider diagnostic / error code text
    url: str = ""                 # clicked URL
    user_agent: str = ""
    ip: str = ""
    from_number: str = ""         # reply only: who wrote (E.164)
    to_number: str = ""           # reply only: our number that received it
    text: str = ""                # reply only: the message body


class WebhookRejected(Exception):
    """The request is refused: 401 (not from the provider) or 400 (not the provider's format)."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class WebhookSecrets:
    """What verification needs; an empty secret means that provider's webhooks are refused."""

    sendgrid_public_key: str = ""        # base64 DER SubjectPublicKeyInfo (ECDSA P-256), as SendGrid shows it
    ses_cert_url_prefixes: tuple[str, ...] = ()  # extra allowed SigningCertURL prefixes (local stand-in)
    ses_topic_arns: tuple[str, ...] = ()  # if non-empty, only these TopicArn are accepted
    twilio_auth_token: str = ""
    esendex_user: str = ""               # HTTP Basic credentials we put in the Esendex push URL
    esendex_password: str = ""
    vonage_signature_secret: str = ""    # Vonage "Signing Messages": the account's signature secret
    vonage_signature_method: str = "sha256"  # md5hash | md5 | sha1 | sha256 | sha512, as set at Vonage
    plivo_auth_token: str = ""           # X-Plivo-Signature-V3 is keyed with the auth token
    telnyx_public_key: str = ""          # base64 Ed25519 public key, as the Telnyx portal shows it
    mailgun_signing_key: str = ""        # Mailgun's HTTP webhook signing key (HMAC-SHA256)
    postmark_user: str = ""              # HTTP Basic credentials we put in the Postmark webhook URL
    postmark_password: str = ""
    max_age_s: int = 0                   # replay window where the format has a timestamp; 0: each
                                         # provider's own (its module's MAX_AGE_S, from its retry policy)


@dataclass(frozen=True)
class Parsed:
    """What one webhook request said."""

    observations: list[Observation]
    subscribe_url: str = ""   # SNS SubscriptionConfirmation: GET it to confirm (the API decides)


# ---- helpers shared by the provider modules ------------------------------------------------

def unauthorized(detail: str) -> WebhookRejected:
    return WebhookRejected(401, detail)


def bad_request(detail: str) -> WebhookRejected:
    return WebhookRejected(400, detail)


def lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names lower-cased (callers should already pass them so; tolerate either)."""
    return {str(k).lower(): str(v) for k, v in headers.items()}


def now_or_clock(now_s: float | None) -> float:
    return time.time() if now_s is None else now_s


def check_fresh(timestamp_s: float, now_s: float, max_age_s: int, what: str) -> None:
    """401 when a signed timestamp is further than max_age_s from now, either way (replay)."""
    if abs(now_s - timestamp_s) > max_age_s:
        raise unauthorized(f"{what} is {int(now_s - timestamp_s)} s away from now (replay window {max_age_s} s)")


def window(secrets: WebhookSecrets, provider_max_age_s: int) -> int:
    """The replay window to check: the deployment's override, else the provider's own."""
    return secrets.max_age_s or provider_max_age_s


def require_basic_auth(headers: Mapping[str, str], user: str, password: str, what: str) -> None:
    """401 unless the request carries exactly these HTTP Basic credentials (compared in constant
    time); providers that do not sign their webhooks get them from the URL we configure,
    https://user:password@host/..., and send them as Authorization: Basic."""
    if not user or not password:
        raise unauthorized(f"no {what} credentials configured")
    scheme, _, value = lower_keys(headers).get("authorization", "").strip().partition(" ")
    if scheme.lower() != "basic":
        raise unauthorized(f"{what} needs HTTP Basic credentials")
    try:
        given_user, colon, given_password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, ValueError):
        raise unauthorized(f"{what} Basic credentials do not decode") from None
    user_ok = hmac.compare_digest(given_user.encode(), user.encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    if not (colon and user_ok and password_ok):
        raise unauthorized(f"{what} credentials do not match")


def basic_auth_header(user: str, password: str) -> str:
    """The Authorization value a client sends for a URL with user:password in it."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def b64decode_strict(value: str, what: str) -> bytes:
    """Standard base64 or a 401: a signature we cannot even decode is no signature."""
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise unauthorized(f"{what} is not base64") from None


def tamper(signature_b64: str) -> str:
    """The same signature with one byte flipped: for stand-ins and tests of the 401 path."""
    raw = bytearray(base64.b64decode(signature_b64))
    raw[len(raw) // 2] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def load_json(body: bytes, what: str) -> Any:
    """The JSON document in `body`, or a 400."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:  # not JSON, too deep, bad encoding
        raise bad_request(f"{what} is not JSON: {str(exc)[:100]}") from None


_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def iso_to_ms(text: Any, what: str) -> int:
    """Epoch milliseconds of an ISO 8601 time (naive = UTC; 'Z'; up to 7+ fraction digits), or a 400."""
    if not isinstance(text, str) or not text:
        raise bad_request(f"{what} is missing or not a time")
    try:
        when = datetime.fromisoformat(_FRACTION.sub(r"\1", text.strip(), count=1).replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"{what} is not an ISO 8601 time: {text[:40]!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(round(when.timestamp() * 1000))


def e164(number: str) -> str:
    """A phone number with the '+' Esendex-style numbers leave out ('4477…' / '004477…' -> '+4477…')."""
    number = "".join(number.split())
    if number.startswith("00") and number[2:].isdigit():
        return "+" + number[2:]
    if number.isdigit():
        return "+" + number
    return number  # already '+…', or an alphanumeric sender: left as it is


def text_field(data: Mapping[str, Any], key: str, what: str) -> str:
    """A required non-empty string field, or a 400."""
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise bad_request(f"{what}: {key} is missing or not a string")
    return value


def opt_text(data: Mapping[str, Any], key: str) -> str:
    """An optional field as text ('' when absent or null)."""
    value = data.get(key)
    return "" if value is None or isinstance(value, (dict, list)) else str(value)
