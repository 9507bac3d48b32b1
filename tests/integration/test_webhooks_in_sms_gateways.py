"""Vonage, Plivo and Telnyx end to end on a private platform whose SMS brand sends through
vonage > plivo > telnyx > twilio: a STOP that arrives through Vonage unsubscribes the lead and
its confirmation fails over to the first gateway that works; that gateway's signed delivery
receipt matches the confirmation we sent; HELP through Plivo is answered; each gateway's bad
signature is 401 and its malformed body 400, on the real /webhooks/<provider> route."""
from __future__ import annotations

import json
import time
import uuid

import httpx
import orjson
import pytest
import yaml

from channels.webhooks_in import plivo, vonage
from stack.isolated import IsolatedPlatform
from streams.settings import ROOT
from tests.integration.conftest import wait_for
from tests.integration.test_sending import submit

AGENTS = ("intake", "planner", "sender_priority", "retry", "engagement")
CHAIN = ["vonage", "plivo", "telnyx", "twilio"]
BRAND_NUMBER = "+15005550001"  # jobsnearby's sms_from
CTX: dict = {}


@pytest.fixture(scope="module")
def iso(tmp_path_factory):
    from stack.standins import providers, smtp_sink
    folder = tmp_path_factory.mktemp("mail")
    doc = yaml.safe_load((ROOT / "tenants" / "demo.yaml").read_text())
    doc["tenants"]["jobsnearby"]["sending"]["sms"] = CHAIN
    tenants = tmp_path_factory.mktemp("tenants") / "demo.yaml"
    tenants.write_text(yaml.safe_dump(doc))
    smtp_port, _, stop_smtp = smtp_sink.start(port=0, folder=folder)
    url, stop_providers = providers.start(port=0)
    CTX["providers"] = url
    env = {"LEADSTREAM_SMTP_PORT": str(smtp_port), "LEADSTREAM_MAIL_DIR": str(folder),
           "LEADSTREAM_PROVIDERS_URL": url, "LEADSTREAM_WEBHOOK_KEYS_URL": f"{url}/webhook-keys",
           "LEADSTREAM_TENANTS_FILE": str(tenants)}
    try:
        with IsolatedPlatform(redis_db=45, agents=AGENTS, env=env, fronts=("api",)) as p:
            yield p
    finally:
        stop_providers()
        stop_smtp()


def control(provider: str, **settings) -> None:
    httpx.post(f"{CTX['providers']}/control/{provider}", json=settings).raise_for_status()


def emit(p, provider: str, events: list[dict], tamper: bool = False) -> dict:
    r = httpx.post(f"{CTX['providers']}/webhooks/emit", timeout=30,
                   json={"provider": provider, "target": f"{p.api_url}/webhooks/{provider}",
                         "events": events, "tamper": tamper})
    assert r.status_code == 200, r.text
    return r.json()


def sent_to(provider: str, number: str) -> list[dict]:
    wanted = {number, number.lstrip("+")}  # Vonage takes numbers without the '+'
    return [m for m in httpx.get(f"{CTX['providers']}/sent/{provider}").json() if m["to"] in wanted]


def lead_state(p, lid: str) -> dict | None:
    raw = p.redis.get(f"ls:lead:jobsnearby:{lid}")
    return orjson.loads(raw) if raw else None


def unused_number() -> str:
    """A number in the fictional 555 range that no gateway stand-in has texted in this session
    (10,000 numbers shared by every SMS test: another test's answers must not count here)."""
    while True:
        phone = f"+1206555{int(uuid.uuid4().hex[:4], 16) % 10000:04d}"
        if not any(sent_to(provider, phone) for provider in ("vonage", "plivo", "telnyx", "twilio", "esendex")):
            return phone


def sms_lead(p) -> tuple[str, str]:
    phone = unused_number()
    [lid] = submit(p, "jobsnearby", [{
        "phone": phone, "first_name": "Tess", "partner": "indeed-xml", "list": "sms-alerts",
        "location": {"zip": "98101", "country": "US"}, "interests": {"keywords": ["driver"]},
        "consent": {"at": "2026-11-20T09:00:00Z", "ip": "203.0.113.9", "text": "Yes, text me jobs."}}])
    st = wait_for(lambda: lead_state(p, lid), 60, what="the SMS lead accepted")
    return lid, st["address"]


def test_stop_through_vonage_unsubscribes_and_the_confirmation_fails_over_to_telnyx(iso):
    lid, number = sms_lead(iso)
    control("vonage", mode="fail")
    control("plivo", mode="throttle", retry_after_s=1)
    try:
        answer = emit(iso, "vonage", [{"msisdn": number.lstrip("+"), "to": BRAND_NUMBER.lstrip("+"),
                                       "messageId": uuid.uuid4().hex[:16].upper(), "text": "STOP", "type": "text",
                                       "keyword": "STOP", "message-timestamp": time.strftime("%Y-%m-%d %H:%M:%S",
                                                                                             time.gmtime())}])
        assert answer["status"] == 200 and json.loads(answer["body"]) == {"accepted": 1, "unmatched": 0}
        wait_for(lambda: lead_state(iso, lid)["status"] == "unsubscribed", 60, what="STOP through Vonage")
        [confirmation] = wait_for(lambda: [m for m in sent_to("telnyx", number) if "unsubscribed" in m["body"]], 60,
                                  what="the STOP confirmation through Telnyx")
    finally:
        control("vonage", mode="ok")
        control("plivo", mode="ok")
    assert "Jobs Nearby" in confirmation["body"] and confirmation["from"] == BRAND_NUMBER
    # the confirmation went nowhere else (the welcome may have gone through Vonage before it failed)
    assert not [m for m in sent_to("vonage", number) + sent_to("plivo", number) if "unsubscribed" in m["body"]]
    # the dispatch recorded Telnyx's message id, so Telnyx's signed receipt finds our send
    wait_for(lambda: iso.redis.exists(f"ls:pmsg:telnyx:{confirmation['id']}"), 60, what="the dispatch recorded")
    receipt = emit(iso, "telnyx", [{"event_type": "message.finalized", "payload": {
        "id": confirmation["id"], "direction": "outbound", "type": "SMS", "from": {"phone_number": BRAND_NUMBER},
        "to": [{"phone_number": number, "status": "delivered"}], "text": confirmation["body"], "errors": []}}])
    assert receipt["status"] == 200 and json.loads(receipt["body"]) == {"accepted": 1, "unmatched": 0}


def test_help_through_plivo_is_answered_through_the_first_gateway_and_its_receipt_matches(iso):
    lid, number = sms_lead(iso)
    answer = emit(iso, "plivo", [{"From": number.lstrip("+"), "To": BRAND_NUMBER.lstrip("+"), "Text": "HELP",
                                  "Type": "sms", "MessageUUID": str(uuid.uuid4()), "Units": "1"}])
    assert answer["status"] == 200 and json.loads(answer["body"]) == {"accepted": 1, "unmatched": 0}
    # (the lead's welcome SMS went through Vonage too, and may also mention the rates when it
    # fits its segment: the HELP answer is the one that says where to get help)
    [helped] = wait_for(lambda: [m for m in sent_to("vonage", number) if "Help: help@" in m["body"]], 60,
                        what="the HELP answer through Vonage")
    assert helped["client_ref"]  # our send id travels as client-ref
    wait_for(lambda: iso.redis.exists(f"ls:pmsg:vonage:{helped['id']}"), 60, what="the dispatch recorded")
    receipt = emit(iso, "vonage", [{"msisdn": number.lstrip("+"), "to": BRAND_NUMBER.lstrip("+"),
                                    "messageId": helped["id"], "status": "delivered", "err-code": "0",
                                    "client-ref": helped["client_ref"],
                                    "message-timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}])
    assert receipt["status"] == 200 and json.loads(receipt["body"]) == {"accepted": 1, "unmatched": 0}
    assert lead_state(iso, lid)["status"] == "accepted"  # HELP changes nothing


def test_bad_signatures_are_401_and_malformed_bodies_400_for_each_gateway(iso):
    events = {
        "vonage": [{"msisdn": "12065550000", "to": "15005550001", "messageId": "M1", "status": "delivered"}],
        "plivo": [{"MessageUUID": "u1", "Status": "delivered", "To": "12065550000", "From": "15005550001"}],
        "telnyx": [{"event_type": "message.finalized", "payload": {
            "id": "m1", "to": [{"phone_number": "+12065550000", "status": "delivered"}]}}],
    }
    for provider, items in events.items():
        assert emit(iso, provider, items, tamper=True)["status"] == 401, provider
    url = iso.api_url
    assert httpx.post(f"{url}/webhooks/vonage", data={"messageId": "M1", "status": "delivered"}).status_code == 401
    assert httpx.post(f"{url}/webhooks/plivo", data={"MessageUUID": "u1"}).status_code == 401
    assert httpx.post(f"{url}/webhooks/telnyx", json={"data": {}}).status_code == 401
    # signed, but not a receipt or a message / not an event
    params = {"messageId": "M1", "msisdn": "12065550000", "timestamp": str(int(time.time())), "nonce": "n"}
    params["sig"] = vonage.sign(params, "standin-signature-secret", "sha256")
    assert httpx.post(f"{url}/webhooks/vonage", data=params).status_code == 400
    form = {"MessageUUID": "u1", "From": "1", "To": "2"}
    headers = {"x-plivo-signature-v3-nonce": "7",
               "x-plivo-signature-v3": plivo.sign(f"{url}/webhooks/plivo", form, "7", "standin-plivo-token")}
    assert httpx.post(f"{url}/webhooks/plivo", data=form, headers=headers).status_code == 400
    r = emit(iso, "telnyx", [{"event_type": "message.finalized", "payload": {"id": "m1", "to": "nobody"}}])
    assert r["status"] == 400
