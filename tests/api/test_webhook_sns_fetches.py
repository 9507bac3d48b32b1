"""What an unauthenticated POST to /webhooks/ses can make the API fetch: nothing until every
cheap check passed (type, signature present, topic, age, certificate URL), and a certificate
URL that fails is remembered, so a flood naming it makes one outbound request, not one each.
Against a real local HTTP server that counts what it is asked for."""
from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from api.webhooks import WebhookKeys, _confirm_subscription, _verified
from channels.webhooks_in import WebhookRejected, ses

TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-events"


@pytest.fixture(scope="module")
def certs():
    """A certificate server: /sns/good.pem is the signing certificate, anything else 404."""
    key_pem, cert_pem = ses.generate_signing_cert()
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            asked.append(self.path)
            body, status = (cert_pem, 200) if self.path == "/sns/good.pem" else (b"no", 404)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/sns/"
    yield SimpleNamespace(key=key_pem, base=base, asked=asked)
    server.shutdown()


def keys_for(base: str) -> WebhookKeys:
    settings = SimpleNamespace(sendgrid_webhook_public_key="unused", webhook_keys_url="", ses_cert_url_prefixes=base,
                               ses_topic_arns=TOPIC, twilio_auth_token="", esendex_username="", esendex_password="",
                               mailgun_webhook_signing_key="", postmark_webhook_user="", postmark_webhook_password="",
                               webhook_max_age_s=0, vonage_signature_secret="", vonage_signature_method="sha256",
                               plivo_auth_token="", telnyx_public_key="unused")
    return WebhookKeys(SimpleNamespace(settings=settings))


def post(certs, keys: WebhookKeys, cert: str, topic: str = TOPIC, age_s: float = 0, tamper: bool = False) -> str:
    event = {"eventType": "Delivery", "mail": {"messageId": "m1", "destination": ["a@example.com"],
                                               "timestamp": "2026-12-05T00:00:00.000Z"}, "delivery": {}}
    envelope = ses.sign_envelope(event, topic, certs.base + cert, certs.key, time.time() - age_s)
    if tamper:
        envelope["Message"] = envelope["Message"].replace("m1", "m2")
    try:
        asyncio.run(_verified(ses, "ses", {}, json.dumps(envelope).encode(), "", keys))
        return "200"
    except WebhookRejected as exc:
        return f"{exc.status} {exc.detail}"


def test_a_message_failing_a_cheap_check_makes_no_request(certs):
    keys = keys_for(certs.base)
    before = len(certs.asked)
    assert post(certs, keys, "good.pem", topic="arn:aws:sns:us-east-1:999999999999:theirs").startswith("401")
    assert "replay" in post(certs, keys, "good.pem", age_s=ses.MAX_AGE_S + 60)
    assert post(certs, keys, "../elsewhere.pem").startswith("401")
    assert len(certs.asked) == before  # nothing was fetched for any of them


def test_a_failing_certificate_url_is_fetched_once_for_a_flood(certs):
    keys = keys_for(certs.base)
    before = len(certs.asked)
    answers = [post(certs, keys, "missing.pem") for _ in range(20)]
    assert all(a.startswith("401 signing certificate not available (404)") for a in answers)
    assert certs.asked[before:] == ["/sns/missing.pem"]


def test_a_good_certificate_is_fetched_once_and_checks_every_signature(certs):
    keys = keys_for(certs.base)
    before = len(certs.asked)
    assert post(certs, keys, "good.pem") == "200"
    assert post(certs, keys, "good.pem") == "200"
    assert "does not match" in post(certs, keys, "good.pem", tamper=True)
    assert certs.asked[before:] == ["/sns/good.pem"]


def test_only_sns_own_subscribe_urls_are_followed(certs):
    secrets = asyncio.run(keys_for("").secrets())
    for url in ("https://evil.example/?Action=ConfirmSubscription&Token=t",
                "https://sns.s3-eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=t",
                "http://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=t",
                "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x"):
        with pytest.raises(WebhookRejected) as exc:
            asyncio.run(_confirm_subscription(url, secrets))
        assert exc.value.status == 400
    assert ses.subscribe_url_allowed(
        "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + TOPIC + "&Token=t", secrets)


def test_twilio_signatures_are_checked_against_the_public_url_behind_a_proxy():
    from starlette.requests import Request

    from api.webhooks import signed_url
    from channels.webhooks_in import WebhookSecrets, twilio
    # what the API sees behind a TLS-terminating proxy, and what Twilio called and signed
    scope = {"type": "http", "method": "POST", "scheme": "http", "server": ("10.0.0.7", 18080),
             "path": "/webhooks/twilio", "query_string": b"tenant=jobsnearby", "headers": [(b"host", b"10.0.0.7:18080")]}
    request = Request(scope)
    public = "https://hooks.example.com/webhooks/twilio?tenant=jobsnearby"
    params = {"MessageSid": "SM1", "MessageStatus": "delivered", "To": "+15125550100"}
    body = "&".join(f"{k}={v}" for k, v in params.items()).replace("+", "%2B").encode()
    headers = {"x-twilio-signature": twilio.sign(public, params, "secret-token")}
    secrets = WebhookSecrets(twilio_auth_token="secret-token")
    behind = SimpleNamespace(public_webhook_base_url="https://hooks.example.com/")
    assert signed_url(request, behind) == public
    twilio.verify(headers, body, signed_url(request, behind), secrets, time.time())
    unset = SimpleNamespace(public_webhook_base_url="")
    assert signed_url(request, unset) == "http://10.0.0.7:18080/webhooks/twilio?tenant=jobsnearby"
    with pytest.raises(WebhookRejected):  # without the setting the proxy's URL never matches
        twilio.verify(headers, body, signed_url(request, unset), secrets, time.time())
