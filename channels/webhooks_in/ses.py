"""Amazon SES event publishing through an SNS topic with an HTTP/S subscription.

The POST body is an SNS JSON envelope (https://docs.aws.amazon.com/sns/latest/dg/
sns-message-and-json-formats.html): Type (Notification | SubscriptionConfirmation |
UnsubscribeConfirmation), MessageId, TopicArn, Subject (optional), Message (a string),
Timestamp (ISO 8601), SignatureVersion "1" (SHA1withRSA) or "2" (SHA256withRSA), Signature
(base64), SigningCertURL, and for confirmations SubscribeURL and Token.

Verification (https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html):
the string to sign is "Key\\nvalue\\n" for, in this order, Message, MessageId, Subject (only if
present), Timestamp, TopicArn, Type for a Notification, and Message, MessageId, SubscribeURL,
Timestamp, Token, TopicArn, Type for a confirmation; it is checked with the public key of the
certificate at SigningCertURL. The certificate URL must be
https://sns.<region>.amazonaws.com[.cn]/SimpleNotificationService-<hex>.pem (a region name, so
no S3-style host such as sns.s3-eu-west-1.amazonaws.com, which is a bucket), or start with one
of `WebhookSecrets.ses_cert_url_prefixes` (the local stand-in). We never fetch: call
`precheck(body, secrets, now_s)`, which makes every check that needs no certificate (type,
signature present, certificate URL, topic, age) and returns the URL; fetch and cache that
certificate over verified HTTPS, then `verify(..., cert_pem=...)`.

Age: SNS signs each message once, when it is published, and a delivery retried after an
outage carries that first Timestamp; an HTTP/S subscription's retries may go on for up to an
hour (the delivery policy's limit), so the window is MAX_AGE_S, not the usual few minutes.

The Message of a Notification is an SES event (https://docs.aws.amazon.com/ses/latest/dg/
event-publishing-retrieving-sns-contents.html): eventType plus `mail` {messageId,
destination[], timestamp, tags{name: [values]}} and one object per type:

    Delivery          delivery{recipients, smtpResponse, timestamp}          -> delivered
    Bounce            bounce{bounceType, bounceSubType, bouncedRecipients[{emailAddress,
                      diagnosticCode, status}], timestamp}                    -> bounced
                      (Permanent -> hard; Transient, Undetermined -> soft)
    Complaint         complaint{complainedRecipients, complaintFeedbackType}  -> complained
    Open              open{ipAddress, userAgent, timestamp}                   -> opened
    Click             click{link, ipAddress, userAgent, timestamp}            -> clicked
    Reject            reject{reason}                                          -> failed
    DeliveryDelay     deliveryDelay{delayType, delayedRecipients}             -> deferred
    Rendering Failure failure{errorMessage, templateName}                     -> failed
    Subscription      subscription{newTopicPreferences{unsubscribeAll}}       -> unsubscribed
    Send, anything else                                                        skipped

The older SES notifications (`notificationType` Bounce | Complaint | Delivery, same objects)
are read the same way. One observation per recipient; when a message yields several, each
event id is "<SNS MessageId>:<recipient>" so they stay unique.

Note: our SES adapter sanitises tag values to SES's allowed characters, so the echoed
`send_id` tag has ':' turned into '_'; `provider_message_id` (mail.messageId) is exact.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import functools
import json
import re
import urllib.parse
import uuid
from typing import Any, Mapping

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from channels.webhooks_in.base import (
    Observation, Parsed, WebhookRejected, WebhookSecrets, b64decode_strict, bad_request, check_fresh,
    iso_to_ms, load_json, lower_keys, opt_text, text_field, unauthorized, window,
)

PROVIDER = "ses"
NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
# a region: us-east-1, eu-central-2, ap-southeast-4, us-gov-west-1, cn-north-1, us-isob-east-1
_REGION = r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}"
_AWS_CERT_HOST = re.compile(rf"^sns\.{_REGION}\.amazonaws\.com(\.cn)?$")
_AWS_CERT_PATH = re.compile(r"^/SimpleNotificationService-[0-9a-f]+\.pem$")
MAX_AGE_S = 3600 + 300  # SNS retries an HTTP/S delivery for up to an hour; plus clock skew
_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
# eventType -> (the event's own object, our kind)
_EVENTS = {"Delivery": ("delivery", "delivered"), "Bounce": ("bounce", "bounced"),
           "Complaint": ("complaint", "complained"), "Open": ("open", "opened"), "Click": ("click", "clicked"),
           "Reject": ("reject", "failed"), "DeliveryDelay": ("deliveryDelay", "deferred"),
           "Rendering Failure": ("failure", "failed"), "Subscription": ("subscription", "unsubscribed")}


def _envelope(body: bytes) -> dict[str, Any]:
    envelope = load_json(body, "SNS message")
    if not isinstance(envelope, dict):
        raise bad_request("SNS message must be a JSON object")
    return envelope


def cert_url(body: bytes, secrets: WebhookSecrets = WebhookSecrets()) -> str:
    """The SigningCertURL once it is known to be SNS's (or an allowed stand-in's); else 401.

    Pass the same `secrets` as to `verify`: without them only real SNS URLs are allowed.
    """
    return _allowed_cert_url(_envelope(body), secrets)


def _allowed_cert_url(envelope: Mapping[str, Any], secrets: WebhookSecrets) -> str:
    url = envelope.get("SigningCertURL")
    if not isinstance(url, str) or not url:
        raise unauthorized("SNS message has no SigningCertURL")
    if any(_under(url, prefix) for prefix in secrets.ses_cert_url_prefixes):
        return url
    parts = urllib.parse.urlsplit(url)
    if (parts.scheme != "https" or parts.netloc != parts.hostname or not _AWS_CERT_HOST.match(parts.netloc)
            or not _AWS_CERT_PATH.match(parts.path) or parts.query or parts.fragment):
        raise unauthorized(f"SigningCertURL is not an SNS certificate: {url[:200]!r}")
    return url


def _under(url: str, prefix: str) -> bool:
    """Whether url lies under an allowed prefix: same scheme and host, a path below the
    prefix's with no dot segments (".." would climb out of it once a client normalises it)."""
    if not prefix:
        return False
    u, p = urllib.parse.urlsplit(url), urllib.parse.urlsplit(prefix.rstrip("/") + "/")
    segments = urllib.parse.unquote(u.path).split("/")
    return ((u.scheme, u.netloc) == (p.scheme, p.netloc) and u.path.startswith(p.path)
            and "." not in segments and ".." not in segments and "\\" not in u.path and not u.fragment)


def subscribe_url_allowed(url: str, secrets: WebhookSecrets = WebhookSecrets()) -> bool:
    """Whether a SubscribeURL is SNS's own (https://sns.<region>.amazonaws.com/?Action=
    ConfirmSubscription&...), or an allowed stand-in's: the only URLs we GET to confirm."""
    if any(_under(url, prefix) for prefix in secrets.ses_cert_url_prefixes):
        return True
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    return (parts.scheme == "https" and parts.netloc == parts.hostname and bool(_AWS_CERT_HOST.match(parts.netloc))
            and parts.path in ("", "/") and query.get("Action") == "ConfirmSubscription" and not parts.fragment)


def precheck(body: bytes, secrets: WebhookSecrets, now_s: float) -> str:
    """Every check that needs no certificate, cheapest first, then the certificate's URL; 400
    or 401 if one fails, so a forged message never makes us fetch anything."""
    envelope = _envelope(body)
    if envelope.get("Type") not in TYPES:
        raise bad_request(f"SNS Type must be one of {', '.join(TYPES)}")
    version, signature = envelope.get("SignatureVersion"), envelope.get("Signature")
    if version not in _HASHES or not isinstance(signature, str) or not signature:
        raise unauthorized("SNS message has no Signature or an unknown SignatureVersion")
    if secrets.ses_topic_arns and envelope.get("TopicArn") not in secrets.ses_topic_arns:
        raise unauthorized(f"SNS TopicArn {str(envelope.get('TopicArn'))[:200]!r} is not ours")
    try:
        sent_ms = iso_to_ms(envelope.get("Timestamp"), "SNS Timestamp")
    except WebhookRejected as exc:
        raise unauthorized(exc.detail) from None
    check_fresh(sent_ms / 1000, now_s, window(secrets, MAX_AGE_S), "SNS Timestamp")
    return _allowed_cert_url(envelope, secrets)


def string_to_sign(envelope: Mapping[str, Any]) -> bytes:
    """The bytes SNS signs: 'Key\\nvalue\\n' for the documented keys, in order."""
    keys = NOTIFICATION_KEYS if envelope.get("Type") == "Notification" else CONFIRMATION_KEYS
    parts = []
    for key in keys:
        value = envelope.get(key)
        if value is None and key == "Subject":
            continue  # only when the message has one
        if not isinstance(value, str):
            raise unauthorized(f"SNS message lacks the signed field {key}")
        parts.append(f"{key}\n{value}\n")
    return "".join(parts).encode()


@functools.lru_cache(maxsize=16)
def _certificate(cert_pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(cert_pem)


def verify(headers: Mapping[str, str], body: bytes, url: str, secrets: WebhookSecrets, now_s: float,
           cert_pem: bytes | None = None) -> None:
    """The checks of `precheck`, then the SNS signature with the certificate from its URL; 401 if not."""
    precheck(body, secrets, now_s)
    envelope = _envelope(body)
    if not cert_pem:
        raise unauthorized("no signing certificate given: fetch precheck(body)'s URL and pass cert_pem")
    try:
        cert = _certificate(bytes(cert_pem))
    except ValueError:
        raise unauthorized("the signing certificate does not load") from None
    now = dt.datetime.fromtimestamp(now_s, dt.timezone.utc)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise unauthorized("the signing certificate is not valid now")
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise unauthorized("the signing certificate does not hold an RSA key")
    try:
        key.verify(b64decode_strict(envelope["Signature"], "SNS Signature"), string_to_sign(envelope),
                   padding.PKCS1v15(), _HASHES[envelope["SignatureVersion"]]())
    except InvalidSignature:
        raise unauthorized("SNS signature does not match") from None


def parse(headers: Mapping[str, str], body: bytes, *, now_s: float | None = None) -> Parsed:
    """Observations from a Notification, the SubscribeURL of a SubscriptionConfirmation; 400 if neither."""
    envelope = _envelope(body)
    kind = envelope.get("Type")
    header_kind = lower_keys(headers).get("x-amz-sns-message-type")
    if kind not in TYPES or (header_kind and header_kind != kind):
        raise bad_request(f"SNS Type must be one of {', '.join(TYPES)} (and match x-amz-sns-message-type)")
    if kind == "SubscriptionConfirmation":
        return Parsed([], subscribe_url=text_field(envelope, "SubscribeURL", "SNS SubscriptionConfirmation"))
    if kind == "UnsubscribeConfirmation":
        return Parsed([])  # its SubscribeURL would re-subscribe: not ours to follow automatically
    event_id = text_field(envelope, "MessageId", "SNS Notification")
    message = load_json(text_field(envelope, "Message", "SNS Notification").encode(), "SNS Message")
    if not isinstance(message, dict):
        raise bad_request("SNS Message must hold a JSON object (an SES event)")
    return Parsed(_observations(message, event_id, envelope.get("Timestamp")))


def _observations(message: dict[str, Any], event_id: str, sent_at: Any) -> list[Observation]:
    event_type = message.get("eventType") or message.get("notificationType")
    if not isinstance(event_type, str):
        raise bad_request("SES event has no eventType or notificationType")
    if event_type not in _EVENTS:
        return []  # Send, AmazonSnsSubscriptionSucceeded, types added later
    what = f"SES {event_type} event"
    field, kind = _EVENTS[event_type]
    mail, detail = message.get("mail"), message.get(field)
    if not isinstance(mail, dict) or not isinstance(detail, dict):
        raise bad_request(f"{what} needs the objects mail and {field}")
    tags = mail.get("tags") if isinstance(mail.get("tags"), dict) else {}
    send_ids = tags.get("send_id")
    common = dict(provider=PROVIDER, kind=kind, provider_message_id=text_field(mail, "messageId", f"{what} mail"),
                  occurred_ms=iso_to_ms(detail.get("timestamp") or mail.get("timestamp") or sent_at,
                                        f"{what} timestamp"),
                  send_id=str(send_ids[0]) if isinstance(send_ids, list) and send_ids else "")
    per_recipient = _recipients(event_type, detail, mail, what)
    observations = [Observation(provider_event_id=event_id, recipient=recipient, **common, **extra)
                    for recipient, extra in per_recipient]
    if len(observations) > 1:
        observations = [dataclasses.replace(o, provider_event_id=f"{event_id}:{o.recipient}")
                        for o in observations]
    return observations


def _addresses(items: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("emailAddress"), str)
                                              for i in items):
        raise bad_request(f"{what}: recipients must be a list of {{emailAddress, ...}}")
    return items


def _recipients(event_type: str, detail: dict[str, Any], mail: dict[str, Any],
                what: str) -> list[tuple[str, dict[str, str]]]:
    """(recipient, event-specific Observation fields) for each recipient the event is about."""
    destination = mail.get("destination")
    if event_type == "Bounce":
        hard = detail.get("bounceType") == "Permanent"
        fallback = f"{opt_text(detail, 'bounceType')} {opt_text(detail, 'bounceSubType')}".strip()
        return [(r["emailAddress"], {"bounce_type": "hard" if hard else "soft",
                                     "reason": opt_text(r, "diagnosticCode") or opt_text(r, "status") or fallback})
                for r in _addresses(detail.get("bouncedRecipients"), what)]
    if event_type == "Complaint":
        reason = opt_text(detail, "complaintFeedbackType") or opt_text(detail, "complaintSubType")
        return [(r["emailAddress"], {"reason": reason})
                for r in _addresses(detail.get("complainedRecipients"), what)]
    if event_type == "DeliveryDelay":
        return [(r["emailAddress"], {"reason": ": ".join(filter(None, [opt_text(detail, "delayType"),
                                                                       opt_text(r, "diagnosticCode")]))})
                for r in _addresses(detail.get("delayedRecipients"), what)]
    if event_type == "Subscription":
        preferences = detail.get("newTopicPreferences")
        if not (isinstance(preferences, dict) and preferences.get("unsubscribeAll") is True):
            return []  # a topic preference change, not an unsubscribe from everything
    recipients = detail.get("recipients") if event_type == "Delivery" and detail.get("recipients") else destination
    if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
        raise bad_request(f"{what}: mail.destination must be a list of addresses")
    extra = {
        "Delivery": {"reason": opt_text(detail, "smtpResponse")},
        "Open": {"user_agent": opt_text(detail, "userAgent"), "ip": opt_text(detail, "ipAddress")},
        "Click": {"url": opt_text(detail, "link"), "user_agent": opt_text(detail, "userAgent"),
                  "ip": opt_text(detail, "ipAddress")},
        "Reject": {"reason": opt_text(detail, "reason")},
        "Rendering Failure": {"reason": opt_text(detail, "errorMessage")},
    }.get(event_type, {})
    return [(r, extra) for r in recipients]


# ---- signing, for the local stand-in and tests --------------------------------------------

def generate_signing_cert(common_name: str = "sns.amazonaws.com", valid_days: int = 365,
                          now: float | None = None) -> tuple[bytes, bytes]:
    """(private key PEM, self-signed certificate PEM) of a fresh RSA key, shaped like SNS's,
    valid from a day before `now` (default: the clock) for `valid_days`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc) if now is None else dt.datetime.fromtimestamp(now, dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=valid_days)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def sign_envelope(message: dict[str, Any] | str, topic_arn: str, cert_url: str, private_key_pem: bytes,
                  now: float, *, message_type: str = "Notification", subscribe_url: str = "", token: str = "",
                  message_id: str = "", subject: str | None = None, signature_version: str = "2") -> dict[str, Any]:
    """The SNS envelope SNS would POST for `message` (an SES event dict, or text), signed."""
    stamp = dt.datetime.fromtimestamp(now, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    envelope: dict[str, Any] = {
        "Type": message_type, "MessageId": message_id or str(uuid.uuid4()), "TopicArn": topic_arn,
        "Message": message if isinstance(message, str) else json.dumps(message), "Timestamp": stamp,
        "SignatureVersion": signature_version, "SigningCertURL": cert_url,
    }
    if subject is not None:
        envelope["Subject"] = subject
    if message_type == "Notification":
        origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(cert_url))
        envelope["UnsubscribeURL"] = f"{origin}/?Action=Unsubscribe&SubscriptionArn={topic_arn}:standin"
    else:
        envelope["SubscribeURL"], envelope["Token"] = subscribe_url, token
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    signature = key.sign(string_to_sign(envelope), padding.PKCS1v15(), _HASHES[signature_version]())
    envelope["Signature"] = base64.b64encode(signature).decode()
    return envelope
