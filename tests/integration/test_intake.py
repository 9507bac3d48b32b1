"""Validation, dedupe and suppression, end to end: HTTP or Kafka in, decisions out."""
from __future__ import annotations

import orjson

from projections.redis_leads import optout_key
from tests.integration.conftest import (auth, lead_id, read_dead_letters, read_model, records_holding, wait_decisions,
                                        wait_for)

CONSENT = {"at": "2026-11-20T09:00:00Z", "ip": "203.0.113.9", "text": "Yes, text me jobs."}


def submit(api, key, leads):
    r = api.post("/v1/leads/batch", json={"leads": leads}, headers=auth(key))
    assert r.status_code == 202, r.text
    return [x["event_id"] for x in r.json()["leads"]], [x["lead_id"] for x in r.json()["leads"]]


def email(uid, name, **over):
    return {"email": f"{name}.{uid}@example.com", "partner": "ziprecruiter", "list": "daily-jobs", **over}


def sms(phone, **over):
    return {"phone": phone, "partner": "indeed-xml", "list": "sms-alerts", "consent": CONSENT, **over}


def _unique_mobile(uid: str) -> str:
    n = int(uid[:6], 16) % 10000
    return f"+1 415 2{n // 1000 % 10}{n // 100 % 10} {n % 100:02d}{n % 10}1"


def test_each_rejection_reason(api, keys, uid, ch, settings, rds):
    rds.sadd(optout_key("jobsnearby"), f"optout.{uid}@example.com")
    cases = [
        (email(uid, "ok"), []),
        (email(uid, "bad", email=f"not-an-email-{uid}"), ["invalid_email"]),
        (email(uid, "disp", email=f"x{uid}@mailinator.com"), ["disposable_email"]),
        (email(uid, "blk", email=f"x{uid}@spamtrap.example"), ["blocklisted"]),
        (email(uid, "optout"), ["opted_out"]),
        (email(uid, "fr", location={"country": "FR", "city": "Paris"}), ["country_not_allowed"]),
        (sms(f"+1 415 {uid[:3].translate(str.maketrans('0123456789abcdef', '2345678923456789'))} 01"),
         ["invalid_phone"]),
        (sms(_unique_mobile(uid), consent=None), ["missing_sms_consent"]),
    ]
    causes, _ = submit(api, keys["jobsnearby"], [c for c, _ in cases])
    rows = wait_decisions(ch, settings.clickhouse_database, causes)
    for (lead, want), (etype, _, reasons, _) in zip(cases, rows):
        assert (etype, list(reasons)) == ("lead.accepted" if not want else "lead.rejected", want), lead


def test_landline_for_sms_is_not_mobile(api, keys, ch, settings):
    # Shiftly takes GB numbers; a London landline cannot receive SMS.
    lead = {"phone": "+44 20 7946 0018", "partner": "any", "list": "shifts-sms", "consent": CONSENT}
    causes, _ = submit(api, keys["shiftly"], [lead])
    [(etype, _, reasons, _)] = wait_decisions(ch, settings.clickhouse_database, causes)
    assert etype == "lead.rejected" and list(reasons) == ["not_mobile"]


def test_duplicates_across_lists_merge_into_one_lead(api, keys, uid, ch, settings):
    first, [lid] = submit(api, keys["jobsnearby"], [email(uid, "dup", attribution={"utm_source": "a"})])
    wait_decisions(ch, settings.clickhouse_database, first)
    again = email(uid, "dup", email=f"  DUP.{uid}@Example.com ", list="warehouse", partner="careerbuilder",
                  attribution={"utm_campaign": "b"})
    second, lids = submit(api, keys["jobsnearby"], [again, again])
    assert lids == [lid, lid]
    rows = wait_decisions(ch, settings.clickhouse_database, second)
    assert [(r[0], r[1]) for r in rows] == [("lead.resubmitted", "merged"),
                                            ("lead.resubmitted", "already_on_list")]
    doc = read_model(api, keys["jobsnearby"], lid, lambda d: d["submissions"] == 3)
    assert doc["lists"] == ["daily-jobs", "warehouse"]
    assert doc["partners"] == ["ziprecruiter", "careerbuilder"]
    assert doc["attribution"] == {"utm_source": "a", "utm_campaign": "b"}
    accepted = ch.execute(f"SELECT count() FROM {settings.clickhouse_database}.events FINAL "
                          f"WHERE lead_id = %(l)s AND event_type = 'lead.accepted'", {"l": lid})[0][0]
    assert accepted == 1


def test_duplicate_inside_one_batch_is_accepted_once(api, keys, uid, ch, settings):
    causes, lids = submit(api, keys["hireflow"], [
        {"email": f"Twin.{uid}@example.com", "partner": "p", "list": "nurses"},
        {"email": f"twin.{uid}@EXAMPLE.com", "partner": "p", "list": "tech-weekly"}])
    assert lids[0] == lids[1]
    rows = wait_decisions(ch, settings.clickhouse_database, causes)
    # HireFlow's policy is to ignore resubmissions: recorded, not merged.
    assert [(r[0], r[1]) for r in rows] == [("lead.accepted", ""), ("lead.resubmitted", "ignored")]
    doc = read_model(api, keys["hireflow"], lids[0], lambda d: d["submissions"] == 2)
    assert doc["lists"] == ["nurses"]


def test_an_unsubscribed_person_is_not_resubscribed_by_an_upload(api, keys, uid, ch, settings, rds):
    causes, [lid] = submit(api, keys["jobsnearby"], [email(uid, "leaver")])
    wait_decisions(ch, settings.clickhouse_database, causes)
    read_model(api, keys["jobsnearby"], lid)
    r = api.post(f"/v1/leads/{lid}/unsubscribe", json={"reason": "asked_by_phone"},
                 headers=auth(keys["jobsnearby"]))
    assert r.status_code == 202, r.text
    [(etype, *_)] = wait_decisions(ch, settings.clickhouse_database, [r.json()["event_id"]])
    assert etype == "lead.unsubscribed"
    assert rds.sismember(optout_key("jobsnearby"), f"leaver.{uid}@example.com")
    again, _ = submit(api, keys["jobsnearby"], [email(uid, "leaver", list="warehouse", partner="landing-page")])
    [(etype, outcome, *_)] = wait_decisions(ch, settings.clickhouse_database, again)
    assert (etype, outcome) == ("lead.resubmitted", "kept_unsubscribed")
    doc = read_model(api, keys["jobsnearby"], lid, lambda d: d["submissions"] == 2)
    assert doc["status"] == "unsubscribed" and doc["lists"] == ["daily-jobs"]
    assert doc["reasons"] == ["asked_by_phone"]


def test_unsubscribing_an_unknown_lead_is_404(api, keys):
    r = api.post("/v1/leads/ffffffffffffffffffffffff/unsubscribe", headers=auth(keys["jobsnearby"]))
    assert r.status_code == 404


def test_queue_path_json_on_kafka_becomes_a_decided_lead(producer, settings, ch, uid):
    body = {"tenant": "shiftly", "lead": {"email": f"queue.{uid}@example.com", "partner": "kafka-feed",
                                          "list": "shifts-email"}}
    producer.produce(f"{settings.topic_prefix}leads.intake.json", orjson.dumps(body), key=uid.encode())
    producer.flush(10)
    lid = lead_id("shiftly", "email", f"queue.{uid}@example.com")
    rows = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(ch.execute(
        f"SELECT event_type, source FROM {settings.clickhouse_database}.events FINAL "
        f"WHERE lead_id = %(l)s AND event_type LIKE 'lead.%%' ORDER BY event_type", {"l": lid})),
        what="2 events", timeout=60)
    assert rows == [("lead.accepted", "agent:intake"), ("lead.submitted", "queue")]
    # the partner's clear JSON is raw input: deleted once the intake_json group has read it
    wait_for(lambda: not records_holding(settings, f"{settings.topic_prefix}leads.intake.json",
                                         f"queue.{uid}@example.com".encode()), 90,
             what="the JSON forgotten once read")


def test_queue_path_unknown_list_is_rejected_with_its_reason(producer, settings, ch, uid):
    body = {"tenant": "shiftly", "lead": {"email": f"nolist.{uid}@example.com", "partner": "kafka-feed",
                                          "list": "no-such-list"}}
    producer.produce(f"{settings.topic_prefix}leads.intake.json", orjson.dumps(body), key=uid.encode())
    producer.flush(10)
    lid = lead_id("shiftly", "email", f"nolist.{uid}@example.com")
    rows = wait_for(lambda: ch.execute(
        f"SELECT reasons FROM {settings.clickhouse_database}.events FINAL "
        f"WHERE lead_id = %(l)s AND event_type = 'lead.rejected'", {"l": lid}), what="rejection")
    assert list(rows[0][0]) == ["unknown_list"]


def test_malformed_queue_messages_go_to_the_dead_letter_topic(producer, settings, uid):
    bad = {
        f"{uid}-json": b'{"tenant": "shiftly", "lead": ',
        f"{uid}-shape": orjson.dumps({"lead": {}}),
        f"{uid}-tenant": orjson.dumps({"tenant": "nobody", "lead": {"email": "a@b.co", "partner": "p", "list": "l"}}),
        f"{uid}-lead": orjson.dumps({"tenant": "shiftly", "lead": {"email": "a@b.co", "list": "shifts-email"}}),
    }
    for k, v in bad.items():
        producer.produce(f"{settings.topic_prefix}leads.intake.json", v, key=k.encode())
    producer.flush(10)
    expected = {"json": "not JSON", "shape": "expected an object", "tenant": "unknown tenant 'nobody'",
                "lead": "invalid lead: partner: Field required"}
    for k, v in bad.items():
        [m] = read_dead_letters(settings, "leads.intake.json", k.encode())
        headers = dict(m.headers())
        assert expected[k.split("-")[1]] in headers["dlq.reason"].decode()
        assert b"a@b.co" not in m.value()  # a partner's JSON keeps its shape, not its values
        assert m.value() == {"json": b"", "shape": v, "tenant": b'{"tenant":"nobody","lead":{"email":"[redacted]",'
                             b'"partner":"p","list":"l"}}', "lead": b'{"tenant":"shiftly","lead":{"email":'
                             b'"[redacted]","list":"shifts-email"}}'}[k.split("-")[1]]
        assert headers["dlq.topic"] == b"leads.intake.json" and headers["dlq.consumer"] == b"intake_json"
        assert int(headers["dlq.offset"]) >= 0


def test_undecodable_bytes_on_the_submitted_topic_are_dead_lettered(producer, settings, uid):
    key = f"garbage-{uid}".encode()
    producer.produce(f"{settings.topic_prefix}leads.submitted", b"\x00\x01 not avro", key=key)
    producer.flush(10)
    found = read_dead_letters(settings, "leads.submitted", key)
    # both consumers of the topic report it: the intake (which owns it) and the analytics
    consumers = {dict(m.headers())["dlq.consumer"] for m in found}
    if len(consumers) < 2:
        found += read_dead_letters(settings, "leads.submitted", key, timeout=10)
        consumers = {dict(m.headers())["dlq.consumer"] for m in found}
    assert consumers == {b"intake", b"analytics"}
    m = found[0]
    h = dict(m.headers())
    assert b"missing C3 01 marker" in h["dlq.reason"] and m.value() == b"\x00\x01 not avro"
    assert h["dlq.topic"] == b"leads.submitted" and h["dlq.partition"].isdigit()
