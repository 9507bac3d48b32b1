"""Esendex push notifications (https://developers.esendex.com/APIs/Push-Notifications).

Esendex POSTs one XML document per notification, with or without the namespace
http://api.esendex.com/ns/:

    <MessageDelivered><Id/><MessageId/><AccountId/><OccurredAt/></MessageDelivered>   -> delivered
    <MessageFailed><Id/><MessageId/><AccountId/><OccurredAt/>
        <FailureReason><Code/><Description/><PermanentFailure>true|false</PermanentFailure></FailureReason>?
    </MessageFailed>                         -> failed (hard when PermanentFailure is true, soft when false)
    <InboundMessage><Id/><MessageId/><AccountId/><MessageText/><From/><To/></InboundMessage>   -> reply

Id is the notification's id (the dedupe key), MessageId the message's (our adapter's
provider_id). OccurredAt is UTC "yyyy-MM-ddThh:mm:ss"; an inbound message has no time, so it
gets the time of receipt. Numbers come without '+': they are normalised to E.164. The
delivered/failed notifications do not name the recipient: `recipient` stays "".

Push notifications carry no signature. We configure the push URL with HTTP Basic credentials
(https://user:password@host/...) and `verify` requires exactly those.
XML is parsed with defusedxml: no DTDs, entities or external references.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import xml.etree.ElementTree as ET  # only its ParseError: parsing is defusedxml's
from typing import Any, Mapping

import defusedxml
import defusedxml.ElementTree as DefusedET

from channels.webhooks_in.base import (
    Observation, Parsed, WebhookSecrets, bad_request, e164, iso_to_ms, lower_keys, now_or_clock, unauthorized,
)

PROVIDER = "esendex"
NS = "http://api.esendex.com/ns/"
KINDS = {"MessageDelivered": "delivered", "MessageFailed": "failed", "InboundMessage": "reply"}


def basic_auth_header(user: str, password: str) -> str:
    """The Authorization value Esendex sends for a push URL with user:password in it."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def verify(headers: Mapping[str, str], body: bytes, url: str, secrets: WebhookSecrets, now_s: float,
           cert_pem: bytes | None = None) -> None:
    """Require the HTTP Basic credentials we put in the push URL; 401 if absent or wrong."""
    if not secrets.esendex_user or not secrets.esendex_password:
        raise unauthorized("no Esendex push credentials configured")
    scheme, _, value = lower_keys(headers).get("authorization", "").strip().partition(" ")
    if scheme.lower() != "basic":
        raise unauthorized("Esendex push needs HTTP Basic credentials")
    try:
        user, colon, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, ValueError):
        raise unauthorized("Esendex Basic credentials do not decode") from None
    user_ok = hmac.compare_digest(user.encode(), secrets.esendex_user.encode())
    password_ok = hmac.compare_digest(password.encode(), secrets.esendex_password.encode())
    if not (colon and user_ok and password_ok):
        raise unauthorized("Esendex push credentials do not match")


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(element: ET.Element) -> dict[str, ET.Element]:
    found: dict[str, ET.Element] = {}
    for child in element:
        found.setdefault(_local(child.tag), child)
    return found


def parse(headers: Mapping[str, str], body: bytes, *, now_s: float | None = None) -> Parsed:
    """The observation in one push notification; 400 for anything that is not one."""
    try:
        root = DefusedET.fromstring(body, forbid_dtd=True)
    except (ET.ParseError, defusedxml.DefusedXmlException, ValueError, RecursionError) as exc:
        raise bad_request(f"Esendex notification is not acceptable XML: {str(exc)[:100]}") from None
    name = _local(root.tag)
    if name not in KINDS:
        raise bad_request(f"Esendex notification must be one of {', '.join(KINDS)}, not {name[:50]!r}")
    fields = _children(root)

    def text(key: str, required: bool = True) -> str:
        value = (fields[key].text or "").strip() if key in fields else ""
        if required and not value:
            raise bad_request(f"Esendex {name} has no {key}")
        return value

    common = dict(provider=PROVIDER, kind=KINDS[name], provider_event_id=text("Id"),
                  provider_message_id=text("MessageId"))
    if name == "InboundMessage":
        sender, ours = e164(text("From")), e164(text("To"))
        body_text = (fields["MessageText"].text or "") if "MessageText" in fields else ""
        return Parsed([Observation(**common, occurred_ms=int(now_or_clock(now_s) * 1000), recipient=sender,
                                   from_number=sender, to_number=ours, text=body_text)])
    occurred_ms = iso_to_ms(text("OccurredAt"), f"Esendex {name} OccurredAt")
    if name == "MessageDelivered":
        return Parsed([Observation(**common, occurred_ms=occurred_ms)])
    failure = _children(fields["FailureReason"]) if "FailureReason" in fields else {}
    detail = {k: (v.text or "").strip() for k, v in failure.items()}
    permanent = detail.get("PermanentFailure", "").lower()
    reason = ": ".join(filter(None, [detail.get("Code", ""), detail.get("Description", "")]))
    return Parsed([Observation(**common, occurred_ms=occurred_ms, reason=reason,
                               bounce_type={"true": "hard", "false": "soft"}.get(permanent, ""))])


def notification_xml(kind: str, fields: Mapping[str, Any], *, namespace: bool = False) -> bytes:
    """A push notification document as Esendex would POST it (for the stand-in and tests).

    `fields` are the child elements in order; a mapping value (FailureReason) nests.
    """
    def text(value: Any) -> str:
        return str(value).lower() if isinstance(value, bool) else str(value)

    root = ET.Element(kind, {"xmlns": NS} if namespace else {})
    for key, value in fields.items():
        child = ET.SubElement(root, key)
        if isinstance(value, Mapping):
            for sub_key, sub_value in value.items():
                ET.SubElement(child, sub_key).text = text(sub_value)
        else:
            child.text = text(value)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
