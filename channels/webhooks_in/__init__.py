"""Inbound provider webhooks: verify who sent them, parse them into `Observation`s.

Pure (no network I/O). Each provider module has `verify(headers, body, url, secrets, now_s,
cert_pem=None)` raising WebhookRejected(401) and `parse(headers, body)` raising
WebhookRejected(400); `ses.precheck(body, secrets, now_s)` makes the cheap checks and names
the certificate to fetch.
"""
from __future__ import annotations

from types import ModuleType

from channels.webhooks_in import esendex, mailgun, postmark, sendgrid, ses, twilio
from channels.webhooks_in import sms_gateways
from channels.webhooks_in.base import Observation, ObservationKind, Parsed, WebhookRejected, WebhookSecrets

PROVIDERS: dict[str, ModuleType] = {"sendgrid": sendgrid, "ses": ses, "twilio": twilio, "esendex": esendex,
                                    "mailgun": mailgun, "postmark": postmark}
PROVIDERS.update(sms_gateways.PROVIDERS)  # vonage, plivo, telnyx

__all__ = ["PROVIDERS", "Observation", "ObservationKind", "Parsed", "WebhookRejected", "WebhookSecrets",
           "esendex", "mailgun", "postmark", "sendgrid", "ses", "twilio"]
