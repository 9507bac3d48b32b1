"""Vonage (SMS API), Plivo and Telnyx adapters against a private provider stand-in, and SMS
failover across the gateways (Chains, as the sender builds them)."""
from __future__ import annotations

import httpx
import pytest

from channels.base import SmsMessage
from services.sending.ports import SmsGateway
from channels.plivo import PlivoSms
from channels.registry import SMS_PROVIDERS, Chains, build_providers
from channels.telnyx import TelnyxSms
from channels.vonage import VonageSms
from domain.config_entities import KNOWN_PROVIDERS
from streams.settings import Settings

from tests.channels.provider_standin import CREDS, admin, control, fresh, sent, standin  # noqa: F401 (fixtures)


def sms(i: int, to: str | None = None, body: str | None = None) -> SmsMessage:
    return SmsMessage(send_id=f"demo:lead{i}:shifts:2026-11-26", from_number="+15005550006",
                      to_number=to or f"+4477009001{i:02d}", body=body or f"3 new shifts near you {i}: l.example/c/{i}")


def vonage(url: str, secret: str | None = None, **kw) -> VonageSms:
    c = CREDS["vonage"]
    return VonageSms(c["api_key"], secret or c["api_secret"], base_url=url, **kw)


def plivo(url: str, token: str | None = None, **kw) -> PlivoSms:
    c = CREDS["plivo"]
    return PlivoSms(c["auth_id"], token or c["auth_token"], base_url=url, **kw)


def telnyx(url: str, key: str | None = None, **kw) -> TelnyxSms:
    return TelnyxSms(key or CREDS["telnyx"]["api_key"], base_url=url, **kw)


async def send(gateway, messages: list[SmsMessage]):
    try:
        return await gateway.send_many(messages)
    finally:
        await gateway.close()


def vonage_statuses(admin: httpx.Client, status: str, text: str, count: int = 1) -> None:
    admin.post("/control/vonage/statuses", json={"status": status, "error_text": text, "count": count}
               ).raise_for_status()


# ---- Vonage -------------------------------------------------------------------------------

async def test_vonage_posts_the_documented_form_and_reads_the_message_id(standin, admin):
    gateway = vonage(standin, status_callback="https://hooks.example/webhooks/vonage")
    assert isinstance(gateway, SmsGateway)
    outcomes = await send(gateway, [sms(1), sms(2)])
    assert all(o.ok and o.provider == "vonage" and o.provider_id for o in outcomes)
    accepted = {a["to"]: a for a in sent(admin, "vonage")}
    assert accepted["447700900101"]["request"] == {
        "api_key": "standin-key", "from": "15005550006", "to": "447700900101",
        "text": "3 new shifts near you 1: l.example/c/1", "client-ref": "demo:lead1:shifts:2026-11-26",
        "callback": "https://hooks.example/webhooks/vonage"}  # the stand-in keeps the secret out of its record
    assert sorted(a["id"] for a in accepted.values()) == sorted(o.provider_id for o in outcomes)


async def test_vonage_sends_non_gsm_text_as_unicode_and_gsm_text_as_text(standin, admin):
    body = "Zoë, 2 new jobs 🙂 near Kraków: l.example/c/9"
    outcomes = await send(vonage(standin), [sms(1, body=body), sms(2, body="Café £5 bonus {today}")])
    assert all(o.ok for o in outcomes)
    accepted = {a["to"]: a for a in sent(admin, "vonage")}
    unicode, gsm = accepted["447700900101"], accepted["447700900102"]
    assert unicode["type"] == "unicode" and unicode["shown"] == body  # arrives as written
    assert gsm["type"] == "text" and gsm["shown"] == "Café £5 bonus {today}"


async def test_vonage_long_text_is_split_and_the_first_part_id_recorded(standin, admin):
    outcome = (await send(vonage(standin), [sms(1, body="x" * 200)]))[0]
    [record] = sent(admin, "vonage")
    assert len(record["ids"]) == 2 and outcome.ok and outcome.provider_id == record["ids"][0]


async def test_vonage_wrong_secret_is_permanent_status_4(standin, admin):
    outcome = (await send(vonage(standin, secret="wrong"), [sms(1)]))[0]
    assert outcome.permanent and "status 4" in outcome.error and "Bad Credentials" in outcome.error
    assert sent(admin, "vonage") == []


async def test_vonage_invalid_number_fails_alone(standin, admin):
    outcomes = await send(vonage(standin), [sms(1), sms(2, to="+44 abc"), sms(3)])
    assert outcomes[0].ok and outcomes[2].ok
    assert outcomes[1].permanent and "status 3" in outcomes[1].error
    assert len(sent(admin, "vonage")) == 2


async def test_vonage_status_1_throttled_and_5_internal_are_transient(standin, admin):
    vonage_statuses(admin, "1", "Throttled")
    throttled = (await send(vonage(standin), [sms(1)]))[0]
    assert throttled.transient and throttled.retry_after_s == 1.0 and "status 1: Throttled" in throttled.error
    vonage_statuses(admin, "5", "Internal Error")
    internal = (await send(vonage(standin), [sms(1)]))[0]
    assert internal.transient and "status 5" in internal.error
    assert sent(admin, "vonage") == []


@pytest.mark.parametrize("status, text", [("2", "Missing to param"), ("6", "Invalid Message"),
                                          ("9", "Partner Quota Violation"), ("29", "Non-Whitelisted Destination")])
async def test_vonage_other_statuses_are_permanent(standin, admin, status, text):
    vonage_statuses(admin, status, text)
    outcome = (await send(vonage(standin), [sms(1)]))[0]
    assert outcome.permanent and outcome.error == f"status {status}: {text}"


async def test_vonage_http_429_waits_retry_after_and_500_is_transient(standin, admin):
    control(admin, "vonage", mode="throttle", retry_after_s=7, fail_next=1)
    throttled = (await send(vonage(standin), [sms(1)]))[0]
    assert throttled.transient and throttled.retry_after_s == 7 and "429" in throttled.error
    control(admin, "vonage", mode="fail", fail_next=1)
    failed = (await send(vonage(standin), [sms(1)]))[0]
    assert failed.transient and "HTTP 500" in failed.error
    assert sent(admin, "vonage") == []


# ---- Plivo --------------------------------------------------------------------------------

async def test_plivo_posts_the_documented_json_and_reads_the_message_uuid(standin, admin):
    gateway = plivo(standin, status_callback="https://hooks.example/webhooks/plivo")
    assert isinstance(gateway, SmsGateway)
    outcomes = await send(gateway, [sms(1), sms(2)])
    assert all(o.ok and o.provider == "plivo" and len(o.provider_id) == 36 for o in outcomes)
    accepted = {a["to"]: a for a in sent(admin, "plivo")}
    assert accepted["+447700900101"]["request"] == {
        "src": "+15005550006", "dst": "+447700900101", "text": "3 new shifts near you 1: l.example/c/1",
        "url": "https://hooks.example/webhooks/plivo", "method": "POST"}
    assert sorted(a["id"] for a in accepted.values()) == sorted(o.provider_id for o in outcomes)


async def test_plivo_wrong_token_and_bad_number_are_permanent(standin, admin):
    refused = (await send(plivo(standin, token="wrong"), [sms(1)]))[0]
    assert refused.permanent and "HTTP 401" in refused.error and "authentication failed" in refused.error
    outcomes = await send(plivo(standin), [sms(1), sms(2, to="07700 900"), sms(3)])
    assert outcomes[0].ok and outcomes[2].ok
    assert outcomes[1].permanent and "HTTP 400" in outcomes[1].error and "invalid dst" in outcomes[1].error
    assert len(sent(admin, "plivo")) == 2


async def test_plivo_unknown_account_is_permanent(standin):
    gateway = PlivoSms("MA" + "9" * 18, CREDS["plivo"]["auth_token"], base_url=standin)
    outcome = (await send(gateway, [sms(1)]))[0]
    assert outcome.permanent and "401" in outcome.error


async def test_plivo_throttle_waits_retry_after_and_500_is_transient(standin, admin):
    control(admin, "plivo", mode="throttle", retry_after_s=3, fail_next=1)
    throttled = (await send(plivo(standin), [sms(1)]))[0]
    assert throttled.transient and throttled.retry_after_s == 3 and "too many requests" in throttled.error
    control(admin, "plivo", mode="fail", fail_next=1)
    failed = (await send(plivo(standin), [sms(1)]))[0]
    assert failed.transient and "HTTP 500" in failed.error
    assert sent(admin, "plivo") == []


# ---- Telnyx -------------------------------------------------------------------------------

async def test_telnyx_posts_the_documented_json_with_bearer_and_reads_the_id(standin, admin):
    gateway = telnyx(standin, messaging_profile_id="mp-1", webhook_url="https://hooks.example/webhooks/telnyx")
    assert isinstance(gateway, SmsGateway)
    outcomes = await send(gateway, [sms(1), sms(2)])
    assert all(o.ok and o.provider == "telnyx" and len(o.provider_id) == 36 for o in outcomes)
    accepted = {a["to"]: a for a in sent(admin, "telnyx")}
    assert accepted["+447700900102"]["request"] == {
        "from": "+15005550006", "to": "+447700900102", "text": "3 new shifts near you 2: l.example/c/2",
        "messaging_profile_id": "mp-1", "webhook_url": "https://hooks.example/webhooks/telnyx"}
    assert sorted(a["id"] for a in accepted.values()) == sorted(o.provider_id for o in outcomes)


async def test_telnyx_wrong_key_and_invalid_to_are_permanent_with_telnyx_codes(standin, admin):
    refused = (await send(telnyx(standin, key="KEYWRONG"), [sms(1)]))[0]
    assert refused.permanent and "HTTP 401" in refused.error and "10009 Authentication failed" in refused.error
    outcomes = await send(telnyx(standin), [sms(1), sms(2, to="07700 900")])
    assert outcomes[0].ok
    assert outcomes[1].permanent and "40310 Invalid 'to' address" in outcomes[1].error
    assert len(sent(admin, "telnyx")) == 1


async def test_telnyx_throttle_waits_retry_after_and_500_is_transient(standin, admin):
    control(admin, "telnyx", mode="throttle", retry_after_s=5, fail_next=1)
    throttled = (await send(telnyx(standin), [sms(1)]))[0]
    assert throttled.transient and throttled.retry_after_s == 5 and "10011" in throttled.error
    control(admin, "telnyx", mode="fail", fail_next=1)
    failed = (await send(telnyx(standin), [sms(1)]))[0]
    assert failed.transient and "10007" in failed.error
    assert sent(admin, "telnyx") == []


# ---- registry and failover across gateways ---------------------------------------------------

def test_every_sms_gateway_is_known_to_the_registry_and_the_tenant_file():
    assert set(SMS_PROVIDERS) == {"twilio", "esendex", "vonage", "plivo", "telnyx"}
    assert KNOWN_PROVIDERS["sms"] == SMS_PROVIDERS


def chains_on(standin: str) -> Chains:
    return Chains(build_providers(Settings(providers_url=standin)))


async def test_a_chain_of_five_gateways_delivers_through_the_first_that_works(standin, admin):
    chains = chains_on(standin)
    try:
        for provider in ("vonage", "plivo", "twilio"):
            control(admin, provider, mode="fail")
        control(admin, "telnyx", mode="throttle", retry_after_s=2)
        gateway = chains.for_names(["vonage", "plivo", "telnyx", "twilio", "esendex"], "sms")
        outcomes = await gateway.send_many([sms(1), sms(2), sms(3)])
    finally:
        await chains.close()
    assert all(o.ok and o.provider == "esendex" for o in outcomes)
    assert {a["to"] for a in sent(admin, "esendex")} == {"447700900101", "447700900102", "447700900103"}
    for provider in ("vonage", "plivo", "telnyx", "twilio"):
        assert sent(admin, provider) == [] and admin.get(f"/control/{provider}").json()["requests"] >= 1


async def test_a_failing_first_gateway_passes_its_messages_to_the_next(standin, admin):
    chains = chains_on(standin)
    try:
        control(admin, "telnyx", mode="fail", fail_next=2)
        gateway = chains.for_names(["telnyx", "vonage", "plivo"], "sms")
        first = await gateway.send_many([sms(1), sms(2)])
        again = await gateway.send_many([sms(3)])  # telnyx works again: it takes the next message itself
    finally:
        await chains.close()
    assert [o.provider for o in first] == ["vonage", "vonage"] and all(o.ok for o in first)
    assert again[0].ok and again[0].provider == "telnyx"
    assert sent(admin, "plivo") == []


async def test_a_permanent_refusal_is_not_tried_elsewhere(standin, admin):
    chains = chains_on(standin)
    try:
        gateway = chains.for_names(["plivo", "telnyx", "vonage"], "sms")
        [outcome] = await gateway.send_many([sms(1, to="+44 abc")])
    finally:
        await chains.close()
    assert outcome.permanent and outcome.provider == "plivo"
    assert sent(admin, "telnyx") == [] and sent(admin, "vonage") == []
    assert admin.get("/control/telnyx").json()["requests"] == 0


async def test_when_every_gateway_fails_the_outcome_is_transient_with_the_soonest_wait(standin, admin):
    chains = chains_on(standin)
    try:
        control(admin, "vonage", mode="throttle", retry_after_s=9)
        control(admin, "plivo", mode="throttle", retry_after_s=4)
        control(admin, "telnyx", mode="fail")
        [outcome] = await chains.for_names(["vonage", "plivo", "telnyx"], "sms").send_many([sms(1)])
    finally:
        await chains.close()
    assert outcome.transient and outcome.retry_after_s == 4
    assert "vonage" in outcome.error and "plivo" in outcome.error and "telnyx" in outcome.error
