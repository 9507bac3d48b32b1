"""Builds the delivery adapters from Settings, and chains a list's providers in failover.

Provider names in the tenant file: smtp, sendgrid, ses, mailgun, postmark (email); twilio, esendex,
vonage, plivo, telnyx (SMS).
"""
from __future__ import annotations

from typing import Awaitable, Callable

from channels.failover import CircuitBreaker, FailoverMailer, FailoverSms
from channels.mailgun import MailgunMailer
from channels.plivo import PlivoSms
from channels.postmark import PostmarkMailer
from channels.sendgrid import SendGridMailer
from channels.ses import SesMailer
from channels.smtp_pool import SmtpPool
from channels.telnyx import TelnyxSms
from channels.twilio import TwilioSms
from channels.vonage import VonageSms
from channels.xml_sms import EsendexSms
from streams.settings import Settings

EMAIL_PROVIDERS = ("smtp", "sendgrid", "ses", "mailgun", "postmark")
SMS_PROVIDERS = ("twilio", "esendex", "vonage", "plivo", "telnyx")


def build_providers(s: Settings, sign: Callable[[bytes], bytes] | None = None,
                    sign_async: Callable[[bytes], Awaitable[bytes]] | None = None) -> dict:
    """Every provider adapter, by name (connections open lazily, on first use). `sign` is the
    DKIM signer of the adapters that send our whole MIME message (channels.dkim); the SMTP pool
    takes `sign_async` when given (the same signatures, the key operation off the event loop)."""
    base = s.providers_url
    return {
        "smtp": SmtpPool(s.smtp_host, s.smtp_port, size=s.smtp_pool_size, starttls=s.smtp_starttls,
                         username=s.smtp_username or None, password=s.smtp_password or None,
                         sign=sign_async or sign),
        "sendgrid": SendGridMailer(s.sendgrid_api_key, s.sendgrid_url or base),
        "ses": SesMailer(s.ses_access_key_id, s.ses_secret_access_key, s.ses_region, s.ses_url or base,
                         sign=sign),
        "mailgun": MailgunMailer(s.mailgun_api_key, s.mailgun_url or base, sign=sign),
        "postmark": PostmarkMailer(s.postmark_server_token, s.postmark_url or base,
                                   message_stream=s.postmark_message_stream),
        "twilio": TwilioSms(s.twilio_account_sid, s.twilio_auth_token, s.twilio_url or base),
        "esendex": EsendexSms(s.esendex_username, s.esendex_password, s.esendex_account_reference,
                              s.esendex_url or base),
        "vonage": VonageSms(s.vonage_api_key, s.vonage_api_secret, s.vonage_url or base,
                            status_callback=s.vonage_status_url or None),
        "plivo": PlivoSms(s.plivo_auth_id, s.plivo_auth_token, s.plivo_url or base,
                          status_callback=s.plivo_status_url or None),
        "telnyx": TelnyxSms(s.telnyx_api_key, s.telnyx_url or base,
                            messaging_profile_id=s.telnyx_messaging_profile_id or None,
                            webhook_url=s.telnyx_webhook_url or None),
    }


class Chains:
    """A failover chain per provider order, built once; one circuit breaker per provider."""

    def __init__(self, providers: dict):
        self.providers = providers
        self.breakers = {name: CircuitBreaker() for name in providers}
        self._chains: dict[tuple[str, ...], object] = {}

    def for_names(self, names: list[str] | tuple[str, ...], channel: str):
        """The mailer (email) or gateway (sms) trying these providers in order."""
        names = tuple(names)
        known = EMAIL_PROVIDERS if channel == "email" else SMS_PROVIDERS
        bad = [n for n in names if n not in known]
        if not names or bad:
            raise ValueError(f"{channel} providers {list(names)}: unknown {bad}; choose from {known}")
        if names not in self._chains:
            self._chains[names] = self._chain(names, channel)
        return self._chains[names]

    def _chain(self, names: tuple[str, ...], channel: str):
        cls = FailoverMailer if channel == "email" else FailoverSms
        chain = self.providers[names[-1]]
        for name in reversed(names[:-1]):
            chain = cls(self.providers[name], chain, self.breakers[name])
        return chain

    async def close(self) -> None:
        for p in self.providers.values():
            await p.close()
