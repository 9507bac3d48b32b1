"""Postmark's webhooks (https://postmarkapp.com/developer/webhooks/webhooks-overview).

Wire format: one POST per event, a JSON object whose `RecordType` says what it is; every one
carries `MessageID` (the id our send adapter records) and `Metadata` (ours: `send_id`):

    Delivery            Recipient, DeliveredAt, Details                 -> delivered
    Bounce              ID, Type, TypeCode, Email, BouncedAt, Description, Details
        HardBounce, BadEmailAddress, ManuallyDeactivated                -> bounced hard
        SoftBounce, DnsError, Blocked, DMARCPolicy                      -> bounced soft
        Transient (delayed; Postmark keeps trying)                      -> deferred
        SMTPApiError, TemplateRenderingFailed, Unknown                  -> failed
        Unsubscribe                                                     -> unsubscribed
        SpamComplaint                                                   -> complained
        AutoResponder, AddressChange, Subscribe, ChallengeVerification, OpenRelayTest,
        VirusNotification, SpamNotification, Unconfirmed, InboundError, new types: skipped
    SpamComplaint       ID, Email, BouncedAt                            -> complained
    Open                Recipient, ReceivedAt, UserAgent, Geo.IP        -> opened
    Click               Recipient, ReceivedAt, OriginalLink, UserAgent, Geo.IP -> clicked
    SubscriptionChange  Recipient, ChangedAt, SuppressSending, SuppressionReason
        SuppressSending true -> unsubscribed (reason: SuppressionReason); false (reactivated): skipped
    other record types (Inbound, new ones): skipped

Bounce and SpamComplaint records have their own `ID`; the others are identified by what they
say (record type, message, recipient, time, link), so a retried POST gets the same event id.

Security: Postmark does not sign webhooks. It documents HTTP Basic credentials in the webhook
URL (https://user:password@host/...); `verify` requires exactly those.
"""
from __future__ import annotations

import hashlib
from typing import Any, Mapping

from channels.webhooks_in.base import (
    Observation, Parsed, WebhookSecrets, bad_request, iso_to_ms, load_json, opt_text, require_basic_auth, text_field,
)

PROVIDER = "postmark"
BOUNCE_TYPES: dict[str, tuple[str, str]] = {  # Bounce Type -> (kind, bounce_type)
    **dict.fromkeys(("HardBounce", "BadEmailAddress", "ManuallyDeactivated"), ("bounced", "hard")),
    **dict.fromkeys(("SoftBounce", "DnsError", "Blocked", "DMARCPolicy"), ("bounced", "soft")),
    "Transient": ("deferred", ""),
    **dict.fromkeys(("SMTPApiError", "TemplateRenderingFailed", "Unknown"), ("failed", "")),
    "Unsubscribe": ("unsubscribed", ""),
    "SpamComplaint": ("complained", ""),
}
RECORD_TYPES = ("Delivery", "Bounce", "SpamComplaint", "Open", "Click", "SubscriptionChange")


def verify(headers: Mapping[str, str], body: bytes, url: str, secrets: WebhookSecrets, now_s: float,
           cert_pem: bytes | None = None) -> None:
    """Require the HTTP Basic credentials we put in the webhook URL; 401 if absent or wrong."""
    require_basic_auth(headers, secrets.postmark_user, secrets.postmark_password, "Postmark webhook")


def parse(headers: Mapping[str, str], body: bytes, *, now_s: float | None = None) -> Parsed:
    """The observation in one Postmark webhook POST (none for records we skip); 400 if not one."""
    record = load_json(body, "Postmark webhook body")
    if not isinstance(record, dict):
        raise bad_request("Postmark webhook body must be a JSON object")
    observation = _observation(record)
    return Parsed([observation] if observation is not None else [])


def _observation(record: dict[str, Any]) -> Observation | None:
    record_type = text_field(record, "RecordType", "Postmark webhook")
    if record_type not in RECORD_TYPES:
        return None
    what = f"Postmark {record_type}"
    metadata = record.get("Metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    common = dict(provider=PROVIDER, provider_message_id=text_field(record, "MessageID", what),
                  send_id=opt_text(metadata, "send_id"))
    if record_type in ("Bounce", "SpamComplaint"):
        bounce = record_type if record_type == "SpamComplaint" else text_field(record, "Type", what)
        if bounce not in BOUNCE_TYPES:
            return None
        kind, bounce_type = BOUNCE_TYPES[bounce]
        ident = record.get("ID")
        if isinstance(ident, bool) or not isinstance(ident, (int, str)) or not str(ident):
            raise bad_request(f"{what}: ID is missing")
        reason = ": ".join(filter(None, [bounce, opt_text(record, "Details") or opt_text(record, "Description")]))
        return Observation(**common, kind=kind, provider_event_id=f"{record_type}/{ident}",
                           occurred_ms=iso_to_ms(record.get("BouncedAt"), f"{what} BouncedAt"),
                           recipient=text_field(record, "Email", what), bounce_type=bounce_type, reason=reason)
    recipient = text_field(record, "Recipient", what)
    if record_type == "Delivery":
        at = text_field(record, "DeliveredAt", what)
        return Observation(**common, kind="delivered", provider_event_id=_derived_id(record_type, common, recipient, at),
                           occurred_ms=iso_to_ms(at, f"{what} DeliveredAt"), recipient=recipient,
                           reason=opt_text(record, "Details"))
    if record_type == "SubscriptionChange":
        if record.get("SuppressSending") is not True:
            return None
        at = text_field(record, "ChangedAt", what)
        return Observation(**common, kind="unsubscribed",
                           provider_event_id=_derived_id(record_type, common, recipient, at),
                           occurred_ms=iso_to_ms(at, f"{what} ChangedAt"), recipient=recipient,
                           reason=opt_text(record, "SuppressionReason"))
    at = text_field(record, "ReceivedAt", what)  # Open, Click
    url = text_field(record, "OriginalLink", what) if record_type == "Click" else ""
    geo = record.get("Geo")
    return Observation(**common, kind="opened" if record_type == "Open" else "clicked",
                       provider_event_id=_derived_id(record_type, common, recipient, at, url),
                       occurred_ms=iso_to_ms(at, f"{what} ReceivedAt"), recipient=recipient, url=url,
                       user_agent=opt_text(record, "UserAgent"), ip=opt_text(geo, "IP") if isinstance(geo, dict) else "")


def _derived_id(record_type: str, common: dict, *parts: str) -> str:
    """An id for a record Postmark gives none: the same record always gets the same one."""
    said = "\x1f".join([common["provider_message_id"], *parts])
    return f"{record_type}/{hashlib.sha256(said.encode()).hexdigest()[:32]}"
