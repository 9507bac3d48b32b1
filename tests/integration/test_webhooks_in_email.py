"""Mailgun and Postmark webhooks end to end on a private platform (this worktree's API and
engagement agent): messages go out through the real adapters to a private provider stand-in,
their provider ids are recorded as the sender records them, and the stand-in then sends each
provider's webhooks in its wire format to our API. The observations land on
engagement.observed tied to our send, the engagement agent turns delivery and bounces into
send events, and tampered or uncredentialed requests are refused (401) and kept raw."""
from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import orjson
import pytest
from confluent_kafka import Consumer

from channels.base import EmailMessage
from channels.mailgun import MailgunMailer
from channels.postmark import PostmarkMailer
from channels.webhooks_in.base import basic_auth_header
from schemas.codec import default_codec
from stack.isolated import IsolatedPlatform
from streams.settings import get_settings

S = get_settings()
CODEC = default_codec()
CTX: dict = {}
TENANT = "hireflow"


@pytest.fixture(scope="module")
def iso():
    from stack.standins import providers
    url, stop_providers = providers.start(port=0)
    CTX["providers"] = url
    env = {"LEADSTREAM_PROVIDERS_URL": url, "LEADSTREAM_WEBHOOK_KEYS_URL": f"{url}/webhook-keys",
           "LEADSTREAM_SES_CERT_URL_PREFIXES": f"{url}/sns/"}
    try:
        with IsolatedPlatform(redis_db=40, agents=("engagement",), env=env, fronts=("api",)) as p:
            yield p
    finally:
        stop_providers()


def dispatched(p, provider: str, address: str) -> tuple[str, str, str]:
    """Send one message through the real adapter to the stand-in and record its provider id
    as the sender does (ls:pmsg): (lead id, send id, provider message id)."""
    lead, send_id = f"lead-{uuid.uuid4().hex[:12]}", uuid.uuid4().hex[:24]
    message = EmailMessage(send_id, "alerts@hireflow.example", "HireFlow", address, "New roles", "<p>Hi</p>", "Hi",
                           {"List-Unsubscribe": "<https://l.example/u/1>"},
                           {"send_id": send_id, "tenant": TENANT, "lead_id": lead, "list": "tech-weekly"})

    async def send():
        mailer = (MailgunMailer(S.mailgun_api_key, CTX["providers"]) if provider == "mailgun"
                  else PostmarkMailer(S.postmark_server_token, CTX["providers"]))
        try:
            return (await mailer.send_many([message]))[0]
        finally:
            await mailer.close()
    outcome = asyncio.run(send())
    assert outcome.ok and outcome.provider_id, outcome
    p.redis.set(f"ls:pmsg:{provider}:{outcome.provider_id}", orjson.dumps(
        {"tenant": TENANT, "lead_id": lead, "send_id": send_id, "channel": "email", "list": "tech-weekly",
         "template": "default", "partner": "indeed-xml"}))
    return lead, send_id, outcome.provider_id


def emit(p, provider: str, events: list[dict], tamper: bool = False) -> dict:
    r = httpx.post(f"{CTX['providers']}/webhooks/emit", timeout=30,
                   json={"provider": provider, "target": f"{p.api_url}/webhooks/{provider}",
                         "events": events, "tamper": tamper})
    assert r.status_code == 200, r.text
    return r.json()


def read_topic(p, topic: str, until, timeout: float = 60.0) -> list[tuple[str, dict]]:
    """(event name, payload) of the topic's events, read until `until(events)` holds."""
    c = Consumer({"bootstrap.servers": S.kafka_bootstrap, "group.id": f"t-{uuid.uuid4().hex}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([f"{p.prefix}{topic}"])
    out: list[tuple[str, dict]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(out):
            m = c.poll(0.5)
            if m is not None and not m.error():
                out.append(CODEC.decode(m.value()))
    finally:
        c.close()
    assert until(out), f"{topic}: condition not met in {timeout} s; read {[(n, e.get('kind')) for n, e in out]}"
    return out


def mailgun_event(kind: str, pid: str, address: str, send_id: str, **extra) -> dict:
    return {"event": kind, "id": uuid.uuid4().hex, "timestamp": time.time(), "recipient": address,
            "message": {"headers": {"message-id": pid, "to": address}}, "user-variables": {"send_id": send_id}, **extra}


def test_mailgun_webhooks_land_as_observations_of_our_send(iso):
    address = f"mg-{uuid.uuid4().hex[:8]}@example.com"
    lead, send_id, pid = dispatched(iso, "mailgun", address)
    answer = emit(iso, "mailgun", [
        mailgun_event("delivered", pid, address, send_id, **{"delivery-status": {"code": 250, "message": "OK"}}),
        mailgun_event("failed", pid, address, send_id, severity="permanent", reason="bounce",
                      **{"delivery-status": {"code": 550, "message": "5.1.1 No such user"}}),
        mailgun_event("accepted", pid, address, send_id)])
    assert [r["status"] for r in answer["results"]] == [200, 200, 200]
    assert [orjson.loads(r["body"]) for r in answer["results"]] == [
        {"accepted": 1, "unmatched": 0}, {"accepted": 1, "unmatched": 0}, {"accepted": 0, "unmatched": 0}]

    mine = lambda evs: [e for n, e in evs if n == "webhook.observation" and e["lead_id"] == lead]  # noqa: E731
    observed = mine(read_topic(iso, "engagement.observed", lambda evs: len(mine(evs)) >= 2))
    assert sorted((o["kind"], o["bounce_type"]) for o in observed) == [("bounced", "hard"), ("delivered", "")]
    for o in observed:
        assert (o["provider"], o["provider_message_id"], o["send_id"], o["tenant"], o["recipient"]) == (
            "mailgun", pid, send_id, TENANT, address)
    bounced = next(o for o in observed if o["kind"] == "bounced")
    assert bounced["reason"] == "550 5.1.1 No such user"

    facts = lambda evs: sorted(n for n, e in evs if e.get("lead_id") == lead)  # noqa: E731
    decided = read_topic(iso, "sends.events", lambda evs: facts(evs) == ["send.bounced", "send.delivered"])
    bounce = next(e for n, e in decided if n == "send.bounced" and e["lead_id"] == lead)
    assert bounce["provider"] == "mailgun" and bounce["bounce_type"] == "hard" and bounce["send_id"] == send_id


def test_postmark_webhooks_land_as_observations_of_our_send(iso):
    address = f"pm-{uuid.uuid4().hex[:8]}@example.com"
    lead, send_id, pid = dispatched(iso, "postmark", address)
    now = time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime())
    meta = {"send_id": send_id}
    answer = emit(iso, "postmark", [
        {"RecordType": "Delivery", "MessageID": pid, "Recipient": address, "DeliveredAt": now, "Details": "250 OK",
         "Metadata": meta, "MessageStream": "broadcast", "ServerID": 1},
        {"RecordType": "Bounce", "ID": int(time.time() * 1000), "Type": "SoftBounce", "TypeCode": 4096,
         "MessageID": pid, "Email": address, "BouncedAt": now, "Details": "mailbox full", "Metadata": meta},
        {"RecordType": "SpamComplaint", "ID": int(time.time() * 1000) + 1, "Type": "SpamComplaint",
         "MessageID": pid, "Email": address, "BouncedAt": now, "Metadata": meta},
        {"RecordType": "SubscriptionChange", "MessageID": pid, "Recipient": address, "ChangedAt": now,
         "SuppressSending": True, "SuppressionReason": "ManualSuppression", "Metadata": meta}])
    assert [orjson.loads(r["body"]) for r in answer["results"]] == [{"accepted": 1, "unmatched": 0}] * 4

    mine = lambda evs: [e for n, e in evs if n == "webhook.observation" and e["lead_id"] == lead]  # noqa: E731
    observed = mine(read_topic(iso, "engagement.observed", lambda evs: len(mine(evs)) >= 4))
    assert sorted((o["kind"], o["bounce_type"]) for o in observed) == [
        ("bounced", "soft"), ("complained", ""), ("delivered", ""), ("unsubscribed", "")]
    assert {(o["provider"], o["provider_message_id"], o["send_id"], o["recipient"]) for o in observed} == {
        ("postmark", pid, send_id, address)}


def test_unsigned_tampered_or_uncredentialed_webhooks_are_401_and_kept_raw(iso):
    address = f"bad-{uuid.uuid4().hex[:8]}@example.com"
    _, send_id, pid = dispatched(iso, "mailgun", address)
    tampered = emit(iso, "mailgun", [mailgun_event("delivered", pid, address, send_id)], tamper=True)
    assert tampered["status"] == 401
    postmark_tampered = emit(iso, "postmark", [{"RecordType": "Delivery", "MessageID": "x", "Recipient": address,
                                                "DeliveredAt": "2026-11-26T09:00:00Z"}], tamper=True)
    assert postmark_tampered["status"] == 401
    url = iso.api_url
    no_credentials = httpx.post(f"{url}/webhooks/postmark", json={"RecordType": "Delivery"})
    assert no_credentials.status_code == 401 and no_credentials.json()["error"] == "unauthorized"
    unsigned = httpx.post(f"{url}/webhooks/mailgun", json={"event-data": {"event": "delivered"}})
    assert unsigned.status_code == 401
    assert httpx.post(f"{url}/webhooks/mailgun", content=b"not json").status_code == 400
    credentials = {"authorization": basic_auth_header(S.postmark_webhook_user, S.postmark_webhook_password)}
    malformed = httpx.post(f"{url}/webhooks/postmark", content=b"[1, 2]", headers=credentials)
    assert malformed.status_code == 400 and malformed.json()["error"] == "bad_request"

    kept = lambda evs: [e for n, e in evs if e["provider"] in ("mailgun", "postmark") and e["status"] != 200]  # noqa: E731
    refused = kept(read_topic(iso, "webhooks.raw", lambda evs: len(kept(evs)) >= 6))
    assert sorted(e["status"] for e in refused) == [400, 400, 401, 401, 401, 401]
    assert all("authorization" not in orjson.loads(e["headers"]) for e in refused)  # credentials are not kept
