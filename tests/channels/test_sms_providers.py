"""Twilio and Esendex (XML) adapters against the local provider stand-in."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx

from channels.base import SmsMessage
from services.sending.ports import SmsGateway
from channels.twilio import TwilioSms
from channels.xml_sms import EsendexSms, dispatch_xml, message_ids

from tests.channels.provider_standin import CREDS, admin, control, fresh, sent, standin  # noqa: F401 (fixtures)


def requests_seen(admin: httpx.Client, provider: str) -> int:
    return admin.get(f"/control/{provider}").json()["requests"]


def sms(i: int, to: str | None = None, sender: str = "+15005550006") -> SmsMessage:
    return SmsMessage(send_id=f"demo:lead{i}:shifts:2026-11-26", from_number=sender,
                      to_number=to or f"+4477009001{i:02d}", body=f"3 new shifts near you {i}: l.example/c/{i}")


def twilio(url: str, token: str | None = None, **kw) -> TwilioSms:
    c = CREDS["twilio"]
    return TwilioSms(c["account_sid"], token or c["auth_token"], base_url=url, **kw)


def esendex(url: str, **kw) -> EsendexSms:
    c = CREDS["esendex"]
    return EsendexSms(c["username"], c["password"], c["account_reference"], base_url=url, **kw)


# ---- Twilio -------------------------------------------------------------------------------

async def test_twilio_posts_the_documented_form_and_reads_the_sid(standin, admin):
    gateway = twilio(standin, status_callback="https://hooks.example/twilio/status")
    assert isinstance(gateway, SmsGateway)
    outcomes = await gateway.send_many([sms(1), sms(2)])
    await gateway.close()

    assert all(o.ok and o.provider == "twilio" and o.provider_id.startswith("SM") for o in outcomes)
    accepted = {a["to"]: a for a in sent(admin, "twilio")}
    assert accepted["+447700900101"]["request"] == {
        "To": "+447700900101", "From": "+15005550006", "Body": "3 new shifts near you 1: l.example/c/1",
        "StatusCallback": "https://hooks.example/twilio/status",
    }
    assert sorted(a["id"] for a in accepted.values()) == sorted(o.provider_id for o in outcomes)


async def test_twilio_invalid_number_is_permanent_and_others_are_delivered(standin, admin):
    gateway = twilio(standin)
    outcomes = await gateway.send_many([sms(1), sms(2, to="07700 900"), sms(3)])
    await gateway.close()
    assert outcomes[0].ok and outcomes[2].ok
    assert outcomes[1].permanent and "21211" in outcomes[1].error
    assert len(sent(admin, "twilio")) == 2


async def test_twilio_throttle_is_transient_with_retry_after(standin, admin):
    control(admin, "twilio", mode="throttle", retry_after_s=4)
    gateway = twilio(standin)
    outcome = (await gateway.send_many([sms(1)]))[0]
    await gateway.close()
    assert outcome.transient and outcome.retry_after_s == 4 and "20429" in outcome.error


async def test_twilio_500_is_transient_and_wrong_token_permanent(standin, admin):
    control(admin, "twilio", mode="fail", fail_next=1)
    gateway = twilio(standin)
    failed = (await gateway.send_many([sms(1)]))[0]
    await gateway.close()
    assert failed.transient and "500" in failed.error

    bad = twilio(standin, token="wrong")
    refused = (await bad.send_many([sms(1)]))[0]
    await bad.close()
    assert refused.permanent and "20003" in refused.error
    assert sent(admin, "twilio") == []


# ---- Esendex (XML) ------------------------------------------------------------------------

def test_dispatch_xml_is_the_documented_document():
    xml = dispatch_xml("EX0000000", [sms(1), sms(2)])
    assert xml == (
        b"<?xml version='1.0' encoding='utf-8'?>\n"
        b"<messages><accountreference>EX0000000</accountreference><from>15005550006</from>"
        b"<message><to>447700900101</to><body>3 new shifts near you 1: l.example/c/1</body></message>"
        b"<message><to>447700900102</to><body>3 new shifts near you 2: l.example/c/2</body></message>"
        b"</messages>"
    )


def test_message_ids_read_the_namespaced_answer():
    answer = (b'<?xml version="1.0" encoding="utf-8"?><messageheaders batchid="B1" xmlns="http://api.esendex.com/ns/">'
              b'<messageheader uri="https://x/v1.0/messageheaders/M1" id="M1" />'
              b'<messageheader uri="https://x/v1.0/messageheaders/M2" id="M2" /></messageheaders>')
    assert message_ids(answer) == ("B1", ["M1", "M2"])


async def test_esendex_batches_per_originator_and_maps_ids_to_messages(standin, admin):
    gateway = esendex(standin)
    assert isinstance(gateway, SmsGateway)
    batch = [sms(1), sms(2, sender="Shifts"), sms(3), sms(4, sender="Shifts"), sms(5)]
    outcomes = await gateway.send_many(batch)
    await gateway.close()

    assert all(o.ok and o.provider == "esendex" for o in outcomes)
    assert requests_seen(admin, "esendex") == 2  # one request per originator
    accepted = {a["id"]: a for a in sent(admin, "esendex")}
    for message, outcome in zip(batch, outcomes):
        record = accepted[outcome.provider_id]
        assert record["to"] == message.to_number.lstrip("+") and record["body"] == message.body
        assert record["from"] == message.from_number.lstrip("+")
        assert record["request"]["accountreference"] == "EX0000000"
    assert len({a["batch_id"] for a in accepted.values()}) == 2


async def test_esendex_bad_number_fails_alone_the_rest_of_its_batch_is_delivered(standin, admin):
    gateway = esendex(standin)
    outcomes = await gateway.send_many([sms(1), sms(2, to="+44abc"), sms(3)])
    await gateway.close()
    assert outcomes[0].ok and outcomes[2].ok
    assert outcomes[1].permanent and "400" in outcomes[1].error
    assert {a["to"] for a in sent(admin, "esendex")} == {"447700900101", "447700900103"}


async def test_esendex_throttle_and_500_are_transient_for_the_whole_batch(standin, admin):
    control(admin, "esendex", mode="throttle", retry_after_s=5, fail_next=1)
    gateway = esendex(standin)
    throttled = await gateway.send_many([sms(1), sms(2)])
    assert all(o.transient and o.retry_after_s == 5 for o in throttled)

    control(admin, "esendex", mode="fail", fail_next=1)
    failed = await gateway.send_many([sms(1), sms(2)])
    await gateway.close()
    assert all(o.transient and "500" in o.error for o in failed)
    assert sent(admin, "esendex") == []


async def test_esendex_wrong_account_reference_is_permanent(standin):
    c = CREDS["esendex"]
    gateway = EsendexSms(c["username"], c["password"], "EX9999999", base_url=standin)
    outcome = (await gateway.send_many([sms(1)]))[0]
    await gateway.close()
    assert outcome.permanent and "403" in outcome.error


async def test_esendex_request_is_xml_with_basic_auth(standin):
    # the stand-in refuses anything else; check the wire format directly once as well
    c = CREDS["esendex"]
    response = httpx.post(f"{standin}/v1.0/messagedispatcher", auth=(c["username"], c["password"]),
                          content=dispatch_xml(c["account_reference"], [sms(7)]),
                          headers={"Content-Type": "application/xml"})
    assert response.status_code == 200
    root = ET.fromstring(response.content)
    assert root.tag == "{http://api.esendex.com/ns/}messageheaders" and root.get("batchid")
    assert httpx.post(f"{standin}/v1.0/messagedispatcher", auth=(c["username"], "nope"),
                      content=b"<messages/>").status_code == 401
