"""POST /webhooks/{provider}: what the email and SMS providers tell us, verified and kept.

Every request's raw body goes to webhooks.raw whatever happens (webhook.received, with the
status we answered). A request whose signature or credentials do not verify is answered 401,
one that is not the provider's format 400; otherwise each observation is matched to our send
(the provider's message id -> ls:pmsg, written when the message was dispatched; an inbound
SMS -> the tenant owning the number it was sent to, the lead by its phone number) and
produced to engagement.observed, where the engagement agent decides what follows. The answer
is 200 only once Kafka has everything; 503 otherwise, so the provider retries. A 503 after a
produce that timed out cannot know whether Kafka has it after all (the producer may deliver it
once the broker is back): the retry carries the provider's own ids, from which the event ids
come, so it collapses into the one already written.

Secrets: LEADSTREAM_SENDGRID_WEBHOOK_PUBLIC_KEY, LEADSTREAM_TWILIO_AUTH_TOKEN, the Esendex
push credentials, LEADSTREAM_MAILGUN_WEBHOOK_SIGNING_KEY, the Postmark webhook credentials
(LEADSTREAM_POSTMARK_WEBHOOK_USER / _PASSWORD), the SNS certificate rules, LEADSTREAM_VONAGE_SIGNATURE_SECRET
(+ _METHOD), LEADSTREAM_PLIVO_AUTH_TOKEN and LEADSTREAM_TELNYX_PUBLIC_KEY (see streams/settings.py). Locally the
providers' stand-in makes the keys; the API reads the public ones from LEADSTREAM_WEBHOOK_KEYS_URL.
"""
from __future__ import annotations

from typing import Any

import asyncio
import base64
import dataclasses
import hashlib
import logging
import os
import time
from urllib.parse import urlparse

import httpx
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.access import rule
from api.body import read_body
from api.errors import ApiError
from channels.webhooks_in import PROVIDERS, Observation, WebhookRejected, WebhookSecrets, ses
from domain.identity import derived_event_id, new_event_id
from domain.intake import source_partner
from domain.schema_labels import schema_label
from domain.sealing import ip_kept, is_sealed
from projections.redis_engagement import EngagementStore
from streams.producer import ProduceError
from streams.topics import ENGAGEMENT_OBSERVED, WEBHOOKS_RAW

Deps = Any  # runtime.deps.Deps, passed in by the composition root

log = logging.getLogger("leadstream.webhooks")
SOURCE = "api:webhooks"
CERT_TTL_S, CERT_FAILURE_TTL_S, CERT_CACHE_SIZE = 86_400.0, 60.0, 64


class WebhookKeys:
    """The verification secrets, with the local stand-in's public keys fetched once."""

    def __init__(self, deps: Deps):
        self.s = deps.settings
        self._secrets: WebhookSecrets | None = None
        self._certs: dict[str, tuple[float, bytes | WebhookRejected]] = {}  # url -> (until, cert or failure)

    async def secrets(self) -> WebhookSecrets:
        if self._secrets is None:
            s = self.s
            public_key = s.sendgrid_webhook_public_key
            if not public_key and s.webhook_keys_url:
                async with httpx.AsyncClient(timeout=5) as c:
                    public_key = (await c.get(s.webhook_keys_url)).json()["sendgrid_public_key"]
            self._secrets = WebhookSecrets(
                sendgrid_public_key=public_key,
                ses_cert_url_prefixes=tuple(p for p in s.ses_cert_url_prefixes.split(",") if p),
                ses_topic_arns=tuple(p for p in s.ses_topic_arns.split(",") if p),
                twilio_auth_token=s.twilio_auth_token, esendex_user=s.esendex_username,
                esendex_password=s.esendex_password, mailgun_signing_key=s.mailgun_webhook_signing_key,
                postmark_user=s.postmark_webhook_user, postmark_password=s.postmark_webhook_password,
                max_age_s=s.webhook_max_age_s,
                vonage_signature_secret=s.vonage_signature_secret,
                vonage_signature_method=s.vonage_signature_method, plivo_auth_token=s.plivo_auth_token,
                telnyx_public_key=s.telnyx_public_key
                or await published_key(s.webhook_keys_url, "telnyx_public_key"))
        return self._secrets

    async def cert(self, url: str) -> bytes:
        """The SNS signing certificate at an allowed URL (checked by ses.precheck), over https
        (or an allowed stand-in), cached: a certificate for a day, a failure for a minute, so
        unauthenticated POSTs naming one URL make one outbound fetch, not one each."""
        now = time.monotonic()
        hit = self._certs.get(url)
        if hit is not None and hit[0] > now:
            if isinstance(hit[1], WebhookRejected):
                raise hit[1]
            return hit[1]
        try:
            async with httpx.AsyncClient(timeout=5, follow_redirects=False) as c:
                r = await c.get(url)
            if r.status_code != 200:
                raise WebhookRejected(401, f"signing certificate not available ({r.status_code})")
            entry: tuple[float, bytes | WebhookRejected] = (now + CERT_TTL_S, r.content)
        except (httpx.HTTPError, WebhookRejected) as exc:
            failure = exc if isinstance(exc, WebhookRejected) else WebhookRejected(
                401, f"signing certificate not available ({type(exc).__name__})")
            entry = (now + CERT_FAILURE_TTL_S, failure)
        if len(self._certs) >= CERT_CACHE_SIZE:
            self._certs.pop(next(iter(self._certs)))  # the oldest entry
        self._certs[url] = entry
        if isinstance(entry[1], WebhookRejected):
            raise entry[1]
        return entry[1]


async def published_key(keys_url: str, name: str) -> str:
    """A public key the local providers' stand-in publishes at keys_url ("" when there is none)."""
    if not keys_url:
        return ""
    async with httpx.AsyncClient(timeout=5) as c:
        return str((await c.get(keys_url)).json().get(name, ""))


class WebhookTaken(BaseModel):
    accepted: int = Field(description="observations matched to a send of ours and recorded")
    unmatched: int = Field(description="observations naming no send we know (kept raw on webhooks.raw)")


# each provider's own wire format, verified and parsed by channels/webhooks_in/<provider>.py
PROVIDER_BODIES = {"requestBody": {"required": True, "description": (
    "The provider's own format: sendgrid (signed Event Webhook, a JSON array of events), ses (an SNS "
    "notification or subscription confirmation, JSON), twilio (status callback or inbound message, "
    "form-encoded, X-Twilio-Signature), esendex (push notification XML, HTTP Basic), mailgun (one event, "
    "JSON {signature, event-data}, HMAC-SHA256 signed), postmark (one record, JSON with RecordType, HTTP Basic), "
    "vonage (delivery receipt or inbound message, form or JSON, signed with sig), plivo (status callback or "
    "inbound message, form-encoded, X-Plivo-Signature-V3), telnyx (message event JSON, Ed25519 "
    "telnyx-signature-ed25519)."),
    "content": {"application/json": {"schema": {"oneOf": [{"type": "array", "items": {"type": "object"}},
                                                          {"type": "object"}]}},
                "application/x-www-form-urlencoded": {"schema": {"type": "object",
                                                                 "additionalProperties": {"type": "string"}}},
                "text/xml": {"schema": {"type": "string"}}}}}


def install_webhooks(app: FastAPI, deps: Deps) -> None:
    keys = WebhookKeys(deps)

    @app.post("/webhooks/{provider}", openapi_extra={**rule("public"), **PROVIDER_BODIES},
              response_model=WebhookTaken, responses={400: {"description": "not the provider's format"},
                                                   401: {"description": "signature or credentials do not verify"},
                                                   503: {"description": "not confirmed stored: the provider should retry (a copy collapses)"}})
    async def webhook(provider: str, request: Request):
        """A provider's webhook (SendGrid, Amazon SES via SNS, Mailgun, Postmark, Twilio, Esendex, Vonage, Plivo,
        Telnyx)."""
        module = PROVIDERS.get(provider)
        if module is None:
            raise ApiError(404, "unknown_provider", f"no webhook for {provider!r}; one of {', '.join(PROVIDERS)}")
        body = await read_body(request, deps.settings)
        headers = {k.lower(): v for k, v in request.headers.items()}
        status, error, observations = 200, "", []
        now_s = time.time()
        try:
            observations = await _verified(module, provider, headers, body, signed_url(request, deps.settings), keys,
                                           now_s)
            observations = await _first_times(deps, observations, int(now_s * 1000))
        except WebhookRejected as exc:
            status, error = exc.status, exc.detail
        matched = await _match(deps, observations) if observations else []
        # where a person opened or clicked from: sealed with their data key, else its network only
        matched = [ip_kept(e) for e in await deps.sealer().seal_known([("webhook.observation", e) for e in matched])]
        unmatched = len(observations) - len(matched)
        if unmatched:
            error = error or f"{unmatched} of {len(observations)} observations name no send we know"
        await _produce(deps, provider, headers, body, status, error, matched, complete=not unmatched)
        if status != 200:
            raise ApiError(status, "unauthorized" if status == 401 else "bad_request", error)
        return JSONResponse({"accepted": len(matched), "unmatched": unmatched})


def signed_url(request: Request, settings) -> str:
    """The URL the provider called and signed (Twilio, Plivo and Vonage sign it): the public
    base URL when one is set (behind a TLS-terminating proxy the API sees http://internal:port),
    else the request's own."""
    if not settings.public_webhook_base_url:
        return str(request.url)
    query = request.url.query
    return settings.public_webhook_base_url.rstrip("/") + request.url.path + (f"?{query}" if query else "")


async def _verified(module, provider: str, headers: dict, body: bytes, url: str, keys: WebhookKeys,
                    now_s: float | None = None) -> list[Observation]:
    """The request's observations once verified (parse gives formats without a time now_s)."""
    secrets = await keys.secrets()
    cert, now = None, time.time() if now_s is None else now_s
    if provider == "ses":  # every cheap check first: a forged message never makes us fetch
        cert = await keys.cert(ses.precheck(body, secrets, now))
    module.verify(headers, body, url, secrets, now, cert_pem=cert)
    parsed = module.parse(headers, body, now_s=now)
    if parsed.subscribe_url:
        await _confirm_subscription(parsed.subscribe_url, secrets)
    return parsed.observations


async def _first_times(deps: Deps, observations: list[Observation], received_ms: int) -> list[Observation]:
    """Observations whose format carries no time of their own (Twilio callbacks, inbound SMS
    of several gateways: parse gave them received_ms, int(now_s * 1000)) take the time their
    provider event first came, so a replay or a retry decides the same event id, not a new one."""
    untimed = [i for i, o in enumerate(observations) if o.occurred_ms == received_ms]
    firsts = await EngagementStore(deps.redis).first_received(
        [(observations[i].provider, observations[i].provider_event_id) for i in untimed], received_ms)
    out = list(observations)
    for i, first in zip(untimed, firsts):
        out[i] = dataclasses.replace(out[i], occurred_ms=first)
    return out


async def _confirm_subscription(url: str, secrets: WebhookSecrets) -> None:
    """SNS asks us to confirm a subscription (of an allowed topic: verify checked it): GET its
    URL, only SNS's own ConfirmSubscription URL (or an allowed stand-in's)."""
    if not ses.subscribe_url_allowed(url, secrets):
        raise WebhookRejected(400, f"refusing to confirm a subscription at {(urlparse(url).hostname or url)[:200]!r}")
    async with httpx.AsyncClient(timeout=5, follow_redirects=False) as c:
        await c.get(url)


async def _match(deps: Deps, observations: list[Observation]) -> list[dict]:
    """Observation events for those we can tie to a tenant and lead."""
    store = EngagementStore(deps.redis)
    sent = await store.messages([(o.provider, o.provider_message_id) for o in observations if o.kind != "reply"])
    sent_iter = iter(sent)
    by_number = {t.brand.sms_from: t for t in deps.tenants.tenants.values()}
    replies = [(by_number[o.to_number].id, deps.lead_ids.of(by_number[o.to_number].id, "sms", o.from_number))
               for o in observations if o.kind == "reply" and o.to_number in by_number]
    # a reply names no send: the lead's partner comes from its read model (one round trip)
    partners = {key: source_partner(st) if st else ""
                for key, st in zip(replies, await deps.leads.get_many(replies))}
    now_ms = int(time.time() * 1000)
    out = []
    for o in observations:
        if o.kind == "reply":
            tenant = by_number.get(o.to_number)
            lid = deps.lead_ids.of(tenant.id, "sms", o.from_number) if tenant else ""
            facts = {"tenant": tenant.id, "lead_id": lid, "send_id": "", "channel": "sms", "list": "",
                     "template": "", "partner": partners.get((tenant.id, lid), "")} if tenant else None
        else:
            facts = next(sent_iter)
        if facts is None:
            log.warning("webhook %s %s: no send known for message %s", o.provider, o.kind, o.provider_message_id)
            continue
        out.append(_observation_event(o, facts, now_ms))
    return out


def _observation_event(o: Observation, facts: dict, now_ms: int) -> dict:
    # the provider's own event id fixes ours: a webhook the provider retries decides nothing twice
    at = o.occurred_ms or now_ms
    return {"event_id": derived_event_id(f"{o.provider}/{o.provider_event_id}", "webhook.observation", at),
            "tenant": facts["tenant"],
            "occurred_at": at, "schema": schema_label("webhook.observation"), "causation_id": None,
            "source": SOURCE, "lead_id": facts["lead_id"], "provider": o.provider, "kind": o.kind,
            "provider_event_id": o.provider_event_id, "provider_message_id": o.provider_message_id,
            "send_id": o.send_id or facts["send_id"], "channel": facts["channel"], "list": facts["list"],
            "template": facts["template"], "recipient": o.recipient, "bounce_type": o.bounce_type,
            "reason": o.reason, "url": o.url, "user_agent": o.user_agent, "ip": o.ip,
            "from_number": o.from_number, "to_number": o.to_number, "text": o.text,
            "partner": facts.get("partner", "")}


async def _produce(deps: Deps, provider: str, headers: dict, body: bytes, status: int, error: str,
                   events: list[dict], complete: bool) -> None:
    now_ms = int(time.time() * 1000)
    raw = raw_received(provider, headers, body, status, error, now_ms)
    raw = await _kept_raw(deps, raw, events) if complete else {**raw, "body": "", "body_encoding": "not_kept"}
    enc = deps.codec.encode
    records = [(deps.topic(WEBHOOKS_RAW), provider.encode(), enc("webhook.received", raw), None)]
    records += [(deps.topic(ENGAGEMENT_OBSERVED), e["lead_id"].encode(), enc("webhook.observation", e), None)
                for e in events]
    try:
        await deps.producer.send_many(records, timeout=deps.settings.produce_timeout_s)
    except (ProduceError, asyncio.TimeoutError) as exc:
        raise ApiError(503, "unavailable", f"not confirmed stored ({exc}): retry", headers={"Retry-After": "5"}) from exc


def raw_received(provider: str, headers: dict, body: bytes, status: int, error: str, now_ms: int) -> dict:
    """The webhook.received of one request, its body clear (sealed or left out by _kept_raw)."""
    try:
        text, encoding = body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(body).decode(), "base64"
    return {"event_id": new_event_id(now_ms, os.urandom(10)), "tenant": "", "occurred_at": now_ms,
            "schema": schema_label("webhook.received"), "causation_id": None, "source": SOURCE, "provider": provider,
            "content_type": headers.get("content-type", ""),
            "headers": orjson.dumps({k: v for k, v in headers.items() if k != "authorization"}).decode(),
            "body": text, "body_encoding": encoding, "status": status, "error": error[:500], "lead_id": "",
            "body_sha256": hashlib.sha256(body).hexdigest(), "body_bytes": len(body)}


async def _kept_raw(deps: Deps, raw: dict, events: list[dict]) -> dict:
    """The raw request as webhooks.raw keeps it: its body sealed with the data key of the one lead
    it is about (every observation in it matched, all to that lead, who has a durable key), so an
    erasure leaves it unreadable; a body about nobody we know, several people, or a lead without
    a key is not kept (its digest and size are). The events it gave are kept either way."""
    leads = {(e["tenant"], e["lead_id"]) for e in events}
    if len(leads) == 1 and all(lead for _, lead in leads):
        [(tenant, lead)] = leads
        [sealed] = await deps.sealer().seal_known([("webhook.received", {**raw, "tenant": tenant, "lead_id": lead})])
        if is_sealed(sealed["body"]):
            return sealed
    return {**raw, "tenant": events[0]["tenant"] if events else "", "body": "", "body_encoding": "not_kept"}
