"""Vonage, Plivo and Telnyx inbound webhooks: verification (401), parsing (400 / Observations),
and the provider stand-in's /webhooks/emit round trip into the modules' own verify + parse."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import urllib.parse

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from channels.webhooks_in import plivo, telnyx, vonage
from channels.webhooks_in.base import Observation, WebhookRejected, WebhookSecrets, tamper

from tests.channels.provider_standin import CREDS, standin  # noqa: F401 (fixture)
from tests.channels.test_webhooks_in import Receiver

NOW = 1_790_000_000.0
NOW_MS = int(NOW * 1000)
FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON = {"content-type": "application/json"}


def rejected(status: int, call, *args, **kwargs) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as info:
        call(*args, **kwargs)
    assert info.value.status == status, info.value.detail
    return info.value


def form(fields: dict) -> bytes:
    return urllib.parse.urlencode(fields).encode()


# ---- Vonage -------------------------------------------------------------------------------

V_SECRETS = WebhookSecrets(vonage_signature_secret="s3cret", vonage_signature_method="sha256")


def v_dlr(status: str = "delivered", **extra) -> dict:
    return {"msisdn": "447700900101", "to": "Shiftly", "network-code": "23410", "messageId": "0A0000001234567B",
            "price": "0.03330000", "status": status, "scts": "2609211000", "err-code": "0",
            "api-key": "abcd1234", "client-ref": "demo:lead1:shifts:2026-11-26",
            "message-timestamp": "2026-09-21 10:00:05", **extra}


def v_inbound(**extra) -> dict:
    return {"msisdn": "447700900101", "to": "447700900001", "messageId": "0B00000123456789", "text": "STOP",
            "type": "text", "keyword": "STOP", "api-key": "abcd1234", "message-timestamp": "2026-09-21 10:00:07",
            **extra}


def v_signed(fields: dict, secrets: WebhookSecrets = V_SECRETS, timestamp: float = NOW) -> dict:
    params = {**fields, "timestamp": str(int(timestamp)), "nonce": "6b1e2a0c-1d2e-4f5a-9b8c-7d6e5f4a3b2c"}
    return {**params, "sig": vonage.sign(params, secrets.vonage_signature_secret, secrets.vonage_signature_method)}


def test_vonage_sig_is_the_documented_construction():
    params = {"b": "x&y=z", "a": "1", "timestamp": "1790000000"}
    text = b"&a=1&b=x_y_z&timestamp=1790000000"  # sorted, '&' and '=' in values replaced by '_'
    assert vonage.sign(params, "k", "sha256") == hmac.new(b"k", text, hashlib.sha256).hexdigest()
    assert vonage.sign(params, "k", "sha512") == hmac.new(b"k", text, hashlib.sha512).hexdigest()
    assert vonage.sign(params, "k", "md5hash") == hashlib.md5(text + b"k").hexdigest()
    assert vonage.sign({**params, "sig": "ignored"}, "k") == vonage.sign(params, "k")
    with pytest.raises(ValueError):
        vonage.sign(params, "k", "crc32")


@pytest.mark.parametrize("method", vonage.METHODS)
def test_vonage_signed_form_and_json_verify_with_every_method(method):
    secrets = dataclasses.replace(V_SECRETS, vonage_signature_method=method)
    fields = v_signed(v_dlr(), secrets)
    vonage.verify(FORM, form(fields), "https://api.example/webhooks/vonage", secrets, NOW)
    vonage.verify(JSON, json.dumps(fields).encode(), "https://api.example/webhooks/vonage", secrets, NOW)


def test_vonage_bad_missing_or_stale_signatures_are_401():
    good = v_signed(v_dlr())
    url = "https://api.example/webhooks/vonage"
    wrong = {**good, "sig": "0" * 64}
    changed = {**good, "status": "failed"}  # a signed receipt altered on the way
    unsigned = {k: v for k, v in good.items() if k != "sig"}
    no_timestamp = {k: v for k, v in good.items() if k != "timestamp"}
    for fields in (wrong, changed, unsigned, no_timestamp):
        rejected(401, vonage.verify, FORM, form(fields), url, V_SECRETS, NOW)
    stale = v_signed(v_dlr(), timestamp=NOW - vonage.MAX_AGE_S - 1)  # Vonage resends for 24 hours
    assert "replay" in rejected(401, vonage.verify, FORM, form(stale), url, V_SECRETS, NOW).detail
    vonage.verify(FORM, form(v_signed(v_dlr(), timestamp=NOW - 3600)), url, V_SECRETS, NOW)
    rejected(401, vonage.verify, FORM, form(good), url, dataclasses.replace(V_SECRETS, vonage_signature_secret="x"), NOW)
    rejected(401, vonage.verify, FORM, form(good), url, dataclasses.replace(V_SECRETS, vonage_signature_method="md5"),
             NOW)
    rejected(401, vonage.verify, FORM, form(good), url, WebhookSecrets(), NOW)  # nothing configured


def test_vonage_parses_delivery_receipts():
    delivered = vonage.parse(FORM, form(v_signed(v_dlr()))).observations
    assert delivered == [Observation(
        provider="vonage", kind="delivered", provider_event_id="0A0000001234567B:delivered",
        provider_message_id="0A0000001234567B", occurred_ms=1_789_984_805_000,
        send_id="demo:lead1:shifts:2026-11-26", recipient="+447700900101")]
    [failed] = vonage.parse(FORM, form(v_dlr("failed", **{"err-code": "3"}))).observations
    assert failed.kind == "failed" and failed.bounce_type == "hard"
    assert failed.reason == "failed 3: Absent Subscriber - Permanent"
    [rejected_] = vonage.parse(FORM, form(v_dlr("rejected", **{"err-code": "6"}))).observations
    assert rejected_.kind == "failed" and rejected_.bounce_type == "soft" and "Anti-Spam" in rejected_.reason
    [expired] = vonage.parse(JSON, json.dumps(v_dlr("expired", **{"err-code": "2"})).encode()).observations
    assert expired.kind == "failed" and expired.provider_event_id.endswith(":expired")
    for status in ("accepted", "buffered", "unknown"):
        assert vonage.parse(FORM, form(v_dlr(status))).observations == []


def test_vonage_parses_an_inbound_message_as_a_reply():
    [reply] = vonage.parse(FORM, form(v_signed(v_inbound()))).observations
    assert reply == Observation(
        provider="vonage", kind="reply", provider_event_id="0B00000123456789:received",
        provider_message_id="0B00000123456789", occurred_ms=1_789_984_807_000, recipient="+447700900101",
        from_number="+447700900101", to_number="+447700900001", text="STOP")
    [no_time] = vonage.parse(FORM, form({k: v for k, v in v_inbound().items() if k != "message-timestamp"}),
                             now_s=NOW).observations
    assert no_time.occurred_ms == NOW_MS


@pytest.mark.parametrize("headers, body", [
    (FORM, form({k: v for k, v in v_dlr().items() if k != "messageId"})),
    (FORM, form({"messageId": "m1", "msisdn": "447700900101"})),  # neither status nor text
    (FORM, form({k: v for k, v in v_dlr().items() if k != "msisdn"})),
    (FORM, form({k: v for k, v in v_inbound().items() if k != "to"})),
    (FORM, form(v_dlr(**{"message-timestamp": "yesterday"}))),
    ({"content-type": "text/xml"}, b"<dlr/>"),
    (JSON, b"[1, 2]"),
    (JSON, b"{not json"),
    (FORM, b"\xff\xfe"),
])
def test_vonage_malformed_bodies_are_400(headers, body):
    rejected(400, vonage.parse, headers, body)


# ---- Plivo --------------------------------------------------------------------------------

P_SECRETS = WebhookSecrets(plivo_auth_token="plivo-token")
P_URL = "https://api.example/webhooks/plivo"


def p_status(status: str = "delivered", **extra) -> dict:
    return {"From": "15005550006", "To": "447700900101", "MessageUUID": "db3ce55a-7f1d-11e1-8ea7-1231380bc196",
            "Status": status, "ErrorCode": "", "TotalRate": "0.0035", "TotalAmount": "0.0035", "Units": "1",
            "MCC": "234", "MNC": "10", "PartInfo": "1 of 1", "ParentMessageUUID": "db3ce55a-7f1d-11e1-8ea7-1231380bc196",
            **extra}


def p_inbound(**extra) -> dict:
    return {"From": "447700900101", "To": "15005550006", "Text": "STOP", "Type": "sms", "Units": "1",
            "MessageUUID": "0936ec98-7c4c-11e4-9bd8-22000afa12b9", "TotalRate": "0", "TotalAmount": "0", **extra}


def p_headers(url: str, fields: dict, nonce: str = "05429567804466091622", token: str = "plivo-token") -> dict:
    return {**FORM, "x-plivo-signature-v3-nonce": nonce,
            "x-plivo-signature-v3": plivo.sign(url, fields, nonce, token)}


def test_plivo_signed_url_is_the_documented_layout():
    params = {"To": ["447700900101"], "From": ["15005550006"], "Text": ["a b"]}
    assert plivo.signed_url("https://api.example/hook", params) == \
        "https://api.example/hook?From15005550006Texta bTo447700900101"
    assert plivo.signed_url("https://api.example/hook?z=2&a=1", params) == \
        "https://api.example/hook?a=1&z=2.From15005550006Texta bTo447700900101"
    assert plivo.signed_url("https://api.example/hook?b=1", {}) == "https://api.example/hook?b=1"
    expected = base64.b64encode(hmac.new(b"tok", b"https://api.example/hook?From15005550006Texta bTo447700900101.42",
                                         hashlib.sha256).digest()).decode()
    assert plivo.sign("https://api.example/hook", params, "42", "tok") == expected


def test_plivo_valid_signatures_verify_including_one_of_several():
    fields = p_status()
    plivo.verify(p_headers(P_URL, fields), form(fields), P_URL, P_SECRETS, NOW)
    headers = p_headers(P_URL, fields)
    headers["x-plivo-signature-v3"] = f"{plivo.sign(P_URL, fields, '05429567804466091622', 'old')}," \
                                      f"{headers['x-plivo-signature-v3']}"
    plivo.verify(headers, form(fields), P_URL, P_SECRETS, NOW)


def test_plivo_bad_or_missing_signatures_are_401():
    fields = p_status()
    good = p_headers(P_URL, fields)
    cases = [
        {**good, "x-plivo-signature-v3": tamper(good["x-plivo-signature-v3"])},
        {k: v for k, v in good.items() if k != "x-plivo-signature-v3"},
        {k: v for k, v in good.items() if k != "x-plivo-signature-v3-nonce"},
        {**good, "x-plivo-signature-v3-nonce": "1"},  # another nonce
        p_headers(P_URL, fields, token="someone-elses-token"),
    ]
    for headers in cases:
        rejected(401, plivo.verify, headers, form(fields), P_URL, P_SECRETS, NOW)
    rejected(401, plivo.verify, good, form({**fields, "Status": "failed"}), P_URL, P_SECRETS, NOW)  # altered
    rejected(401, plivo.verify, good, form(fields), P_URL + "?tenant=x", P_SECRETS, NOW)  # another URL
    rejected(401, plivo.verify, good, form(fields), P_URL, WebhookSecrets(), NOW)  # nothing configured


def test_plivo_parses_status_callbacks():
    [delivered] = plivo.parse(FORM, form(p_status()), now_s=NOW).observations
    assert delivered == Observation(
        provider="plivo", kind="delivered", provider_event_id="db3ce55a-7f1d-11e1-8ea7-1231380bc196:delivered",
        provider_message_id="db3ce55a-7f1d-11e1-8ea7-1231380bc196", occurred_ms=NOW_MS, recipient="+447700900101")
    [hard] = plivo.parse(FORM, form(p_status("undelivered", ErrorCode="50")), now_s=NOW).observations
    assert hard.kind == "failed" and hard.bounce_type == "hard"
    assert hard.reason == "undelivered 50: Invalid Destination Number"
    [soft] = plivo.parse(FORM, form(p_status("failed", ErrorCode="80")), now_s=NOW).observations
    assert soft.kind == "failed" and soft.bounce_type == "soft" and "Temporarily" in soft.reason
    [stopped] = plivo.parse(FORM, form(p_status("failed", ErrorCode="200")), now_s=NOW).observations
    assert stopped.bounce_type == "hard"
    for status in ("queued", "sent", "read"):
        assert plivo.parse(FORM, form(p_status(status)), now_s=NOW).observations == []
    [timed] = plivo.parse(FORM, form(p_status(MessageTime="2026-09-21 10:00:05+00:00"))).observations
    assert timed.occurred_ms == 1_789_984_805_000


def test_plivo_parses_an_inbound_message_as_a_reply():
    [reply] = plivo.parse(FORM, form(p_inbound()), now_s=NOW).observations
    assert reply == Observation(
        provider="plivo", kind="reply", provider_event_id="0936ec98-7c4c-11e4-9bd8-22000afa12b9:received",
        provider_message_id="0936ec98-7c4c-11e4-9bd8-22000afa12b9", occurred_ms=NOW_MS,
        recipient="+447700900101", from_number="+447700900101", to_number="+15005550006", text="STOP")


@pytest.mark.parametrize("headers, body", [
    (FORM, form({k: v for k, v in p_status().items() if k != "MessageUUID"})),
    (FORM, form({"MessageUUID": "u1", "From": "1", "To": "2"})),  # neither Status nor Text
    (FORM, form({k: v for k, v in p_status().items() if k != "To"})),
    (FORM, form({k: v for k, v in p_inbound().items() if k != "From"})),
    (JSON, json.dumps(p_status()).encode()),
    (FORM, b"\xff\xfe"),
])
def test_plivo_malformed_bodies_are_400(headers, body):
    rejected(400, plivo.parse, headers, body)


# ---- Telnyx -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tx_keys():
    return telnyx.generate_key_pair()  # (private PEM, public base64)


def tx_event(event_type: str, payload: dict, event_id: str = "b301ed3f-1490-491f-995f-6e64e69674d4") -> bytes:
    return json.dumps({"data": {"record_type": "event", "event_type": event_type, "id": event_id,
                                "occurred_at": "2026-09-21T10:00:05.123+00:00", "payload": payload},
                       "meta": {"attempt": 1, "delivered_to": "https://api.example/webhooks/telnyx"}}).encode()


def tx_outbound(*statuses: str, errors: list | None = None) -> dict:
    return {"record_type": "message", "direction": "outbound", "id": "40385f64-5717-4562-b3fc-2c963f66afa6",
            "type": "SMS", "from": {"phone_number": "+15005550006"},
            "to": [{"phone_number": f"+4477009001{i:02d}", "status": s} for i, s in enumerate(statuses, 1)],
            "text": "3 new shifts", "errors": errors or []}


def tx_inbound() -> dict:
    return {"record_type": "message", "direction": "inbound", "id": "7ee4241c-f127-47e5-9c34-3aac291f8058",
            "type": "SMS", "from": {"phone_number": "+447700900101", "carrier": "Vodafone", "line_type": "Wireless"},
            "to": [{"phone_number": "+15005550006", "status": "webhook_delivered"}], "text": "Stop please"}


def test_telnyx_valid_signature_verifies_with_base64_or_pem_key(tx_keys):
    body = tx_event("message.finalized", tx_outbound("delivered"))
    headers = telnyx.sign(body, tx_keys[0], NOW)
    telnyx.verify(headers, body, "", WebhookSecrets(telnyx_public_key=tx_keys[1]), NOW)
    pem = serialization.load_pem_private_key(tx_keys[0], None).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    telnyx.verify(headers, body, "", WebhookSecrets(telnyx_public_key=pem), NOW)


def test_telnyx_bad_missing_or_stale_signatures_are_401(tx_keys):
    secrets = WebhookSecrets(telnyx_public_key=tx_keys[1])
    body = tx_event("message.finalized", tx_outbound("delivered"))
    good = telnyx.sign(body, tx_keys[0], NOW)
    other = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption())
    for headers, data in [
        ({**good, "telnyx-signature-ed25519": tamper(good["telnyx-signature-ed25519"])}, body),
        (good, body.replace(b"delivered", b"delivery_failed")),       # altered body
        ({**good, "telnyx-timestamp": str(int(NOW) + 1)}, body),       # the signed timestamp changed
        (telnyx.sign(body, other, NOW), body),                          # someone else's key
        ({k: v for k, v in good.items() if k != "telnyx-timestamp"}, body),
        ({k: v for k, v in good.items() if k != "telnyx-signature-ed25519"}, body),
        ({**good, "telnyx-signature-ed25519": "not base64!"}, body),
    ]:
        rejected(401, telnyx.verify, headers, data, "", secrets, NOW)
    stale = telnyx.sign(body, tx_keys[0], NOW - 3600)
    assert "replay" in rejected(401, telnyx.verify, stale, body, "", secrets, NOW).detail
    rejected(401, telnyx.verify, good, body, "", WebhookSecrets(), NOW)
    rejected(401, telnyx.verify, good, body, "", WebhookSecrets(telnyx_public_key="bm90IGEga2V5"), NOW)


def test_telnyx_parses_finalized_messages():
    [delivered] = telnyx.parse({}, tx_event("message.finalized", tx_outbound("delivered"))).observations
    assert delivered == Observation(
        provider="telnyx", kind="delivered", provider_event_id="b301ed3f-1490-491f-995f-6e64e69674d4",
        provider_message_id="40385f64-5717-4562-b3fc-2c963f66afa6", occurred_ms=1_789_984_805_123,
        recipient="+447700900101")
    blocked = tx_outbound("delivery_failed", errors=[{"code": "40300", "title": "Blocked due to STOP message",
                                                      "detail": "The recipient replied STOP."}])
    [failed] = telnyx.parse({}, tx_event("message.finalized", blocked)).observations
    assert failed.kind == "failed" and failed.bounce_type == "hard"
    assert failed.reason == "40300 Blocked due to STOP message"
    carrier = tx_outbound("sending_failed", errors=[{"code": "40002", "title": "Blocked as spam - temporary"}])
    [soft] = telnyx.parse({}, tx_event("message.finalized", carrier)).observations
    assert soft.kind == "failed" and soft.bounce_type == "soft"
    assert telnyx.parse({}, tx_event("message.finalized", tx_outbound("delivery_unconfirmed"))).observations == []
    assert telnyx.parse({}, tx_event("message.sent", tx_outbound("sent"))).observations == []


def test_telnyx_several_recipients_get_one_observation_each_with_distinct_ids():
    observations = telnyx.parse({}, tx_event("message.finalized", tx_outbound("delivered", "delivery_failed",
                                                                               "sent"))).observations
    assert [(o.kind, o.recipient) for o in observations] == [("delivered", "+447700900101"),
                                                            ("failed", "+447700900102")]
    assert len({o.provider_event_id for o in observations}) == 2


def test_telnyx_parses_an_inbound_message_as_a_reply():
    [reply] = telnyx.parse({}, tx_event("message.received", tx_inbound(), "e1")).observations
    assert reply == Observation(
        provider="telnyx", kind="reply", provider_event_id="e1", provider_message_id="7ee4241c-f127-47e5-9c34-3aac291f8058",
        occurred_ms=1_789_984_805_123, recipient="+447700900101", from_number="+447700900101",
        to_number="+15005550006", text="Stop please")


@pytest.mark.parametrize("body", [
    b"{not json", b"[]", b'{"data": []}',
    json.dumps({"data": {"event_type": "message.finalized", "payload": tx_outbound("delivered")}}).encode(),
    json.dumps({"data": {"event_type": "message.finalized", "id": "e", "occurred_at": "2026-09-21T10:00:05Z"}}).encode(),
    tx_event("message.finalized", {**tx_outbound("delivered"), "id": None}),
    tx_event("message.finalized", {**tx_outbound("delivered"), "to": []}),
    tx_event("message.finalized", {**tx_outbound("delivered"), "to": [{"status": "delivered"}]}),
    tx_event("message.received", {**tx_inbound(), "from": {}}),
    json.dumps({"data": {"event_type": "message.received", "id": "e", "occurred_at": "soon",
                         "payload": tx_inbound()}}).encode(),
])
def test_telnyx_malformed_bodies_are_400(body):
    rejected(400, telnyx.parse, {}, body)


# ---- the provider stand-in emits webhooks the modules accept --------------------------------

class SmsReceiver(Receiver):
    """The shared test receiver, with the three gateways' secrets (the stand-in's own)."""

    def __init__(self, standin_url: str):
        super().__init__(standin_url)
        c = CREDS["vonage"]
        self.secrets = dataclasses.replace(
            self.secrets, vonage_signature_secret=c["signature_secret"], vonage_signature_method=c["signature_method"],
            plivo_auth_token=CREDS["plivo"]["auth_token"],
            telnyx_public_key=httpx.get(f"{standin_url}/webhook-keys").json()["telnyx_public_key"])


@pytest.fixture(scope="module")
def receiver(standin):  # noqa: F811 (fixture)
    server = SmsReceiver(standin)
    yield server
    server.server.shutdown()
    server.server.server_close()


def emit(standin_url: str, provider: str, target: str, events: list[dict], tamper_: bool = False) -> dict:
    response = httpx.post(f"{standin_url}/webhooks/emit", timeout=20,
                          json={"provider": provider, "target": target, "events": events, "tamper": tamper_})
    assert response.status_code == 200, response.text
    return response.json()


def kinds(answer: dict) -> list[list[str]]:
    return [json.loads(r["body"]).get("kinds") for r in answer["results"]]


def test_standin_publishes_its_telnyx_key(standin):  # noqa: F811
    key = httpx.get(f"{standin}/webhook-keys").json()["telnyx_public_key"]
    assert len(base64.b64decode(key)) == 32  # a raw Ed25519 public key, as the portal shows it


def test_standin_emits_vonage_receipts_and_messages_that_verify(standin, receiver):  # noqa: F811
    target = f"{receiver.url}/webhooks/vonage"
    answer = emit(standin, "vonage", target, [v_dlr("failed", **{"err-code": "9"}), v_inbound(text="hi")])
    assert answer["status"] == 200 and kinds(answer) == [["failed"], ["reply"]]
    assert receiver.received[-2].observations[0].bounce_type == "hard"
    assert receiver.received[-1].observations[0].text == "hi"
    assert emit(standin, "vonage", target, [v_dlr()], tamper_=True)["status"] == 401


def test_standin_emits_plivo_callbacks_that_verify(standin, receiver):  # noqa: F811
    target = f"{receiver.url}/webhooks/plivo?tenant=demo"  # a query in the callback URL is signed too
    answer = emit(standin, "plivo", target, [p_status("undelivered", ErrorCode="70"), p_inbound(Text="yes")])
    assert answer["status"] == 200 and kinds(answer) == [["failed"], ["reply"]]
    assert receiver.received[-1].observations[0].from_number == "+447700900101"
    assert emit(standin, "plivo", target, [p_status()], tamper_=True)["status"] == 401


def test_standin_emits_telnyx_events_that_verify(standin, receiver):  # noqa: F811
    target = f"{receiver.url}/webhooks/telnyx"
    answer = emit(standin, "telnyx", target, [
        {"event_type": "message.sent", "payload": tx_outbound("sent")},
        {"event_type": "message.finalized", "payload": tx_outbound("delivered")},
        {"event_type": "message.received", "payload": tx_inbound()}])
    assert answer["status"] == 200 and kinds(answer) == [[], ["delivered"], ["reply"]]
    assert receiver.received[-1].observations[0].text == "Stop please"
    tampered = emit(standin, "telnyx", target, [{"event_type": "message.sent", "payload": tx_outbound("sent")}],
                    tamper_=True)
    assert tampered["status"] == 401 and "does not match" in json.loads(tampered["body"])["error"]


def test_standin_emit_refuses_a_telnyx_event_without_payload(standin):  # noqa: F811
    r = httpx.post(f"{standin}/webhooks/emit", json={"provider": "telnyx", "target": "http://127.0.0.1:9/",
                                                     "events": [{"event_type": "message.sent"}]})
    assert r.status_code == 400
