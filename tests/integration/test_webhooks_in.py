"""Provider webhooks end to end on a private platform: the providers' stand-in sends signed
webhooks in each provider's wire format to our API; bounces and complaints suppress, SMS
STOP unsubscribes and is confirmed, HELP is answered, an ordinary reply changes nothing; bad
signatures get 401, unparseable bodies 400, and every raw request is kept on webhooks.raw."""
from __future__ import annotations

import time
import uuid

import httpx
import orjson
import pytest
from confluent_kafka import Consumer

from channels.webhooks_in import esendex, twilio
from schemas.codec import default_codec
from stack.isolated import IsolatedPlatform
from streams.settings import get_settings
from tests.integration.conftest import wait_for
from tests.integration.test_sending import submit

S = get_settings()
CODEC = default_codec()
AGENTS = ("intake", "planner", "jobs", "sender_priority", "retry", "engagement")
CTX: dict = {}


@pytest.fixture(scope="module")
def iso(tmp_path_factory):
    from stack.standins import providers, smtp_sink
    folder = tmp_path_factory.mktemp("mail")
    smtp_port, _, stop_smtp = smtp_sink.start(port=0, folder=folder)
    url, stop_providers = providers.start(port=0)
    CTX["providers"] = url
    env = {"LEADSTREAM_SMTP_PORT": str(smtp_port), "LEADSTREAM_MAIL_DIR": str(folder),
           "LEADSTREAM_PROVIDERS_URL": url, "LEADSTREAM_WEBHOOK_KEYS_URL": f"{url}/webhook-keys",
           "LEADSTREAM_SES_CERT_URL_PREFIXES": f"{url}/sns/"}
    with IsolatedPlatform(redis_db=9, agents=AGENTS, env=env, fronts=("api",)) as p:
        p.poll_feeds()
        wait_for(lambda: p.redis.hlen("ls:jobs:hireflow") >= 3000, 60, what="hireflow's jobs")
        yield p
    stop_providers()
    stop_smtp()


def emit(p, provider: str, events: list[dict], tamper: bool = False) -> dict:
    r = httpx.post(f"{CTX['providers']}/webhooks/emit", timeout=30,
                   json={"provider": provider, "target": f"{p.api_url}/webhooks/{provider}",
                         "events": events, "tamper": tamper})
    assert r.status_code == 200, r.text
    return r.json()


def lead_state(p, tenant: str, lid: str) -> dict | None:
    raw = p.redis.get(f"ls:lead:{tenant}:{lid}")
    return orjson.loads(raw) if raw else None


def raw_webhooks(p) -> list[dict]:
    """Every webhook.received event on this platform's raw topic."""
    c = Consumer({"bootstrap.servers": S.kafka_bootstrap, "group.id": f"t-{uuid.uuid4().hex}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([f"{p.prefix}webhooks.raw"])
    out, idle_since = [], time.monotonic()
    while time.monotonic() - idle_since < 5:
        m = c.poll(0.5)
        if m is not None and not m.error():
            out.append(CODEC.decode(m.value())[1])
            idle_since = time.monotonic()
    c.close()
    return out


def sent_via_sendgrid(p, address: str, provider: str = "sendgrid") -> tuple[str, str]:
    """A hireflow lead whose welcome went out through SendGrid (or, with SendGrid failing, its
    fallback SES): (lead id, the provider's message id)."""
    [lid] = submit(p, "hireflow", [{"email": address, "first_name": "Bo", "partner": "indeed-xml", "list": "tech-weekly",
                                    "location": {"zip": "94105", "country": "US"},
                                    "interests": {"keywords": ["engineer"]}}])

    def pmsg():
        for key in p.redis.scan_iter(f"ls:pmsg:{provider}:*"):
            if orjson.loads(p.redis.get(key))["lead_id"] == lid:
                return key.decode().rsplit(":", 1)[1]
        return None
    return lid, wait_for(pmsg, 60, what=f"the welcome dispatched through {provider}")


def sendgrid_event(kind: str, pid: str, address: str, **extra) -> dict:
    return {"email": address, "timestamp": int(time.time()), "event": kind,
            "sg_event_id": uuid.uuid4().hex, "sg_message_id": f"{pid}.filterdrecv-1", **extra}


def test_a_hard_bounce_reported_by_sendgrid_unsubscribes_the_lead(iso):
    address = f"bounce-{uuid.uuid4().hex[:8]}@example.com"
    lid, pid = sent_via_sendgrid(iso, address)
    answer = emit(iso, "sendgrid", [sendgrid_event("delivered", pid, address),
                                    sendgrid_event("bounce", pid, address, type="bounce",
                                                   reason="550 5.1.1 The email account does not exist")])
    assert answer["status"] == 200 and orjson.loads(answer["body"]) == {"accepted": 2, "unmatched": 0}
    st = wait_for(lambda: (s := lead_state(iso, "hireflow", lid)) and s["status"] == "unsubscribed" and s, 60,
                  what="the bounced lead unsubscribed")
    assert st["status"] == "unsubscribed"


def test_a_sendgrid_group_unsubscribe_leaves_only_the_list_of_the_message(iso):
    address = f"group-{uuid.uuid4().hex[:8]}@example.com"
    lid, pid = sent_via_sendgrid(iso, address)
    answer = emit(iso, "sendgrid", [sendgrid_event("group_unsubscribe", pid, address, asm_group_id=42)])
    assert orjson.loads(answer["body"]) == {"accepted": 1, "unmatched": 0}
    st = wait_for(lambda: (s := lead_state(iso, "hireflow", lid)) and "tech-weekly" not in s["lists"] and s, 60,
                  what="the lead leaving tech-weekly")
    assert st["status"] == "accepted"  # still the brand's subscriber: only the group's list was left
    assert st["preferences"]["tech-weekly"]["left"] is True
    # a partner uploading the person to that list again does not put them back on it
    submit(iso, "hireflow", [{"email": address, "first_name": "Bo", "partner": "indeed-xml", "list": "tech-weekly",
                              "location": {"zip": "94105", "country": "US"}}])
    again = wait_for(lambda: (s := lead_state(iso, "hireflow", lid))["submissions"] > st["submissions"] and s, 60,
                     what="the resubmission decided")
    assert "tech-weekly" not in again["lists"] and again["status"] == "accepted"


def test_soft_bounces_suppress_only_after_the_tenants_limit(iso):
    address = f"soft-{uuid.uuid4().hex[:8]}@example.com"
    lid, pid = sent_via_sendgrid(iso, address)
    for _ in range(2):
        emit(iso, "sendgrid", [sendgrid_event("bounce", pid, address, type="blocked", reason="421 try later")])
    time.sleep(3)
    assert lead_state(iso, "hireflow", lid)["status"] == "accepted"  # 2 < soft_bounce_limit (3)
    emit(iso, "sendgrid", [sendgrid_event("bounce", pid, address, type="blocked", reason="421 try later")])
    wait_for(lambda: lead_state(iso, "hireflow", lid)["status"] == "unsubscribed", 60,
             what="the third soft bounce suppressing")


def test_a_complaint_through_ses_sns_unsubscribes(iso):
    address = f"complain-{uuid.uuid4().hex[:8]}@example.com"
    httpx.post(f"{CTX['providers']}/control/sendgrid", json={"mode": "fail"}).raise_for_status()
    try:
        lid, pid = sent_via_sendgrid(iso, address, provider="ses")  # SendGrid down: SES delivers it
    finally:
        httpx.post(f"{CTX['providers']}/control/sendgrid", json={"mode": "ok"}).raise_for_status()
    answer = emit(iso, "ses", [{"eventType": "Complaint", "mail": {
        "messageId": pid, "destination": [address], "timestamp": "2026-11-26T09:00:00.000Z",
        "tags": {}}, "complaint": {"complainedRecipients": [{"emailAddress": address}],
                                   "timestamp": "2026-11-26T09:05:00.000Z", "complaintFeedbackType": "abuse"}}])
    assert answer["status"] == 200, answer
    wait_for(lambda: lead_state(iso, "hireflow", lid)["status"] == "unsubscribed", 60,
             what="the complaining lead unsubscribed")


def sms_lead(p) -> tuple[str, str]:
    n = int(uuid.uuid4().hex[:4], 16) % 10000
    phone = f"+1415555{n:04d}"
    [lid] = submit(p, "jobsnearby", [{
        "phone": phone, "first_name": "Tess", "partner": "indeed-xml", "list": "sms-alerts",
        "location": {"zip": "98101", "country": "US"}, "interests": {"keywords": ["driver"]},
        "consent": {"at": "2026-11-20T09:00:00Z", "ip": "203.0.113.9", "text": "Yes, text me jobs."}}])
    st = wait_for(lambda: lead_state(p, "jobsnearby", lid), 60, what="the SMS lead accepted")
    return lid, st["address"]


def twilio_sent_to(number: str) -> list[str]:
    return [m["body"] for m in httpx.get(f"{CTX['providers']}/sent/twilio").json() if m["to"] == number]


@pytest.mark.parametrize("text", ["Stop.", "stpo", "STOP thank you", "unsubscribe", "Opt-out"])
def test_sms_stop_in_its_variants_unsubscribes_and_is_confirmed(iso, text):
    lid, number = sms_lead(iso)
    answer = emit(iso, "twilio", [{"MessageSid": "SM" + uuid.uuid4().hex, "From": number, "To": "+15005550001",
                                   "Body": text, "SmsStatus": "received", "NumMedia": "0"}])
    assert answer["status"] == 200
    wait_for(lambda: lead_state(iso, "jobsnearby", lid)["status"] == "unsubscribed", 60, what=f"{text!r} unsubscribing")
    confirm = wait_for(lambda: [b for b in twilio_sent_to(number) if "unsubscribed" in b], 60, what="the STOP confirmation")
    assert len(confirm) == 1 and "Jobs Nearby" in confirm[0]


def test_a_replayed_twilio_message_decides_nothing_twice(iso):
    """Twilio's webhooks carry no time: a replay (or a retry) seconds later must keep the first
    one's event id, so HELP is answered once, not once per copy."""
    lid, number = sms_lead(iso)
    help_ = {"MessageSid": "SM" + uuid.uuid4().hex, "From": number, "To": "+15005550001", "Body": "HELP",
             "SmsStatus": "received", "NumMedia": "0"}
    assert emit(iso, "twilio", [help_])["status"] == 200
    time.sleep(1.5)  # a later copy: the time of receipt differs
    assert emit(iso, "twilio", [help_])["status"] == 200
    # a STOP after both: the same lead's events are decided in order, so once it is confirmed
    # both copies of HELP have been decided
    emit(iso, "twilio", [{**help_, "MessageSid": "SM" + uuid.uuid4().hex, "Body": "STOP"}])
    wait_for(lambda: [b for b in twilio_sent_to(number) if "unsubscribed" in b], 60, what="the STOP confirmation")
    assert len([b for b in twilio_sent_to(number) if "Help: help@" in b]) == 1


def test_an_ordinary_reply_changes_nothing_and_help_is_answered(iso):
    lid, number = sms_lead(iso)
    for body in ("Thanks, I will apply", "Don't stop sending these!", "HELP"):
        emit(iso, "esendex", [{"type": "InboundMessage", "Id": uuid.uuid4().hex, "MessageId": uuid.uuid4().hex,
                               "AccountId": "EX0000000", "MessageText": body, "From": number.lstrip("+"),
                               "To": "15005550001"}])
    helped = wait_for(lambda: [b for b in twilio_sent_to(number) if "Reply STOP to opt out" in b and "rates" in b],
                      60, what="the HELP answer")
    assert helped
    time.sleep(2)
    assert lead_state(iso, "jobsnearby", lid)["status"] == "accepted"


def test_bad_signatures_get_401_malformed_bodies_400_and_every_request_is_kept(iso):
    for provider, events in [("sendgrid", [sendgrid_event("delivered", "x", "a@example.com")]),
                             ("twilio", [{"MessageSid": "SM1", "MessageStatus": "delivered", "To": "+15005550001"}]),
                             ("esendex", [{"type": "MessageDelivered", "Id": "1", "MessageId": "m", "AccountId": "EX0000000",
                                           "OccurredAt": "2026-11-26T09:00:00Z"}]),
                             ("ses", [{"eventType": "Delivery", "mail": {"messageId": "m", "destination": ["a@example.com"],
                                                                         "timestamp": "2026-11-26T09:00:00.000Z"}}])]:
        assert emit(iso, provider, events, tamper=True)["status"] == 401, provider
    url = iso.api_url
    assert httpx.post(f"{url}/webhooks/sendgrid", content=b"[]").status_code == 401  # no signature at all
    form = {"MessageSid": "SM1"}  # signed, but neither a status callback nor a message
    sig = twilio.sign(f"{url}/webhooks/twilio", form, S.twilio_auth_token)
    assert httpx.post(f"{url}/webhooks/twilio", data=form, headers={"x-twilio-signature": sig}).status_code == 400
    auth = esendex.basic_auth_header(S.esendex_username, S.esendex_password)
    r = httpx.post(f"{url}/webhooks/esendex", content=b"<not-xml", headers={"authorization": auth,
                                                                             "content-type": "application/xml"})
    assert r.status_code == 400 and r.json()["error"] == "bad_request"
    assert emit(iso, "sendgrid", [{"nonsense": True}])["status"] == 400
    assert httpx.post(f"{url}/webhooks/mailchimp", content=b"{}").status_code == 404
    assert httpx.post(f"{url}/webhooks/sendgrid", content=b"x" * (S.max_body_bytes + 1)).status_code == 413
    kept = raw_webhooks(iso)
    statuses = sorted(k["status"] for k in kept)
    assert statuses.count(401) >= 5 and statuses.count(400) >= 3
    # refused requests are about nobody we know: their bodies are not kept, their digests are
    refused = [k for k in kept if k["status"] in (400, 401)]
    assert all(k["body"] == "" and k["body_encoding"] == "not_kept" and k["lead_id"] == "" and k["body_bytes"] > 0
               and len(k["body_sha256"]) == 64 for k in refused)


def test_start_after_stop_subscribes_again_and_more_sends_jobs_now(iso):
    lid, number = sms_lead(iso)

    def reply(text: str) -> None:
        emit(iso, "twilio", [{"MessageSid": "SM" + uuid.uuid4().hex, "From": number, "To": "+15005550001",
                              "Body": text, "SmsStatus": "received"}])
    reply("STOP")
    wait_for(lambda: lead_state(iso, "jobsnearby", lid)["status"] == "unsubscribed", 60, what="STOP")
    reply("Start")
    wait_for(lambda: lead_state(iso, "jobsnearby", lid)["status"] == "accepted", 60, what="START subscribing again")
    assert wait_for(lambda: [b for b in twilio_sent_to(number) if "subscribed to job alerts again" in b], 60,
                    what="the START confirmation")
    reply("more jobs")

    def more_sent():
        hist = [orjson.loads(h) for h in iso.redis.lrange(f"ls:hist:jobsnearby:{lid}", 0, -1)]
        return [h for h in hist if h["kind"] == "more_jobs"]
    [sent] = wait_for(more_sent, 60, what="the jobs sent on MORE")
    assert sent["channel"] == "sms" and sent["list"] == "sms-alerts"


def keyed_records(p, topic: str, key: str, want, timeout: float = 60) -> list[tuple[bytes, str, dict]]:
    """(raw value, name, event) of the records keyed `key` on this platform's topic, once want(list) holds."""
    c = Consumer({"bootstrap.servers": S.kafka_bootstrap, "group.id": f"t-{uuid.uuid4().hex}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([f"{p.prefix}{topic}"])
    out, deadline = [], time.monotonic() + timeout
    try:
        while not want(out) and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error() and m.key() == key.encode():
                out.append((m.value(), *CODEC.decode(m.value())))
    finally:
        c.close()
    assert want(out), f"{topic}: {[(n, e.get('kind')) for _, n, e in out]}"
    return out


def test_where_a_person_opened_from_by_the_providers_word_is_sealed_with_their_key(iso):
    from domain.sealing import is_sealed
    from tests.integration.test_sealed_lead_events import opened
    address, ip = f"opener-{uuid.uuid4().hex[:8]}@example.com", "198.51.100.44"
    lid, pid = sent_via_sendgrid(iso, address)
    answer = emit(iso, "sendgrid", [sendgrid_event("open", pid, address, ip=ip,
                                                   useragent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/133.0")])
    assert answer["status"] == 200 and orjson.loads(answer["body"]) == {"accepted": 1, "unmatched": 0}
    [observed] = [r for r in keyed_records(iso, "engagement.observed", lid,
                                           lambda got: any(n == "webhook.observation" for _, n, _ in got))
                  if r[1] == "webhook.observation"]
    [decided] = [r for r in keyed_records(iso, "engagement.events", lid,
                                          lambda got: any(n == "engagement.opened" for _, n, _ in got))
                 if r[1] == "engagement.opened"]
    for raw, name, ev in (observed, decided):
        assert ip.encode() not in raw and is_sealed(ev["ip"]), name
        assert opened(iso.settings, name, ev)["ip"] == ip


def test_a_texts_number_and_words_are_sealed_with_the_senders_key(iso):
    from domain.sealing import is_sealed
    from tests.integration.test_sealed_lead_events import opened
    lid, number = sms_lead(iso)
    words = f"ok great, see you on {uuid.uuid4().hex[:8]} then"
    answer = emit(iso, "twilio", [{"MessageSid": "SM" + uuid.uuid4().hex, "From": number, "To": "+15005550001",
                                   "Body": words, "SmsStatus": "received"}])
    assert answer["status"] == 200
    [observed] = [r for r in keyed_records(iso, "engagement.observed", lid,
                                           lambda got: any(e.get("kind") == "reply" for _, _, e in got))
                  if r[2].get("kind") == "reply"]
    [decided] = [r for r in keyed_records(iso, "engagement.events", lid,
                                          lambda got: any(n == "engagement.replied" for _, n, _ in got))
                 if r[1] == "engagement.replied"]
    for raw, name, ev in (observed, decided):
        assert words.encode() not in raw and number.encode() not in raw, name
        assert is_sealed(ev["text"]) and is_sealed(ev["from_number"]), name
        clear = opened(iso.settings, name, ev)
        assert (clear["text"], clear["from_number"]) == (words, number), name
    assert decided[2]["intent"] == "other" and decided[2]["to_number"] == "+15005550001"  # what analysts count


def test_a_raw_request_is_kept_sealed_with_the_key_of_the_one_lead_it_is_about_and_otherwise_not_kept(iso):
    import hashlib
    from domain.sealing import is_sealed
    from tests.integration.test_sealed_lead_events import opened
    address, other = f"raw-{uuid.uuid4().hex[:8]}@example.com", f"raw2-{uuid.uuid4().hex[:8]}@example.com"
    lid, pid = sent_via_sendgrid(iso, address)
    _, pid2 = sent_via_sendgrid(iso, other)
    one = sendgrid_event("delivered", pid, address)
    both = [sendgrid_event("open", pid, address), sendgrid_event("open", pid2, other)]
    nobody = sendgrid_event("delivered", "unknown-" + uuid.uuid4().hex, f"who-{uuid.uuid4().hex[:6]}@example.com")
    assert orjson.loads(emit(iso, "sendgrid", [one])["body"]) == {"accepted": 1, "unmatched": 0}
    assert orjson.loads(emit(iso, "sendgrid", both)["body"]) == {"accepted": 2, "unmatched": 0}
    assert orjson.loads(emit(iso, "sendgrid", [nobody])["body"]) == {"accepted": 0, "unmatched": 1}

    def three():
        got = [ev for ev in raw_webhooks(iso) if ev["provider"] == "sendgrid" and ev["status"] == 200]
        mine = [ev for ev in got if ev["lead_id"] == lid
                and one["sg_event_id"] in (opened(iso.settings, "webhook.received", ev)["body"] or "")]
        if len(mine) != 1:
            return None
        left_out = [ev for ev in got if ev["body_encoding"] == "not_kept" and ev["event_id"] > mine[0]["event_id"]]
        return len(left_out) >= 2 and (mine[0], left_out)
    kept, left_out = wait_for(three, 90, what="the three raw requests")
    assert address not in orjson.dumps(kept).decode() and is_sealed(kept["body"]) and kept["tenant"] == "hireflow"
    body = opened(iso.settings, "webhook.received", kept)["body"]  # the lead's key opens it, as it came
    assert one["sg_event_id"] in body and address in body and kept["body_encoding"] == "utf-8"
    assert hashlib.sha256(body.encode()).hexdigest() == kept["body_sha256"] and kept["body_bytes"] == len(body)
    assert opened(iso.settings, "webhook.received", {**kept, "lead_id": "someone-else"})["body"] is None
    for ev in left_out:  # several people in one request, and nobody we know: not kept at all
        assert ev["body"] == "" and ev["lead_id"] == "" and len(ev["body_sha256"]) == 64 and ev["body_bytes"] > 0
        text = orjson.dumps(ev).decode()
        assert address not in text and other not in text and nobody["email"] not in text
