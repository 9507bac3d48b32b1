"""Secrets never reach a log: a private platform runs with canary values for its secrets
(link keys, provider tokens and webhook credentials), is driven through the paths that use
them, well and badly (a lead in, its welcome sent with signed links, wrong API keys, wrong
passwords, webhooks with wrong signatures and credentials), and then every log it wrote is
searched for each canary, plain and base64-encoded."""
from __future__ import annotations

import base64
import uuid

import httpx
import pytest

from stack.isolated import SEND_AGENTS, IsolatedPlatform
from tests.integration.conftest import auth, wait_for

CANARY = f"canary{uuid.uuid4().hex}"
SECRETS = {
    "LEADSTREAM_LINK_KEYS": f"k1:{CANARY}-link",
    "LEADSTREAM_TWILIO_AUTH_TOKEN": f"{CANARY}-twilio",
    "LEADSTREAM_MAILGUN_WEBHOOK_SIGNING_KEY": f"{CANARY}-mailgun",
    "LEADSTREAM_POSTMARK_WEBHOOK_PASSWORD": f"{CANARY}-postmark",
    "LEADSTREAM_ESENDEX_PASSWORD": f"{CANARY}-esendex",
    "LEADSTREAM_PLIVO_AUTH_TOKEN": f"{CANARY}-plivo",
    "LEADSTREAM_VONAGE_SIGNATURE_SECRET": f"{CANARY}-vonage",
}


@pytest.fixture(scope="module")
def platform():
    with IsolatedPlatform(redis_db=59, agents=SEND_AGENTS + ("engagement",), fronts=("api", "tracking"),
                          env=SECRETS) as p:
        yield p


def test_no_secret_appears_in_any_log(platform, keys):
    p = platform
    with httpx.Client(base_url=p.api_url, timeout=30) as api:
        r = api.post("/v1/leads", headers=auth(keys["jobsnearby"]),
                     json={"email": f"canary.{uuid.uuid4().hex[:8]}@example.com", "first_name": "Cy",
                           "partner": "ziprecruiter", "list": "daily-jobs",
                           "location": {"zip": "10001", "country": "US"}})
        assert r.status_code == 202, r.text
        # the welcome went out with links signed by the canary link key
        wait_for(lambda: list(p.redis.scan_iter("ls:pmsg:*")) or list(p.redis.scan_iter("ls:hist:*")), 90,
                 what="the welcome sent")
        wrong = f"{CANARY}-apikey"
        assert api.post("/v1/leads", headers=auth(wrong), json={}).status_code == 401
        assert api.post("/v1/session", json={"email": "brand@jobsnearby.example",
                                             "password": f"{CANARY}-password"}).status_code == 401
        form = {"content-type": "application/x-www-form-urlencoded"}
        assert api.post("/webhooks/twilio", content=b"MessageSid=SM1&MessageStatus=delivered&To=%2B15125550100",
                        headers={**form, "X-Twilio-Signature": f"{CANARY}-sig"}).status_code == 401
        basic = base64.b64encode(f"postmark-hooks:{CANARY}-wrong".encode()).decode()
        assert api.post("/webhooks/postmark", json={"RecordType": "Delivery"},
                        headers={"Authorization": f"Basic {basic}"}).status_code == 401
        assert api.post("/webhooks/mailgun", json={"signature": {"timestamp": "1", "token": "t",
                                                                 "signature": f"{CANARY}-mg"}}).status_code in (400, 401)
    needles = {CANARY} | {base64.b64encode(v.encode()).decode()[:24] for v in SECRETS.values()}
    logs = sorted(f for f in p.tmp.rglob("*") if f.is_file() and f.suffix in (".log", ".txt", ""))
    assert any(f.name.endswith(".log") for f in logs)  # there were logs to read
    leaked = {str(f.relative_to(p.tmp)): [n for n in needles if n in f.read_text(errors="replace")] for f in logs}
    assert not {f: n for f, n in leaked.items() if n}, leaked
