"""Mailgun and Postmark inbound webhooks: verification (401), parsing (400 / Observations) of
every event kind, and the provider stand-in's /webhooks/emit round trip into verify + parse."""
from __future__ import annotations

import json

import httpx
import pytest

from channels.webhooks_in import mailgun, postmark
from channels.webhooks_in.base import Observation, Parsed, WebhookSecrets, basic_auth_header, iso_to_ms

from tests.channels.provider_standin import CREDS, standin  # noqa: F401 (fixture)
from tests.channels.test_webhooks_in import NOW, emit, receiver, rejected  # noqa: F401 (fixture)

# ---- Mailgun ------------------------------------------------------------------------------

MG_KEY = "key-0123456789abcdef0123456789abcdef"
MG_SECRETS = WebhookSecrets(mailgun_signing_key=MG_KEY)
MG_MESSAGE = "20260921100000.1.ABCDEF@jobs.example"
MG_AT = 1_789_999_000.908181


def mg_event(event: str, n: int = 1, **fields) -> dict:
    data = {"event": event, "id": f"mg-{event}-{n}", "timestamp": MG_AT, "log-level": "info",
            "recipient": "ann@example.com", "recipient-domain": "example.com", "tags": ["nurses"],
            "message": {"headers": {"to": "ann@example.com", "message-id": MG_MESSAGE,
                                    "from": "Jobs <alerts@jobs.example>", "subject": "3 new jobs"},
                        "attachments": [], "size": 2048},
            "user-variables": {"send_id": "5f0c00000000000000000001", "tenant": "demo"},
            "envelope": {"sending-ip": "209.61.154.250", "transport": "smtp"}}
    return {**data, **fields}


def mg_body(data: dict, when: float = NOW - 5, token: str = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0",
            key: str = MG_KEY) -> bytes:
    return json.dumps(mailgun.signed_body(data, key, when, token)).encode()


def mg_obs(kind: str, event_id: str, **fields) -> Observation:
    return Observation(provider="mailgun", kind=kind, provider_event_id=event_id, provider_message_id=MG_MESSAGE,
                       occurred_ms=1_789_999_000_908, send_id="5f0c00000000000000000001",
                       recipient="ann@example.com", **fields)


def mg_parse(data: dict) -> list[Observation]:
    return mailgun.parse({}, mg_body(data)).observations


def test_mailgun_signature_is_the_documented_hmac():
    # hex HMAC-SHA256 of timestamp + token, keyed with the webhook signing key (Mailgun's docs)
    import hashlib
    import hmac
    expected = hmac.new(MG_KEY.encode(), b"1529006854" + b"token123", hashlib.sha256).hexdigest()
    assert mailgun.signature(MG_KEY, "1529006854", "token123") == expected


def test_mailgun_parses_each_event_kind():
    status = {"tls": True, "mx-host": "mx.example.com", "attempt-no": 1, "certificate-verified": True}
    cases = [
        (mg_event("delivered", **{"delivery-status": {**status, "code": 250, "message": "OK", "description": ""}}),
         [mg_obs("delivered", "mg-delivered-1", reason="250 OK")]),
        (mg_event("failed", severity="permanent", reason="bounce", **{"delivery-status": {
            **status, "code": 550, "message": "5.1.1 The email account that you tried to reach does not exist",
            "description": ""}}),
         [mg_obs("bounced", "mg-failed-1", bounce_type="hard",
                 reason="550 5.1.1 The email account that you tried to reach does not exist")]),
        (mg_event("failed", 2, severity="permanent", reason="suppress-bounce", **{"delivery-status": {
            "code": 605, "message": "", "description": "Not delivering to previously bounced address"}}),
         [mg_obs("bounced", "mg-failed-2", bounce_type="hard",
                 reason="605 Not delivering to previously bounced address")]),
        (mg_event("failed", 3, severity="permanent", reason="suppress-unsubscribe", **{"delivery-status": {
            "code": 607, "message": "", "description": "Not delivering to a user who unsubscribed"}}),
         [mg_obs("failed", "mg-failed-3", reason="607 Not delivering to a user who unsubscribed")]),
        (mg_event("failed", 4, severity="permanent", reason="old", **{"delivery-status": {
            "code": 421, "message": "4.7.0 Try again later", "description": ""}}),
         [mg_obs("bounced", "mg-failed-4", bounce_type="soft", reason="421 4.7.0 Try again later")]),
        (mg_event("failed", 5, severity="temporary", reason="generic", **{"delivery-status": {
            "code": 452, "message": "4.2.2 Mailbox full", "attempt-no": 2}}),
         [mg_obs("deferred", "mg-failed-5", reason="452 4.2.2 Mailbox full")]),
        (mg_event("rejected", reject={"reason": "Sandbox subdomains are for test purposes only",
                                      "description": ""}),
         [mg_obs("failed", "mg-rejected-1", reason="Sandbox subdomains are for test purposes only")]),
        (mg_event("opened", ip="50.56.129.169", geolocation={"country": "US"},
                  **{"client-info": {"client-type": "browser", "client-os": "Linux", "device-type": "desktop",
                                     "client-name": "Chrome", "user-agent": "Mozilla/5.0 (X11; Linux x86_64)"}}),
         [mg_obs("opened", "mg-opened-1", user_agent="Mozilla/5.0 (X11; Linux x86_64)", ip="50.56.129.169")]),
        (mg_event("clicked", ip="50.56.129.170", url="https://jobs.example/c/1",
                  **{"client-info": {"user-agent": "Mozilla/5.0"}}),
         [mg_obs("clicked", "mg-clicked-1", url="https://jobs.example/c/1", user_agent="Mozilla/5.0",
                 ip="50.56.129.170")]),
        (mg_event("unsubscribed", ip="50.56.129.171", **{"client-info": {"user-agent": "Mozilla/5.0"}}),
         [mg_obs("unsubscribed", "mg-unsubscribed-1", user_agent="Mozilla/5.0", ip="50.56.129.171")]),
        (mg_event("complained"), [mg_obs("complained", "mg-complained-1")]),
        (mg_event("accepted", method="HTTP"), []),
        (mg_event("stored"), []),
        (mg_event("list_member_uploaded"), []),
    ]
    for data, expected in cases:
        assert mg_parse(data) == expected, data["event"]


def test_mailgun_message_id_in_brackets_and_missing_variables():
    data = mg_event("delivered", **{"user-variables": {}})
    data["message"]["headers"]["message-id"] = f"<{MG_MESSAGE}>"
    [observation] = mg_parse(data)
    assert observation.provider_message_id == MG_MESSAGE and observation.send_id == ""
    del data["user-variables"]
    assert mg_parse(data)[0].send_id == ""


def test_mailgun_valid_signature_verifies():
    body = mg_body(mg_event("delivered"))
    mailgun.verify({}, body, "https://api.example/webhooks/mailgun", MG_SECRETS, NOW)
    doc = json.loads(body)
    doc["signature"]["signature"] = doc["signature"]["signature"].upper()  # hex case does not matter
    mailgun.verify({}, json.dumps(doc).encode(), "", MG_SECRETS, NOW)


def test_mailgun_bad_signatures_are_401():
    good = json.loads(mg_body(mg_event("delivered")))
    sig = good["signature"]

    def variant(**changes) -> bytes:
        return json.dumps({**good, "signature": {**sig, **changes}}).encode()

    cases = {
        "tampered signature": variant(signature=("0" if sig["signature"][0] != "0" else "1") + sig["signature"][1:]),
        "other token": variant(token="b" * 50),
        "other timestamp": variant(timestamp=str(int(sig["timestamp"]) - 1)),
        "signature missing": variant(signature=""),
        "token missing": json.dumps({**good, "signature": {k: v for k, v in sig.items() if k != "token"}}).encode(),
        "no signature object": json.dumps({"event-data": good["event-data"]}).encode(),
        "signature not an object": json.dumps({**good, "signature": "abc"}).encode(),
        "timestamp not a number": variant(timestamp="soon"),
        "signature a number": variant(signature=12),
        "signed with another key": mg_body(mg_event("delivered"), key="key-other"),
    }
    for name, body in cases.items():
        assert rejected(401, mailgun.verify, {}, body, "", MG_SECRETS, NOW).detail, name
    rejected(401, mailgun.verify, {}, mg_body(mg_event("delivered")), "", WebhookSecrets(), NOW)  # not configured


def test_mailgun_stale_or_future_timestamp_is_401():
    window = mailgun.MAX_AGE_S  # Mailgun retries for 8 hours
    for when in (NOW - window - 1, NOW + window + 1):
        assert "replay" in rejected(401, mailgun.verify, {}, mg_body(mg_event("opened"), when=when), "",
                                    MG_SECRETS, NOW).detail
    mailgun.verify({}, mg_body(mg_event("opened"), when=NOW - 4 * 3600), "", MG_SECRETS, NOW)  # its 4 h retry


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b"\"text\"", b"[" * 100_000 + b"]" * 100_000])
def test_mailgun_unreadable_body_in_verify_is_400(body):
    rejected(400, mailgun.verify, {}, body, "", MG_SECRETS, NOW)


def _without(data: dict, key: str) -> dict:
    return {k: v for k, v in data.items() if k != key}


@pytest.mark.parametrize("data", [
    None, [], "delivered",
    _without(mg_event("delivered"), "event"), _without(mg_event("delivered"), "id"),
    _without(mg_event("delivered"), "timestamp"), _without(mg_event("opened"), "recipient"),
    _without(mg_event("delivered"), "message"), mg_event("delivered", message={"headers": {}}),
    mg_event("delivered", message={"headers": "x"}), mg_event("delivered", timestamp="yesterday"),
    mg_event("delivered", timestamp=True), mg_event("delivered", id=7),
    mg_event("failed"), mg_event("failed", severity="fatal"),
])
def test_mailgun_malformed_bodies_are_400(data):
    rejected(400, mailgun.parse, {}, json.dumps({"signature": {}, "event-data": data}).encode())


def test_mailgun_body_without_event_data_is_400():
    rejected(400, mailgun.parse, {}, b"{\"signature\": {}}")
    rejected(400, mailgun.parse, {}, b"not json")


# ---- Postmark -----------------------------------------------------------------------------

PM_SECRETS = WebhookSecrets(postmark_user="hooks", postmark_password="s3cret:with:colons")
PM_MESSAGE = "883953f4-6105-42a2-a16a-77a8eac79483"
PM_AT = "2026-09-21T10:00:05.9070259Z"
PM_MS = iso_to_ms(PM_AT, "t")
PM_META = {"send_id": "5f0c00000000000000000001", "tenant": "demo"}


def pm_record(record_type: str, **fields) -> dict:
    base = {"RecordType": record_type, "ServerID": 23, "MessageStream": "broadcast", "MessageID": PM_MESSAGE,
            "Tag": "nurses", "Metadata": PM_META}
    if record_type in ("Bounce", "SpamComplaint"):
        base |= {"ID": 4323372036854775807, "Type": "HardBounce", "TypeCode": 1, "Name": "Hard bounce",
                 "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
                 "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
                 "Email": "ann@example.com", "From": "alerts@jobs.example", "BouncedAt": PM_AT,
                 "DumpAvailable": True, "Inactive": True, "CanActivate": True, "Subject": "3 new jobs"}
    else:
        base["Recipient"] = "ann@example.com"
    return {**base, **fields}


def pm_obs(kind: str, event_id: str, **fields) -> Observation:
    return Observation(provider="postmark", kind=kind, provider_event_id=event_id, provider_message_id=PM_MESSAGE,
                       occurred_ms=PM_MS, send_id="5f0c00000000000000000001", recipient="ann@example.com", **fields)


def pm_parse(record: dict) -> list[Observation]:
    return postmark.parse({}, json.dumps(record).encode()).observations


def test_postmark_parses_each_record_type():
    hard = "smtp;550 5.1.1 The email account that you tried to reach does not exist."
    bounce_id = "Bounce/4323372036854775807"
    assert pm_parse(pm_record("Delivery", DeliveredAt=PM_AT, Details="smtp;250 2.0.0 OK")) == [
        pm_obs("delivered", pm_parse(pm_record("Delivery", DeliveredAt=PM_AT))[0].provider_event_id,
               reason="smtp;250 2.0.0 OK")]
    assert pm_parse(pm_record("Bounce")) == [pm_obs("bounced", bounce_id, bounce_type="hard", reason=f"HardBounce: {hard}")]
    for bounce_type, kind, soft_or_hard in [
            ("BadEmailAddress", "bounced", "hard"), ("ManuallyDeactivated", "bounced", "hard"),
            ("SoftBounce", "bounced", "soft"), ("DnsError", "bounced", "soft"), ("Blocked", "bounced", "soft"),
            ("DMARCPolicy", "bounced", "soft"), ("Transient", "deferred", ""), ("SMTPApiError", "failed", ""),
            ("Unknown", "failed", ""), ("Unsubscribe", "unsubscribed", ""), ("SpamComplaint", "complained", "")]:
        [observation] = pm_parse(pm_record("Bounce", Type=bounce_type, Details="d"))
        assert (observation.kind, observation.bounce_type, observation.reason) == (
            kind, soft_or_hard, f"{bounce_type}: d"), bounce_type
    for skipped in ("AutoResponder", "AddressChange", "Subscribe", "ChallengeVerification", "OpenRelayTest",
                    "VirusNotification", "SpamNotification", "Unconfirmed", "InboundError", "SomethingNew"):
        assert pm_parse(pm_record("Bounce", Type=skipped)) == [], skipped
    assert pm_parse(pm_record("SpamComplaint", Type="SpamComplaint", TypeCode=100001, Details="")) == [
        pm_obs("complained", "SpamComplaint/4323372036854775807",
               reason="SpamComplaint: The server was unable to deliver your message (ex: unknown user, mailbox not found).")]
    [opened] = pm_parse(pm_record("Open", FirstOpen=True, ReceivedAt=PM_AT, ReadSeconds=5, Platform="WebMail",
                                  UserAgent="Mozilla/5.0 (Windows NT 10.0)", Client={"Name": "Chrome"},
                                  Geo={"IP": "188.2.95.4", "Country": "Serbia"}))
    assert opened == pm_obs("opened", opened.provider_event_id, user_agent="Mozilla/5.0 (Windows NT 10.0)",
                            ip="188.2.95.4")
    [clicked] = pm_parse(pm_record("Click", ClickLocation="HTML", ReceivedAt=PM_AT, OriginalLink="https://jobs.example/c/1",
                                   UserAgent="Mozilla/5.0", Geo={"IP": "188.2.95.5"}, Platform="Desktop"))
    assert clicked == pm_obs("clicked", clicked.provider_event_id, url="https://jobs.example/c/1",
                             user_agent="Mozilla/5.0", ip="188.2.95.5")
    [unsubscribed] = pm_parse(pm_record("SubscriptionChange", ChangedAt=PM_AT, Origin="Recipient",
                                        SuppressSending=True, SuppressionReason="ManualSuppression"))
    assert unsubscribed == pm_obs("unsubscribed", unsubscribed.provider_event_id, reason="ManualSuppression")
    assert pm_parse(pm_record("SubscriptionChange", ChangedAt=PM_AT, SuppressSending=False,
                              SuppressionReason=None)) == []  # reactivated
    assert pm_parse({"RecordType": "Inbound", "MessageID": "x"}) == []
    assert pm_parse(pm_record("SomeFutureRecord")) == []


def test_postmark_event_ids_are_stable_and_distinct():
    def one(record: dict) -> str:
        return pm_parse(record)[0].provider_event_id
    open_at = pm_record("Open", ReceivedAt=PM_AT)
    assert one(open_at) == one(dict(open_at)) and one(open_at).startswith("Open/")  # a retried POST: the same id
    assert one(open_at) != one(pm_record("Open", ReceivedAt="2026-09-21T10:00:06Z"))
    click = pm_record("Click", ReceivedAt=PM_AT, OriginalLink="https://jobs.example/c/1")
    assert one(click) != one({**click, "OriginalLink": "https://jobs.example/c/2"})
    assert one(pm_record("Delivery", DeliveredAt=PM_AT)) != one(pm_record("Delivery", DeliveredAt=PM_AT,
                                                                          Recipient="bo@example.com"))


def test_postmark_without_metadata_has_no_send_id():
    record = pm_record("Delivery", DeliveredAt=PM_AT)
    del record["Metadata"]
    assert pm_parse(record)[0].send_id == ""


def test_postmark_basic_credentials_verify():
    headers = {"authorization": basic_auth_header("hooks", "s3cret:with:colons")}
    postmark.verify(headers, b"{}", "https://api.example/webhooks/postmark", PM_SECRETS, NOW)
    postmark.verify({"Authorization": headers["authorization"].replace("Basic", "basic")}, b"", "", PM_SECRETS, NOW)


@pytest.mark.parametrize("authorization", [
    None, "", "Bearer abc", "Basic", "Basic !!!", "Basic aG9va3M=",  # "hooks" without a colon
    basic_auth_header("hooks", "wrong"), basic_auth_header("other", "s3cret:with:colons"),
    basic_auth_header("hooks", "s3cret:with:colon"), basic_auth_header("", ""),
])
def test_postmark_missing_or_wrong_credentials_are_401(authorization):
    headers = {} if authorization is None else {"authorization": authorization}
    rejected(401, postmark.verify, headers, b"{}", "", PM_SECRETS, NOW)


def test_postmark_unconfigured_credentials_refuse_everything():
    rejected(401, postmark.verify, {"authorization": basic_auth_header("", "")}, b"{}", "", WebhookSecrets(), NOW)


def _pm_without(record: dict, key: str) -> bytes:
    return json.dumps({k: v for k, v in record.items() if k != key}).encode()


@pytest.mark.parametrize("body", [
    b"", b"not json", b"[]", b"\"Delivery\"", b"[" * 100_000 + b"]" * 100_000, b"{}",
    json.dumps({"RecordType": 7}).encode(),
    _pm_without(pm_record("Delivery", DeliveredAt=PM_AT), "MessageID"),
    _pm_without(pm_record("Delivery", DeliveredAt=PM_AT), "Recipient"),
    _pm_without(pm_record("Delivery", DeliveredAt=PM_AT), "DeliveredAt"),
    json.dumps(pm_record("Delivery", DeliveredAt="yesterday")).encode(),
    _pm_without(pm_record("Bounce"), "ID"), _pm_without(pm_record("Bounce"), "Type"),
    _pm_without(pm_record("Bounce"), "Email"), _pm_without(pm_record("Bounce"), "BouncedAt"),
    json.dumps(pm_record("Bounce", ID=True)).encode(),
    json.dumps(pm_record("Open")).encode(),  # no ReceivedAt
    json.dumps(pm_record("Click", ReceivedAt=PM_AT)).encode(),  # no OriginalLink
    json.dumps(pm_record("SubscriptionChange", SuppressSending=True)).encode(),  # no ChangedAt
])
def test_postmark_malformed_bodies_are_400(body):
    rejected(400, postmark.parse, {}, body)


# ---- the provider stand-in emits webhooks the modules accept --------------------------------

@pytest.fixture(scope="module")
def email_receiver(receiver):  # noqa: F811 (fixture)
    """The shared receiver, also holding the Mailgun and Postmark secrets the stand-in uses."""
    from dataclasses import replace
    receiver.secrets = replace(receiver.secrets, mailgun_signing_key=CREDS["mailgun"]["webhook_signing_key"],
                               postmark_user=CREDS["postmark"]["webhook_user"],
                               postmark_password=CREDS["postmark"]["webhook_password"])
    return receiver


def test_standin_publishes_its_mailgun_signing_key(standin):  # noqa: F811
    keys = httpx.get(f"{standin}/webhook-keys").json()
    assert keys["mailgun_signing_key"] == CREDS["mailgun"]["webhook_signing_key"]


def test_standin_emits_mailgun_events_that_verify(standin, email_receiver):  # noqa: F811
    target = f"{email_receiver.url}/webhooks/mailgun"
    events = [mg_event("delivered", timestamp=NOW), mg_event("failed", severity="permanent", reason="bounce"),
              mg_event("accepted")]
    answer = emit(standin, "mailgun", target, events)
    assert answer["status"] == 200
    assert [json.loads(r["body"])["kinds"] for r in answer["results"]] == [["delivered"], ["bounced"], []]
    assert email_receiver.received[-2].observations[0].send_id == "5f0c00000000000000000001"
    tampered = emit(standin, "mailgun", target, events[:1], tamper_=True)
    assert tampered["status"] == 401 and "signature" in json.loads(tampered["body"])["error"]


def test_standin_emits_postmark_records_that_verify(standin, email_receiver):  # noqa: F811
    target = f"{email_receiver.url}/webhooks/postmark"
    answer = emit(standin, "postmark", target, [pm_record("Bounce", Type="SoftBounce"),
                                                pm_record("Click", ReceivedAt=PM_AT, OriginalLink="https://x.example/")])
    assert answer["status"] == 200
    assert [json.loads(r["body"])["kinds"] for r in answer["results"]] == [["bounced"], ["clicked"]]
    assert email_receiver.received[-2] == Parsed([pm_obs("bounced", "Bounce/4323372036854775807", bounce_type="soft",
                                                         reason="SoftBounce: smtp;550 5.1.1 The email account that "
                                                                "you tried to reach does not exist.")])
    tampered = emit(standin, "postmark", target, [pm_record("Delivery", DeliveredAt=PM_AT)], tamper_=True)
    assert tampered["status"] == 401 and "credentials" in json.loads(tampered["body"])["error"]


def test_standin_emit_refuses_events_without_their_kind(standin):  # noqa: F811
    for provider, events in (("postmark", [{"MessageID": "x"}]), ("mailgun", [{"id": "x"}])):
        r = httpx.post(f"{standin}/webhooks/emit", json={"provider": provider, "target": "http://x/", "events": events})
        assert r.status_code == 400, provider
