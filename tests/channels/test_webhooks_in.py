"""Inbound provider webhooks: verification (401) and parsing (400 / Observations), per provider,
and the provider stand-in's /webhooks/emit round trip into the modules' own verify + parse."""
from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from channels.webhooks_in import PROVIDERS, esendex, mailgun, plivo, postmark, sendgrid, ses, telnyx, twilio, vonage
from channels.webhooks_in.base import Observation, Parsed, WebhookRejected, WebhookSecrets, tamper

from tests.channels.provider_standin import CREDS, standin  # noqa: F401 (fixture)

NOW = 1_790_000_000.0  # a fixed "now" for every check
NOW_MS = int(NOW * 1000)
SNS_CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:leadstream-ses-events"


def rejected(status: int, call, *args, **kwargs) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as info:
        call(*args, **kwargs)
    assert info.value.status == status, info.value.detail
    return info.value


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def test_registry_names_every_module():
    assert PROVIDERS == {"sendgrid": sendgrid, "ses": ses, "twilio": twilio, "esendex": esendex,
                         "mailgun": mailgun, "postmark": postmark, "vonage": vonage, "plivo": plivo, "telnyx": telnyx}
    for module in PROVIDERS.values():
        assert callable(module.verify) and callable(module.parse)


# ---- SendGrid -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sg_keys():
    return sendgrid.generate_key_pair()  # (private PEM, public base64 DER)


@pytest.fixture(scope="module")
def sg_secrets(sg_keys):
    return WebhookSecrets(sendgrid_public_key=sg_keys[1])


def sg_event(event: str, **fields) -> dict:
    base = {"email": "ann@example.com", "timestamp": 1_789_999_000, "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
            "event": event, "category": ["alerts"], "sg_event_id": f"evt-{event}-{fields.pop('n', 1)}",
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
            "send_id": "demo:lead1:shifts:2026-11-26", "tenant": "demo"}
    return {**base, **fields}


def sg_obs(kind: str, event_id: str, **fields) -> Observation:
    return Observation(provider="sendgrid", kind=kind, provider_event_id=event_id,
                       provider_message_id="14c5d75ce93", occurred_ms=1_789_999_000_000,
                       send_id="demo:lead1:shifts:2026-11-26", recipient="ann@example.com", **fields)


def test_sendgrid_parses_each_event_kind():
    events = [
        sg_event("processed"),
        sg_event("delivered", response="250 OK", ip="168.1.1.1"),
        sg_event("deferred", response="400 try again later", attempt="5", ip="168.1.1.1"),
        sg_event("bounce", type="bounce", reason="500 unknown recipient", status="5.0.0", ip="168.1.1.1"),
        sg_event("bounce", n=2, type="blocked", reason="550 blocked by policy", status="5.7.1"),
        sg_event("dropped", reason="Bounced Address", status="5.0.0"),
        sg_event("dropped", n=2, reason="Unsubscribed Address", status="5.0.0"),
        sg_event("open", useragent="Mozilla/5.0", ip="255.255.255.1", sg_machine_open=False),
        sg_event("open", n=2, useragent="AppleMailProxy", ip="17.0.0.1", sg_machine_open=True),
        sg_event("click", url="https://jobs.example/c/1", useragent="Mozilla/5.0", ip="255.255.255.2",
                 url_offset={"index": 0, "type": "html"}),
        sg_event("spamreport"),
        sg_event("unsubscribe", useragent="Mozilla/5.0", ip="255.255.255.3"),
        sg_event("group_unsubscribe", asm_group_id=42, useragent="Mozilla/5.0", ip="255.255.255.4",
                 url="https://l.example/u"),
        sg_event("group_resubscribe", asm_group_id=42),
        sg_event("some_future_event"),
    ]
    parsed = sendgrid.parse({}, json.dumps(events).encode())
    assert parsed == Parsed([
        sg_obs("delivered", "evt-delivered-1", reason="250 OK"),
        sg_obs("deferred", "evt-deferred-1", reason="400 try again later"),
        sg_obs("bounced", "evt-bounce-1", bounce_type="hard", reason="500 unknown recipient"),
        sg_obs("bounced", "evt-bounce-2", bounce_type="soft", reason="550 blocked by policy"),
        sg_obs("bounced", "evt-dropped-1", bounce_type="hard", reason="Bounced Address"),
        sg_obs("failed", "evt-dropped-2", reason="Unsubscribed Address"),
        sg_obs("opened", "evt-open-1", user_agent="Mozilla/5.0", ip="255.255.255.1"),
        sg_obs("opened", "evt-open-2", user_agent="AppleMailProxy", ip="17.0.0.1", reason="machine_open"),
        sg_obs("clicked", "evt-click-1", url="https://jobs.example/c/1", user_agent="Mozilla/5.0",
               ip="255.255.255.2"),
        sg_obs("complained", "evt-spamreport-1"),
        sg_obs("unsubscribed", "evt-unsubscribe-1", user_agent="Mozilla/5.0", ip="255.255.255.3"),
        sg_obs("left_list", "evt-group_unsubscribe-1", user_agent="Mozilla/5.0", ip="255.255.255.4",
               reason="asm_group_id 42"),
    ])


def test_sendgrid_without_custom_args_has_no_send_id():
    event = sg_event("delivered")
    del event["send_id"]
    [observation] = sendgrid.parse({}, json.dumps([event]).encode()).observations
    assert observation.send_id == "" and observation.provider_message_id == "14c5d75ce93"


def test_sendgrid_valid_signature_verifies(sg_keys, sg_secrets):
    body = json.dumps([sg_event("delivered")]).encode()
    headers = sendgrid.sign(body, sg_keys[0], NOW - 5)
    assert set(headers) == {"X-Twilio-Email-Event-Webhook-Signature", "X-Twilio-Email-Event-Webhook-Timestamp"}
    sendgrid.verify(lower(headers), body, "https://api.example/webhooks/sendgrid", sg_secrets, NOW)
    sendgrid.verify(headers, body, "", sg_secrets, NOW)  # header case does not matter


def test_sendgrid_key_may_be_pem(sg_keys):
    der = base64.b64decode(sg_keys[1])
    pem = "-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(der).decode() + "-----END PUBLIC KEY-----\n"
    body = b"[]"
    sendgrid.verify(lower(sendgrid.sign(body, sg_keys[0], NOW)), body, "", WebhookSecrets(sendgrid_public_key=pem), NOW)


def test_sendgrid_bad_signatures_are_401(sg_keys, sg_secrets):
    body = json.dumps([sg_event("delivered")]).encode()
    good = lower(sendgrid.sign(body, sg_keys[0], NOW))
    sig, ts = "x-twilio-email-event-webhook-signature", "x-twilio-email-event-webhook-timestamp"
    cases = {
        "tampered signature": ({**good, sig: tamper(good[sig])}, body),
        "changed body": (good, body.replace(b"ann@", b"bob@")),
        "changed timestamp": ({**good, ts: str(int(NOW) - 1)}, body),
        "signature missing": ({ts: good[ts]}, body),
        "timestamp missing": ({sig: good[sig]}, body),
        "no headers": ({}, body),
        "signature not base64": ({**good, sig: "not base64!!"}, body),
        "timestamp not a number": ({**good, ts: "soon"}, body),
    }
    for name, (headers, payload) in cases.items():
        error = rejected(401, sendgrid.verify, headers, payload, "", sg_secrets, NOW)
        assert error.detail, name
    other_key = sendgrid.generate_key_pair()[1]
    rejected(401, sendgrid.verify, good, body, "", WebhookSecrets(sendgrid_public_key=other_key), NOW)
    rejected(401, sendgrid.verify, good, body, "", WebhookSecrets(), NOW)  # not configured
    rejected(401, sendgrid.verify, good, body, "", WebhookSecrets(sendgrid_public_key="AAAA"), NOW)


def test_sendgrid_stale_or_future_timestamp_is_401(sg_keys, sg_secrets):
    body = b"[]"
    window = sendgrid.MAX_AGE_S  # SendGrid retries for up to 24 hours after the event
    for when in (NOW - window - 1, NOW + window + 1):
        headers = lower(sendgrid.sign(body, sg_keys[0], when))
        assert "replay" in rejected(401, sendgrid.verify, headers, body, "", sg_secrets, NOW).detail
    sendgrid.verify(lower(sendgrid.sign(body, sg_keys[0], NOW - 23 * 3600)), body, "", sg_secrets, NOW)
    strict = WebhookSecrets(sendgrid_public_key=sg_secrets.sendgrid_public_key, max_age_s=600)
    sendgrid.verify(lower(sendgrid.sign(body, sg_keys[0], NOW - 599)), body, "", strict, NOW)
    rejected(401, sendgrid.verify, lower(sendgrid.sign(body, sg_keys[0], NOW - 601)), body, "", strict, NOW)


@pytest.mark.parametrize("module,hours", [("mailgun", 8), ("sendgrid", 24), ("vonage", 24), ("ses", 1)])
def test_each_providers_window_covers_its_documented_retries(module, hours):
    from channels import webhooks_in
    window = getattr(webhooks_in, module).MAX_AGE_S
    assert hours * 3600 <= window <= hours * 3600 + 900


@pytest.mark.parametrize("body", [
    b"", b"not json", b"{\"event\": \"delivered\"}", b"\"a string\"", b"[1, 2]", b"[[]]",
    b"[" * 100_000 + b"]" * 100_000, "[{\"event\": \"délivered\"}]".encode("latin-1"),
    json.dumps([{k: v for k, v in sg_event("delivered").items() if k != "sg_event_id"}]).encode(),
    json.dumps([{k: v for k, v in sg_event("bounce").items() if k != "sg_message_id"}]).encode(),
    json.dumps([{k: v for k, v in sg_event("open").items() if k != "timestamp"}]).encode(),
    json.dumps([{k: v for k, v in sg_event("click").items() if k != "email"}]).encode(),
    json.dumps([{k: v for k, v in sg_event("click").items() if k != "event"}]).encode(),
    json.dumps([sg_event("delivered", timestamp="yesterday")]).encode(),
    json.dumps([sg_event("delivered", timestamp=True)]).encode(),
    json.dumps([sg_event("delivered", sg_event_id=7)]).encode(),
])
def test_sendgrid_malformed_bodies_are_400(body):
    rejected(400, sendgrid.parse, {}, body)


# ---- Amazon SES via SNS -------------------------------------------------------------------

@pytest.fixture(scope="module")
def sns_keys():
    return ses.generate_signing_cert(now=NOW)  # (private PEM, certificate PEM)


SES_SECRETS = WebhookSecrets(ses_topic_arns=(TOPIC,))
SES_MESSAGE_ID = "010201234567abcd-1a2b3c4d-0000-0000-0000-000000000000-000000"


def ses_mail(destination=("ann@example.com",), send_id="demo_lead1_shifts_2026-11-26") -> dict:
    tags = {"ses:configuration-set": ["leadstream"], "tenant": ["demo"]}
    if send_id:
        tags["send_id"] = [send_id]
    return {"timestamp": "2026-09-21T10:00:00.000Z", "source": "Jobs <jobs@leadstream.example>",
            "sendingAccountId": "123456789012", "messageId": SES_MESSAGE_ID, "destination": list(destination),
            "headersTruncated": False, "tags": tags}


def ses_event(event_type: str, detail_key: str | None, detail: dict | None, **mail_kw) -> dict:
    event = {"eventType": event_type, "mail": ses_mail(**mail_kw)}
    if detail_key:
        event[detail_key] = detail
    return event


def envelope(message, keys, *, cert_url=SNS_CERT_URL, topic=TOPIC, now=NOW - 2, **kw) -> bytes:
    return json.dumps(ses.sign_envelope(message, topic, cert_url, keys[0], now, **kw)).encode()


def ses_obs(kind: str, event_id: str = "sns-1", recipient: str = "ann@example.com", occurred="2026-09-21T10:00:05.000Z",
            **fields) -> Observation:
    from channels.webhooks_in.base import iso_to_ms
    return Observation(provider="ses", kind=kind, provider_event_id=event_id, provider_message_id=SES_MESSAGE_ID,
                       occurred_ms=iso_to_ms(occurred, "t"), send_id="demo_lead1_shifts_2026-11-26",
                       recipient=recipient, **fields)


def parse_ses(message, keys, message_id="sns-1") -> list[Observation]:
    body = envelope(message, keys, message_id=message_id)
    return ses.parse({"x-amz-sns-message-type": "Notification"}, body).observations


T5 = "2026-09-21T10:00:05.000Z"


def test_ses_parses_each_event_kind(sns_keys):
    cases = [
        (ses_event("Delivery", "delivery", {"timestamp": T5, "processingTimeMillis": 900,
                                            "recipients": ["ann@example.com"],
                                            "smtpResponse": "250 2.6.0 Message received",
                                            "reportingMTA": "a8-1.smtp-out.amazonses.com"}),
         [ses_obs("delivered", reason="250 2.6.0 Message received")]),
        (ses_event("Bounce", "bounce", {"bounceType": "Permanent", "bounceSubType": "General", "timestamp": T5,
                                        "feedbackId": "f-1", "bouncedRecipients": [
                                            {"emailAddress": "ann@example.com", "action": "failed", "status": "5.1.1",
                                             "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]}),
         [ses_obs("bounced", bounce_type="hard", reason="smtp; 550 5.1.1 user unknown")]),
        (ses_event("Bounce", "bounce", {"bounceType": "Transient", "bounceSubType": "MailboxFull", "timestamp": T5,
                                        "bouncedRecipients": [{"emailAddress": "ann@example.com"}]}),
         [ses_obs("bounced", bounce_type="soft", reason="Transient MailboxFull")]),
        (ses_event("Bounce", "bounce", {"bounceType": "Undetermined", "bounceSubType": "Undetermined", "timestamp": T5,
                                        "bouncedRecipients": [{"emailAddress": "ann@example.com", "status": "4.0.0"}]}),
         [ses_obs("bounced", bounce_type="soft", reason="4.0.0")]),
        (ses_event("Complaint", "complaint", {"timestamp": T5, "feedbackId": "f-2", "complaintFeedbackType": "abuse",
                                              "complainedRecipients": [{"emailAddress": "ann@example.com"}]}),
         [ses_obs("complained", reason="abuse")]),
        (ses_event("Open", "open", {"timestamp": T5, "userAgent": "Mozilla/5.0", "ipAddress": "192.0.2.1"}),
         [ses_obs("opened", user_agent="Mozilla/5.0", ip="192.0.2.1")]),
        (ses_event("Click", "click", {"timestamp": T5, "userAgent": "Mozilla/5.0", "ipAddress": "192.0.2.2",
                                      "link": "https://jobs.example/c/1", "linkTags": {"samplekey0": ["v"]}}),
         [ses_obs("clicked", url="https://jobs.example/c/1", user_agent="Mozilla/5.0", ip="192.0.2.2")]),
        (ses_event("Reject", "reject", {"reason": "Bad content"}),
         [ses_obs("failed", occurred="2026-09-21T10:00:00.000Z", reason="Bad content")]),
        (ses_event("DeliveryDelay", "deliveryDelay", {
            "timestamp": T5, "delayType": "TransientCommunicationFailure", "expirationTime": "2026-09-22T10:00:00Z",
            "delayedRecipients": [{"emailAddress": "ann@example.com", "status": "4.4.1",
                                   "diagnosticCode": "smtp; 421 4.4.1 Unable to connect"}]}),
         [ses_obs("deferred", reason="TransientCommunicationFailure: smtp; 421 4.4.1 Unable to connect")]),
        (ses_event("Rendering Failure", "failure", {"errorMessage": "Attribute 'name' is not present",
                                                    "templateName": "alert"}),
         [ses_obs("failed", occurred="2026-09-21T10:00:00.000Z", reason="Attribute 'name' is not present")]),
        (ses_event("Subscription", "subscription", {
            "contactList": "leads", "timestamp": T5, "source": "UnsubscribeHeader",
            "newTopicPreferences": {"unsubscribeAll": True}, "oldTopicPreferences": {"unsubscribeAll": False}}),
         [ses_obs("unsubscribed")]),
        (ses_event("Subscription", "subscription", {"timestamp": T5, "newTopicPreferences": {
            "unsubscribeAll": False, "topicSubscriptionStatus": [{"topicName": "x", "subscriptionStatus": "OptOut"}]}}),
         []),
        (ses_event("Send", "send", {}), []),
        (ses_event("SomethingNew", None, None), []),
    ]
    for message, expected in cases:
        assert parse_ses(message, sns_keys) == expected, message["eventType"]


def test_ses_one_observation_per_recipient_with_distinct_event_ids(sns_keys):
    message = ses_event("Bounce", "bounce", {"bounceType": "Permanent", "bounceSubType": "General", "timestamp": T5,
                                             "bouncedRecipients": [{"emailAddress": "ann@example.com"},
                                                                   {"emailAddress": "bob@example.com"}]},
                        destination=("ann@example.com", "bob@example.com"))
    assert parse_ses(message, sns_keys) == [
        ses_obs("bounced", "sns-1:ann@example.com", bounce_type="hard", reason="Permanent General"),
        ses_obs("bounced", "sns-1:bob@example.com", "bob@example.com", bounce_type="hard", reason="Permanent General"),
    ]
    opened = ses_event("Open", "open", {"timestamp": T5, "userAgent": "UA", "ipAddress": "192.0.2.9"},
                       destination=("ann@example.com", "bob@example.com"))
    assert [(o.provider_event_id, o.recipient) for o in parse_ses(opened, sns_keys)] == [
        ("sns-1:ann@example.com", "ann@example.com"), ("sns-1:bob@example.com", "bob@example.com")]


def test_ses_older_notification_type_form(sns_keys):
    mail = {k: v for k, v in ses_mail().items() if k != "tags"}  # notifications carry no tags
    bounce = {"notificationType": "Bounce", "mail": mail, "bounce": {
        "bounceType": "Permanent", "bounceSubType": "Suppressed", "timestamp": T5,
        "bouncedRecipients": [{"emailAddress": "ann@example.com", "diagnosticCode": "Amazon SES has suppressed"}]}}
    delivery = {"notificationType": "Delivery", "mail": mail, "delivery": {
        "timestamp": T5, "recipients": ["ann@example.com"], "smtpResponse": "250 ok"}}
    complaint = {"notificationType": "Complaint", "mail": mail, "complaint": {
        "timestamp": T5, "complainedRecipients": [{"emailAddress": "ann@example.com"}]}}
    untagged = lambda o: Observation(**{**o.__dict__, "send_id": ""})  # noqa: E731
    assert parse_ses(bounce, sns_keys) == [untagged(ses_obs("bounced", bounce_type="hard",
                                                            reason="Amazon SES has suppressed"))]
    assert parse_ses(delivery, sns_keys) == [untagged(ses_obs("delivered", reason="250 ok"))]
    assert parse_ses(complaint, sns_keys) == [untagged(ses_obs("complained"))]
    assert parse_ses({"notificationType": "AmazonSnsSubscriptionSucceeded", "message": "ok"}, sns_keys) == []


def test_ses_string_to_sign_is_the_documented_layout():
    notification = {"Type": "Notification", "MessageId": "m", "TopicArn": "t", "Subject": "s", "Message": "{}",
                    "Timestamp": "2026-09-21T10:00:00.000Z", "UnsubscribeURL": "u", "SignatureVersion": "2"}
    assert ses.string_to_sign(notification) == (
        b"Message\n{}\nMessageId\nm\nSubject\ns\nTimestamp\n2026-09-21T10:00:00.000Z\n"
        b"TopicArn\nt\nType\nNotification\n")
    del notification["Subject"]
    assert b"Subject" not in ses.string_to_sign(notification)
    confirmation = {"Type": "SubscriptionConfirmation", "MessageId": "m", "Token": "tok", "TopicArn": "t",
                    "Message": "hi", "SubscribeURL": "https://sns/x", "Timestamp": "T"}
    assert ses.string_to_sign(confirmation) == (
        b"Message\nhi\nMessageId\nm\nSubscribeURL\nhttps://sns/x\nTimestamp\nT\nToken\ntok\nTopicArn\nt\n"
        b"Type\nSubscriptionConfirmation\n")


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_valid_signature_verifies(sns_keys, version):
    body = envelope(ses_event("Open", "open", {"timestamp": T5}), sns_keys, signature_version=version,
                    subject="SES event")
    assert ses.cert_url(body, SES_SECRETS) == SNS_CERT_URL
    ses.verify({}, body, "https://api.example/webhooks/ses", SES_SECRETS, NOW, cert_pem=sns_keys[1])


def test_ses_bad_signatures_are_401(sns_keys):
    good = json.loads(envelope(ses_event("Open", "open", {"timestamp": T5}), sns_keys))

    def check(env: dict, secrets=SES_SECRETS, cert=sns_keys[1]) -> WebhookRejected:
        return rejected(401, ses.verify, {}, json.dumps(env).encode(), "", secrets, NOW, cert_pem=cert)

    check({**good, "Signature": tamper(good["Signature"])})
    check({**good, "Message": good["Message"].replace("Open", "Click")})
    check({**good, "Subject": "added after signing"})
    check({**good, "Timestamp": "2026-09-21T10:00:00.000Z"})  # changed, so the signature breaks too
    check({k: v for k, v in good.items() if k != "Signature"})
    check({**good, "Signature": "***"})
    check({**good, "SignatureVersion": "3"})
    check({k: v for k, v in good.items() if k != "SigningCertURL"})
    check({**good, "TopicArn": "arn:aws:sns:eu-west-1:666666666666:evil"})  # not an allowed topic
    check(good, cert=None)  # the caller must fetch the certificate first
    check(good, cert=b"not a certificate")
    check(good, cert=ses.generate_signing_cert(now=NOW)[1])  # someone else's certificate
    # no topic restriction configured: any topic whose signature checks out is fine
    ses.verify({}, json.dumps(good).encode(), "", WebhookSecrets(), NOW, cert_pem=sns_keys[1])


def test_ses_stale_timestamp_is_401_but_an_hour_old_retry_is_taken(sns_keys):
    # SNS signs once, at publication; an HTTP/S delivery is retried for up to an hour
    retried = envelope(ses_event("Open", "open", {"timestamp": T5}), sns_keys, now=NOW - 3600)
    ses.verify({}, retried, "", SES_SECRETS, NOW, cert_pem=sns_keys[1])
    old = envelope(ses_event("Open", "open", {"timestamp": T5}), sns_keys, now=NOW - ses.MAX_AGE_S - 1)
    assert "replay" in rejected(401, ses.verify, {}, old, "", SES_SECRETS, NOW, cert_pem=sns_keys[1]).detail
    future = envelope(ses_event("Open", "open", {"timestamp": T5}), sns_keys, now=NOW + ses.MAX_AGE_S + 1)
    rejected(401, ses.verify, {}, future, "", SES_SECRETS, NOW, cert_pem=sns_keys[1])
    # a deployment may set its own window (LEADSTREAM_WEBHOOK_MAX_AGE_S)
    strict = WebhookSecrets(ses_cert_url_prefixes=SES_SECRETS.ses_cert_url_prefixes,
                            ses_topic_arns=SES_SECRETS.ses_topic_arns, max_age_s=600)
    rejected(401, ses.verify, {}, retried, "", strict, NOW, cert_pem=sns_keys[1])


def test_ses_expired_certificate_is_401(sns_keys):
    later = NOW + 400 * 86400  # the certificate is valid for 365 days
    body = envelope(ses_event("Open", "open", {"timestamp": T5}), sns_keys, now=later)
    assert "certificate" in rejected(401, ses.verify, {}, body, "", SES_SECRETS, later, cert_pem=sns_keys[1]).detail


@pytest.mark.parametrize("url", [
    "https://sns.eu-west-1.amazonaws.com.evil.example/SimpleNotificationService-1.pem",
    "https://evil.example/SimpleNotificationService-1.pem",
    "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
    "https://sns.eu-west-1.amazonaws.com@evil.example/SimpleNotificationService-1.pem",
    "https://sns.eu-west-1.amazonaws.com:8443/SimpleNotificationService-1.pem",
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem?x=1",
    "https://sns.eu-west-1.amazonaws.com/not-a-cert.txt",
    "https://s3.amazonaws.com/sns/SimpleNotificationService-1.pem",
    "http://127.0.0.1:18030/sns/SimpleNotificationService-standin.pem",  # a stand-in not allowed by config
    "http://127.0.0.1:180300/sns/x.pem",
])
def test_ses_cert_url_on_a_foreign_host_is_401(sns_keys, url):
    body = envelope(ses_event("Open", "open", {"timestamp": T5}), sns_keys, cert_url=url)
    secrets = WebhookSecrets(ses_cert_url_prefixes=("http://127.0.0.1:18030",)) if "180300" in url else SES_SECRETS
    rejected(401, ses.cert_url, body, secrets)
    rejected(401, ses.verify, {}, body, "", secrets, NOW, cert_pem=sns_keys[1])


def test_ses_cert_url_allowed_hosts_and_standin_prefix(sns_keys):
    for url in ("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem",
                "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-1.pem",
                "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
                "https://sns.ap-southeast-4.amazonaws.com/SimpleNotificationService-01d088a6f77103d0fe307c0069e40ed6.pem"):
        assert ses.cert_url(envelope({"eventType": "Send"}, sns_keys, cert_url=url)) == url
    for url in ("https://sns.s3-eu-west-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5ca.pem",  # a bucket
                "https://sns.s3.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5ca.pem",
                "https://sns.evil.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5ca.pem",
                "https://sns.us-east-1.amazonaws.com/uploads/mine.pem",
                "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-1.pem",
                "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem"):
        rejected(401, ses.cert_url, envelope({"eventType": "Send"}, sns_keys, cert_url=url))
    standin_url = "http://127.0.0.1:18030/sns/SimpleNotificationService-standin.pem"
    body = envelope(ses_event("Open", "open", {"timestamp": T5}), sns_keys, cert_url=standin_url)
    secrets = WebhookSecrets(ses_cert_url_prefixes=("http://127.0.0.1:18030/sns/",))
    assert ses.cert_url(body, secrets) == standin_url
    ses.verify({}, body, "", secrets, NOW, cert_pem=sns_keys[1])


def test_ses_subscription_confirmation_gives_the_subscribe_url(sns_keys):
    subscribe = ("https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + TOPIC
                 + "&Token=2336412f37fb687f5d51e6e2425")
    body = envelope("You have chosen to subscribe to the topic " + TOPIC, sns_keys,
                    message_type="SubscriptionConfirmation", subscribe_url=subscribe,
                    token="2336412f37fb687f5d51e6e2425")
    ses.verify({}, body, "", SES_SECRETS, NOW, cert_pem=sns_keys[1])
    confirmation = ses.parse({"x-amz-sns-message-type": "SubscriptionConfirmation"}, body)
    assert confirmation == Parsed([], subscribe_url=subscribe)
    # the Token and SubscribeURL are signed
    changed = {**json.loads(body), "SubscribeURL": "https://evil.example/"}
    rejected(401, ses.verify, {}, json.dumps(changed).encode(), "", SES_SECRETS, NOW, cert_pem=sns_keys[1])
    unsubscribed = envelope("unsubscribed", sns_keys, message_type="UnsubscribeConfirmation", subscribe_url=subscribe,
                            token="t")
    ses.verify({}, unsubscribed, "", SES_SECRETS, NOW, cert_pem=sns_keys[1])
    assert ses.parse({}, unsubscribed) == Parsed([])  # never re-subscribe on our own


def sns_body(**fields) -> bytes:
    base = {"Type": "Notification", "MessageId": "sns-1", "TopicArn": TOPIC, "Timestamp": T5,
            "Message": json.dumps(ses_event("Open", "open", {"timestamp": T5}))}
    return json.dumps({k: v for k, v in {**base, **fields}.items() if v is not None}).encode()


@pytest.mark.parametrize("body", [
    b"", b"not json", b"[]", b"\"Notification\"", b"{" * 50_000,
    sns_body(Type="Surprise"), sns_body(Type=None), sns_body(MessageId=None), sns_body(Message=None),
    sns_body(Message="not json"), sns_body(Message="[1]"), sns_body(Message=json.dumps({"mail": ses_mail()})),
    sns_body(Message=json.dumps({"eventType": "Open", "open": {"timestamp": T5}})),
    sns_body(Message=json.dumps({"eventType": "Open", "mail": ses_mail()})),
    sns_body(Message=json.dumps({"eventType": "Open", "mail": {"destination": ["a@b.c"]}, "open": {}})),
    sns_body(Message=json.dumps(ses_event("Bounce", "bounce", {"bounceType": "Permanent", "timestamp": T5}))),
    sns_body(Message=json.dumps(ses_event("Bounce", "bounce", {"bouncedRecipients": ["ann@example.com"]}))),
    sns_body(Message=json.dumps(ses_event("Complaint", "complaint", {"timestamp": T5}))),
    sns_body(Message=json.dumps(ses_event("Open", "open", {"timestamp": "yesterday"}))),
    sns_body(Message=json.dumps({**ses_event("Open", "open", {}), "mail": {**ses_mail(), "destination": "a@b.c"}})),
    sns_body(Type="SubscriptionConfirmation"),  # no SubscribeURL
])
def test_ses_malformed_bodies_are_400(body):
    rejected(400, ses.parse, {}, body)


def test_ses_message_type_header_must_match():
    rejected(400, ses.parse, {"x-amz-sns-message-type": "SubscriptionConfirmation"}, sns_body())


def test_ses_unreadable_body_in_verify_is_400():
    rejected(400, ses.verify, {}, b"not json", "", SES_SECRETS, NOW, cert_pem=b"")
    rejected(400, ses.cert_url, b"[]")


# ---- Twilio -------------------------------------------------------------------------------

TOKEN = "twilio-test-token"
HOOK_URL = "https://api.example/webhooks/twilio?tenant=demo"
TW_SECRETS = WebhookSecrets(twilio_auth_token=TOKEN)
FORM = {"content-type": "application/x-www-form-urlencoded"}


def status_form(status: str, **fields) -> dict[str, str]:
    return {"AccountSid": "AC" + "1" * 32, "ApiVersion": "2010-04-01", "MessageSid": "SM" + "a" * 32,
            "SmsSid": "SM" + "a" * 32, "MessageStatus": status, "SmsStatus": status, "From": "+15005550006",
            "To": "+447700900101", **fields}


def inbound_form(**fields) -> dict[str, str]:
    return {"AccountSid": "AC" + "1" * 32, "ApiVersion": "2010-04-01", "MessageSid": "SM" + "b" * 32,
            "SmsSid": "SM" + "b" * 32, "SmsMessageSid": "SM" + "b" * 32, "SmsStatus": "received",
            "From": "+447700900101", "To": "+15005550006", "Body": "STOP please & thanks", "NumMedia": "0",
            "NumSegments": "1", "FromCountry": "GB", **fields}


def tw_parse(form: dict[str, str]) -> list[Observation]:
    return twilio.parse(FORM, urllib.parse.urlencode(form).encode(), now_s=NOW).observations


def tw_obs(kind: str, event_id: str, **fields) -> Observation:
    return Observation(provider="twilio", kind=kind, provider_event_id=event_id, provider_message_id="SM" + "a" * 32,
                       occurred_ms=NOW_MS, recipient="+447700900101", **fields)


def test_twilio_signature_matches_twilios_published_example():
    # the example Twilio's request validators are tested against
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234", "From": "+14158675309",
              "To": "+18005551212"}
    assert twilio.sign("https://mycompany.com/myapp.php?foo=1&bar=2", params, "12345") == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_twilio_parses_status_callbacks():
    sid = "SM" + "a" * 32
    assert tw_parse(status_form("delivered")) == [tw_obs("delivered", f"{sid}:delivered")]
    assert tw_parse(status_form("undelivered", ErrorCode="30003")) == [
        tw_obs("failed", f"{sid}:undelivered", bounce_type="hard", reason="30003")]
    assert tw_parse(status_form("undelivered", ErrorCode="30005")) == [
        tw_obs("failed", f"{sid}:undelivered", bounce_type="hard", reason="30005")]
    assert tw_parse(status_form("failed", ErrorCode="30006", ErrorMessage="Landline or unreachable carrier")) == [
        tw_obs("failed", f"{sid}:failed", bounce_type="hard", reason="30006: Landline or unreachable carrier")]
    assert tw_parse(status_form("undelivered", ErrorCode="30008")) == [
        tw_obs("failed", f"{sid}:undelivered", bounce_type="soft", reason="30008")]
    assert tw_parse(status_form("failed")) == [tw_obs("failed", f"{sid}:failed", bounce_type="soft")]
    for status in ("queued", "sending", "sent", "accepted", "scheduled", "read", "canceled"):
        assert tw_parse(status_form(status)) == [], status
    legacy = {k: v for k, v in status_form("delivered").items() if k not in ("MessageSid", "MessageStatus")}
    assert tw_parse(legacy) == [tw_obs("delivered", f"{sid}:delivered")]


def test_twilio_parses_an_incoming_message_as_a_reply():
    sid = "SM" + "b" * 32
    expected = [Observation(provider="twilio", kind="reply", provider_event_id=f"{sid}:received",
                            provider_message_id=sid, occurred_ms=NOW_MS, recipient="+447700900101",
                            from_number="+447700900101", to_number="+15005550006", text="STOP please & thanks")]
    assert tw_parse(inbound_form()) == expected
    no_status = {k: v for k, v in inbound_form().items() if k != "SmsStatus"}
    assert tw_parse(no_status) == expected


def test_twilio_valid_signature_verifies():
    body = urllib.parse.urlencode(status_form("delivered")).encode()
    headers = {"x-twilio-signature": twilio.sign(HOOK_URL, status_form("delivered"), TOKEN)}
    twilio.verify(headers, body, HOOK_URL, TW_SECRETS, NOW)
    # signed with the default port, received without it (and the other way round)
    with_port = "https://api.example:443/webhooks/twilio?tenant=demo"
    twilio.verify({"X-Twilio-Signature": twilio.sign(with_port, status_form("delivered"), TOKEN)}, body, HOOK_URL,
                  TW_SECRETS, NOW)
    twilio.verify(headers, body, with_port, TW_SECRETS, NOW)
    # repeated parameters count, sorted by value
    repeated = [("To", "+1"), ("Body", "x"), ("To", "+0")]
    twilio.verify({"x-twilio-signature": twilio.sign(HOOK_URL, repeated, TOKEN)},
                  urllib.parse.urlencode(repeated).encode(), HOOK_URL, TW_SECRETS, NOW)


def test_twilio_bad_or_missing_signature_is_401():
    form = status_form("delivered")
    body = urllib.parse.urlencode(form).encode()
    good = twilio.sign(HOOK_URL, form, TOKEN)
    rejected(401, twilio.verify, {"x-twilio-signature": tamper(good)}, body, HOOK_URL, TW_SECRETS, NOW)
    rejected(401, twilio.verify, {}, body, HOOK_URL, TW_SECRETS, NOW)
    rejected(401, twilio.verify, {"x-twilio-signature": ""}, body, HOOK_URL, TW_SECRETS, NOW)
    rejected(401, twilio.verify, {"x-twilio-signature": good}, body.replace(b"delivered", b"undelivered"),
             HOOK_URL, TW_SECRETS, NOW)
    rejected(401, twilio.verify, {"x-twilio-signature": good}, body, HOOK_URL.replace("demo", "other"), TW_SECRETS, NOW)
    rejected(401, twilio.verify, {"x-twilio-signature": good}, body, "http://api.example/webhooks/twilio?tenant=demo",
             TW_SECRETS, NOW)
    rejected(401, twilio.verify, {"x-twilio-signature": good}, body, HOOK_URL,
             WebhookSecrets(twilio_auth_token="other-token"), NOW)
    rejected(401, twilio.verify, {"x-twilio-signature": good}, body, HOOK_URL, WebhookSecrets(), NOW)


@pytest.mark.parametrize("body,headers", [
    (b"", FORM), (b"garbage", FORM), (b"\xff\xfe=\xff", FORM), (b'{"MessageSid": "SM1"}', FORM),
    (urllib.parse.urlencode({"MessageStatus": "delivered", "To": "+1"}).encode(), FORM),
    (urllib.parse.urlencode({"MessageSid": "SM1", "To": "+1"}).encode(), FORM),
    (urllib.parse.urlencode({"MessageSid": "SM1", "MessageStatus": "delivered"}).encode(), FORM),
    (urllib.parse.urlencode({"MessageSid": "SM1", "SmsStatus": "received", "Body": "hi", "To": "+1"}).encode(), FORM),
    (urllib.parse.urlencode(status_form("delivered")).encode(), {"content-type": "application/json"}),
])
def test_twilio_malformed_bodies_are_400(body, headers):
    rejected(400, twilio.parse, headers, body)


# ---- Esendex ------------------------------------------------------------------------------

ES_SECRETS = WebhookSecrets(esendex_user="hooks", esendex_password="s3cret:with:colons")
ES_MESSAGE = "F1E2D3C4-0000-4000-8000-00000000AAAA"


def es_doc(kind: str, namespace: bool = False, **fields) -> bytes:
    return esendex.notification_xml(kind, {"Id": "PUSH-1", "MessageId": ES_MESSAGE,
                                           "AccountId": "ACC-1", **fields}, namespace=namespace)


def es_obs(kind: str, **fields) -> Observation:
    return Observation(provider="esendex", kind=kind, provider_event_id="PUSH-1", provider_message_id=ES_MESSAGE,
                       **{"occurred_ms": 1_789_984_800_000, **fields})


OCCURRED = "2026-09-21T10:00:00"  # 1_789_984_800 UTC


@pytest.mark.parametrize("namespace", [False, True])
def test_esendex_parses_each_notification(namespace):
    def parse(kind, **fields):
        return esendex.parse({}, es_doc(kind, namespace, **fields), now_s=NOW).observations

    assert parse("MessageDelivered", OccurredAt=OCCURRED) == [es_obs("delivered")]
    assert parse("MessageDelivered", OccurredAt=OCCURRED + ".1234567Z") == [
        es_obs("delivered", occurred_ms=1_789_984_800_123)]
    assert parse("MessageFailed", OccurredAt=OCCURRED) == [es_obs("failed")]
    assert parse("MessageFailed", OccurredAt=OCCURRED, FailureReason={
        "Code": 4, "Description": "Unknown subscriber", "PermanentFailure": True}) == [
        es_obs("failed", bounce_type="hard", reason="4: Unknown subscriber")]
    assert parse("MessageFailed", OccurredAt=OCCURRED, FailureReason={
        "Code": 16, "Description": "Handset busy", "PermanentFailure": False}) == [
        es_obs("failed", bounce_type="soft", reason="16: Handset busy")]
    assert parse("InboundMessage", MessageText=" Yes, call me ", From="447700900101", To="447700900999") == [
        es_obs("reply", occurred_ms=NOW_MS, recipient="+447700900101", from_number="+447700900101",
               to_number="+447700900999", text=" Yes, call me ")]
    assert parse("InboundMessage", MessageText="", From="+447700900101", To="00447700900999")[0].to_number == \
        "+447700900999"


def test_esendex_parses_the_documented_sample_literally():
    body = (b'<?xml version="1.0" encoding="utf-8"?>\n<MessageDelivered xmlns="http://api.esendex.com/ns/">\n'
            b"  <Id>PUSH-1</Id>\n  <MessageId>" + ES_MESSAGE.encode() + b"</MessageId>\n"
            b"  <AccountId>ACC-1</AccountId>\n  <OccurredAt>2026-09-21T10:00:00</OccurredAt>\n</MessageDelivered>")
    assert esendex.parse({}, body).observations == [es_obs("delivered")]


def test_esendex_basic_credentials_verify():
    headers = {"authorization": esendex.basic_auth_header("hooks", "s3cret:with:colons")}
    esendex.verify(headers, b"<x/>", "https://api.example/webhooks/esendex", ES_SECRETS, NOW)
    esendex.verify({"Authorization": headers["authorization"].replace("Basic", "basic")}, b"", "", ES_SECRETS, NOW)


@pytest.mark.parametrize("authorization", [
    None, "", "Bearer abc", "Basic", "Basic !!!", "Basic " + base64.b64encode(b"hooks").decode(),
    esendex.basic_auth_header("hooks", "wrong"), esendex.basic_auth_header("other", "s3cret:with:colons"),
    esendex.basic_auth_header("hooks", "s3cret:with:colon"), esendex.basic_auth_header("", ""),
])
def test_esendex_missing_or_wrong_credentials_are_401(authorization):
    headers = {} if authorization is None else {"authorization": authorization}
    rejected(401, esendex.verify, headers, b"", "", ES_SECRETS, NOW)


def test_esendex_unconfigured_credentials_refuse_everything():
    rejected(401, esendex.verify, {"authorization": esendex.basic_auth_header("", "")}, b"", "", WebhookSecrets(), NOW)


BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
                  b"<MessageDelivered><Id>&lol2;</Id></MessageDelivered>")
EXTERNAL = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            b"<InboundMessage><Id>1</Id><MessageId>2</MessageId><MessageText>&xxe;</MessageText>"
            b"<From>44</From><To>44</To></InboundMessage>")


@pytest.mark.parametrize("body", [
    b"", b"not xml", b"{\"Id\": 1}", b"<MessageDelivered>", BILLION_LAUGHS, EXTERNAL,
    b"<a>" * 100_000 + b"</a>" * 100_000, b"<Messages><MessageDelivered/></Messages>",
    es_doc("MessageRead", OccurredAt=OCCURRED),
    esendex.notification_xml("MessageDelivered", {"MessageId": ES_MESSAGE, "OccurredAt": OCCURRED}),
    esendex.notification_xml("MessageDelivered", {"Id": "1", "OccurredAt": OCCURRED}),
    es_doc("MessageDelivered"), es_doc("MessageFailed", OccurredAt="yesterday"),
    es_doc("InboundMessage", MessageText="hi", To="447700900999"),
    es_doc("InboundMessage", MessageText="hi", From="447700900101"),
])
def test_esendex_malformed_bodies_are_400(body):
    rejected(400, esendex.parse, {}, body)


# ---- the provider stand-in emits webhooks the modules accept --------------------------------

class Receiver:
    """A tiny HTTP server that verifies + parses what it is sent with the modules, like the API would."""

    def __init__(self, standin_url: str):
        keys = httpx.get(f"{standin_url}/webhook-keys").json()
        self.secrets = WebhookSecrets(
            sendgrid_public_key=keys["sendgrid_public_key"], ses_cert_url_prefixes=(f"{standin_url}/sns/",),
            ses_topic_arns=(keys["sns_topic_arn"],), twilio_auth_token=CREDS["twilio"]["auth_token"],
            esendex_user=CREDS["esendex"]["username"], esendex_password=CREDS["esendex"]["password"])
        self.received: list[Parsed] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                url = f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"
                status, answer = receiver.handle(self.path.split("/")[-1].split("?")[0], headers, body, url)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps(answer).encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, provider: str, headers: dict, body: bytes, url: str) -> tuple[int, dict]:
        module = PROVIDERS[provider]
        try:
            cert = None
            if provider == "ses":
                with urllib.request.urlopen(ses.cert_url(body, self.secrets), timeout=5) as response:
                    cert = response.read()
            module.verify(headers, body, url, self.secrets, time.time(), cert_pem=cert)
            parsed = module.parse(headers, body)
        except WebhookRejected as exc:
            return exc.status, {"error": exc.detail}
        self.received.append(parsed)
        return 200, {"kinds": [o.kind for o in parsed.observations], "subscribe_url": parsed.subscribe_url}


@pytest.fixture(scope="module")
def receiver(standin):  # noqa: F811 (fixture)
    server = Receiver(standin)
    yield server
    server.server.shutdown()
    server.server.server_close()


def emit(standin_url: str, provider: str, target: str, events: list[dict], tamper_: bool = False) -> dict:
    response = httpx.post(f"{standin_url}/webhooks/emit", timeout=20,
                          json={"provider": provider, "target": target, "events": events, "tamper": tamper_})
    assert response.status_code == 200, response.text
    return response.json()


def test_standin_serves_its_dev_keys(standin):  # noqa: F811
    keys = httpx.get(f"{standin}/webhook-keys").json()
    assert keys["sns_cert_url"] == f"{standin}/sns/SimpleNotificationService-standin.pem"
    assert base64.b64decode(keys["sendgrid_public_key"])  # base64 DER
    cert = httpx.get(keys["sns_cert_url"])
    assert cert.status_code == 200 and cert.content.startswith(b"-----BEGIN CERTIFICATE-----")
    assert httpx.get(f"{standin}/webhook-keys").json() == keys  # once per process, not per request


def test_standin_emits_sendgrid_events_that_verify(standin, receiver):  # noqa: F811
    events = [sg_event("delivered", timestamp=1_790_000_000), sg_event("open", timestamp=1_790_000_000, useragent="UA")]
    answer = emit(standin, "sendgrid", f"{receiver.url}/webhooks/sendgrid", events)
    assert answer["status"] == 200 and json.loads(answer["body"])["kinds"] == ["delivered", "opened"]
    assert receiver.received[-1].observations[0].send_id == "demo:lead1:shifts:2026-11-26"
    tampered = emit(standin, "sendgrid", f"{receiver.url}/webhooks/sendgrid", events, tamper_=True)
    assert tampered["status"] == 401 and "signature" in json.loads(tampered["body"])["error"]


def test_standin_emits_ses_events_that_verify(standin, receiver):  # noqa: F811
    bounce = ses_event("Bounce", "bounce", {"bounceType": "Permanent", "bounceSubType": "General", "timestamp": T5,
                                            "bouncedRecipients": [{"emailAddress": "ann@example.com"}]})
    delivery = ses_event("Delivery", "delivery", {"timestamp": T5, "recipients": ["ann@example.com"]})
    answer = emit(standin, "ses", f"{receiver.url}/webhooks/ses", [bounce, delivery])
    assert answer["status"] == 200 and [json.loads(r["body"])["kinds"] for r in answer["results"]] == [
        ["bounced"], ["delivered"]]
    assert receiver.received[-2].observations[0].bounce_type == "hard"
    confirm = emit(standin, "ses", f"{receiver.url}/webhooks/ses", [
        {"Type": "SubscriptionConfirmation", "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Confirm",
         "Token": "tok"}])
    assert json.loads(confirm["body"])["subscribe_url"] == "https://sns.eu-west-1.amazonaws.com/?Action=Confirm"
    tampered = emit(standin, "ses", f"{receiver.url}/webhooks/ses", [bounce], tamper_=True)
    assert tampered["status"] == 401


def test_standin_emits_twilio_callbacks_that_verify(standin, receiver):  # noqa: F811
    target = f"{receiver.url}/webhooks/twilio?tenant=demo"
    answer = emit(standin, "twilio", target, [
        {"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": 30005, "To": "+447700900101",
         "From": "+15005550006"},
        {"MessageSid": "SM2", "SmsStatus": "received", "From": "+447700900101", "To": "+15005550006", "Body": "yes"}])
    assert answer["status"] == 200
    assert [json.loads(r["body"])["kinds"] for r in answer["results"]] == [["failed"], ["reply"]]
    assert receiver.received[-2].observations[0].bounce_type == "hard"
    assert receiver.received[-1].observations[0].text == "yes"
    tampered = emit(standin, "twilio", target, [{"MessageSid": "SM1", "MessageStatus": "delivered", "To": "+4477"}],
                    tamper_=True)
    assert tampered["status"] == 401


def test_standin_emits_esendex_notifications_that_verify(standin, receiver):  # noqa: F811
    target = f"{receiver.url}/webhooks/esendex"
    answer = emit(standin, "esendex", target, [
        {"type": "MessageFailed", "Id": "P1", "MessageId": "M1", "AccountId": "A1", "OccurredAt": OCCURRED,
         "FailureReason": {"Code": 4, "Description": "Unknown subscriber", "PermanentFailure": True}},
        {"type": "InboundMessage", "Id": "P2", "MessageId": "M2", "AccountId": "A1", "MessageText": "hi",
         "From": "447700900101", "To": "447700900999"}])
    assert answer["status"] == 200
    assert [json.loads(r["body"])["kinds"] for r in answer["results"]] == [["failed"], ["reply"]]
    assert receiver.received[-1].observations[0].from_number == "+447700900101"
    tampered = emit(standin, "esendex", target, [{"type": "MessageDelivered", "Id": "P3", "MessageId": "M3",
                                                  "OccurredAt": OCCURRED}], tamper_=True)
    assert tampered["status"] == 401


def test_standin_emit_refuses_nonsense(standin):  # noqa: F811
    for spec in ({"provider": "pigeon", "target": "http://x/", "events": [{}]},
                 {"provider": "sendgrid", "target": "ftp://x/", "events": [{}]},
                 {"provider": "sendgrid", "target": "http://x/", "events": []},
                 {"provider": "esendex", "target": "http://x/", "events": [{"type": "Nope"}]}):
        assert httpx.post(f"{standin}/webhooks/emit", json=spec).status_code == 400
