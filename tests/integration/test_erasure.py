"""Erasure on the live stack: a person's data key destroyed, every trace of them gone from Redis,
their ClickHouse rows counted under an anonymous id, the erasure recorded without their address,
and every intake path refusing them from then on; the audit finds nothing of them in Redis,
ClickHouse or any topic (their fields there are sealed with the destroyed key); only a brand
admin erases."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from types import SimpleNamespace

import orjson
import redis.asyncio as aioredis
from confluent_kafka import Consumer, TopicPartition

from domain.identity import derived_event_id
from projections.clickhouse import connect
from projections.redis_erasure import find_traces, matcher
from runtime.replay import read_topics
from runtime.replay_erasures import read_erasures
from schemas.codec import default_codec
from stack.isolated import IsolatedPlatform
from streams.settings import ROOT
from tests.api.people import ANALYST, BRAND_ADMIN, OTHER_BRAND_ADMIN, signed_in
from tests.integration.conftest import auth, drained, email_lead_id, read_model, records_holding, wait_for, watermarks
from tests.integration.test_api import _admin_key, lead

T = "jobsnearby"
CODEC = default_codec()
ROW_TABLES = ("events", "engagement", "send_events", "experiment_exposures")


def erase(client, **body):
    return client.post("/v1/subjects/erase", json=body)


def redis_traces(settings, lead: str, address: str) -> list[str]:
    async def go():
        c = aioredis.Redis.from_url(settings.redis_url)
        try:
            return [t.shown() for t in await find_traces(c, matcher({lead}, {address}))]
        finally:
            await c.aclose()
    return asyncio.run(go())


def rows_of(ch, settings, lead: str) -> dict[str, int]:
    db = settings.clickhouse_database
    return {t: ch.execute(f"SELECT count() FROM {db}.{t} WHERE lead_id = %(l)s", {"l": lead})[0][0]
            for t in ROW_TABLES}


def types_of(ch, settings, lead: str) -> dict[str, int]:
    return dict(ch.execute(f"SELECT event_type, uniqExact(event_id) FROM {settings.clickhouse_database}.events "
                           f"WHERE lead_id = %(l)s GROUP BY event_type", {"l": lead}))


def audit(who: str, *also: str) -> tuple[int, dict]:
    extra = [arg for text in also for arg in ("--also", text)]
    out = subprocess.run([sys.executable, "-m", "runtime.privacy", "audit", T, who, *extra], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    return out.returncode, json.loads(out.stdout.strip().splitlines()[-1])


def test_an_erased_person_is_gone_counted_anonymously_recorded_and_never_taken_again(api, keys, uid, ch, settings, rds):
    key, email = keys[T], f"ann.{uid}@example.com"
    wordings = (f"Jobs by email ({uid})", f"Jobs by email, again ({uid})")  # the person's own: searched by the audit
    lid = api.post("/v1/leads", json=lead(uid, consent={"at": "2026-01-05T10:00:00Z", "ip": "203.0.113.20",
                                                         "text": wordings[0]}), headers=auth(key)).json()["lead_id"]
    read_model(api, key, lid, lambda d: d["status"] == "accepted")
    assert api.post("/v1/consent", json={"lead_id": lid, "granted": True, "via": "preference_center",
                                         "text": wordings[1], "ip": "198.51.100.77"},
                    headers=auth(key)).status_code == 202
    assert api.post("/v1/events", json={"email": email, "name": "job_viewed", "properties": {"job": "J1"}},
                    headers=auth(key)).status_code == 202
    wanted = {"lead.submitted", "lead.accepted", "consent.given", "product.tracked", "send.requested"}
    before = wait_for(lambda: (got := types_of(ch, settings, lid)) and wanted <= set(got)
                      and {"send.dispatched", "send.skipped", "send.failed"} & set(got) and got,
                      120, what="the lead's events, and its welcome's outcome, in ClickHouse")
    assert rds.hexists(f"ls:dek:{T}", lid) and redis_traces(settings, lid, email)

    with signed_in(settings.api_url, BRAND_ADMIN) as admin:
        r = erase(admin, email=email.upper(), reason="the person's request of 2026-12-01 (ticket 4411)")
        assert r.status_code == 200, r.text
        doc = r.json()
        [gone] = doc["leads"]
        assert doc["erased_by"] == f"person:{BRAND_ADMIN}" and doc["reason"].endswith("(ticket 4411)")
        assert gone["lead_id"] == lid and gone["held"] and gone["data_key_destroyed"]
        assert gone["redis_traces_removed"] > 0 and gone["clickhouse_rows_anonymised"] >= sum(before.values())
        assert admin.post("/v1/subjects/export", json={"email": email}).status_code == 404  # nothing held
    assert api.get(f"/v1/leads/{lid}", headers=auth(key)).status_code == 404

    # Redis: no trace, no key; ClickHouse: every event still counted, under the anonymous id only
    assert redis_traces(settings, lid, email) == [] and not rds.hexists(f"ls:dek:{T}", lid)
    assert rows_of(ch, settings, lid) == dict.fromkeys(ROW_TABLES, 0)
    anon = gone["anonymous_id"]
    assert types_of(ch, settings, anon) == before
    db = settings.clickhouse_database
    assert ch.execute(f"SELECT count() FROM {db}.events WHERE position(payload, %(e)s) > 0", {"e": email})[0][0] == 0
    assert {p for (p,) in ch.execute(f"SELECT DISTINCT payload FROM {db}.events WHERE lead_id = %(a)s",
                                     {"a": anon})} == {'{"erased":true}'}

    # the record: who, when, why and the list's entry; never the address
    deps = SimpleNamespace(settings=settings, codec=CODEC, topic=lambda name: name)
    record = read_erasures(deps, read_topics)[T][lid]
    assert record["event_id"] == gone["event_id"] and record["anonymous_id"] == anon
    assert record["erased_by"] == f"person:{BRAND_ADMIN}" and f"ann.{uid}" not in orjson.dumps(record).decode()
    assert rds.sismember(f"ls:dnc:{T}", record["contact_hash"])

    # taken again by nobody: one lead, or a batch holding them (all refused, by position)
    r = api.post("/v1/leads", json=lead(uid), headers=auth(key))
    assert r.status_code == 422 and r.json()["error"] == "do_not_contact"
    r = api.post("/v1/leads/batch", json={"leads": [lead(f"{uid}x"), lead(uid)]}, headers=auth(key))
    assert r.status_code == 422 and [p["field"] for p in r.json()["problems"]] == ["leads.1"]

    # asked again: nothing is held any more, and it says so
    with signed_in(settings.api_url, BRAND_ADMIN) as admin:
        again = erase(admin, email=email, reason="asked twice").json()["leads"][0]
    assert not again["held"] and again["redis_traces_removed"] == 0 and again["clickhouse_rows_anonymised"] == 0

    # the audit: nothing in Redis, ClickHouse or any topic (every field of theirs that held the
    # address is sealed with the key the erasure destroyed): clean, exit 0; the lead id keying
    # their events in Kafka is counted as pseudonymous
    status, found = audit(email, *wordings)
    assert found["lead_id"] == lid and found["redis"] == 0 and found["clickhouse"] == []
    assert found["kafka_clear"] == {} and status == 0 and found["clean"], found
    assert found["kafka_lead_id_only"]["privacy.erasures"] == 2 and found["kafka_lead_id_only"]["leads.submitted"] >= 1
    status, found = audit(f"nobody.{uid}@example.com")
    assert status == 0 and found["clean"] and not found["kafka_clear"]


def test_only_a_brand_admin_of_the_tenant_erases_and_a_bad_request_is_refused_by_name(api, keys, uid, settings):
    email, reason = f"bea.{uid}@example.com", "the person's request"
    assert api.post("/v1/subjects/erase", json={"email": email, "reason": reason},
                    headers=auth(keys[T])).status_code == 403  # an ingest key
    with signed_in(settings.api_url, ANALYST) as analyst:
        assert erase(analyst, email=email, reason=reason).status_code == 403
    with signed_in(settings.api_url, OTHER_BRAND_ADMIN) as other:
        r = other.post("/v1/subjects/erase", json={"email": email, "reason": reason}, headers={"X-Tenant": T})
        assert r.status_code == 403
    with signed_in(settings.api_url, BRAND_ADMIN) as admin:
        assert "email, phone or both" in erase(admin, reason=reason).text
        for bad in ({"email": email}, {"email": email, "reason": "x"}, {"email": email, "reason": "r" * 501},
                    {"email": email, "reason": reason, "extra": 1}, {"email": "x", "reason": reason}):
            r = erase(admin, **bad)
            assert r.status_code == 422, (bad, r.text)
    r = api.post("/v1/subjects/erase", json={"email": email, "reason": reason},
                 headers={**auth(_admin_key()), "X-Tenant": T})
    assert r.status_code == 200 and not r.json()["leads"][0]["held"]  # on the list before ever coming


def _ends(settings, topic: str) -> dict[int, int]:
    return {p: hi for p, (_, hi) in watermarks(settings, topic).items()}


def _keys_since(settings, topic: str, starts: dict[int, int]) -> list[bytes]:
    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "test-erasure",
                  "enable.auto.commit": False})
    ends = _ends(settings, topic)
    c.assign([TopicPartition(topic, p, o) for p, o in starts.items() if ends[p] > o])
    left, out = sum(ends[p] - o for p, o in starts.items()), []
    try:
        while left > 0:
            for m in c.consume(500, timeout=2.0):
                if not m.error():
                    out.append(m.key())
                    left -= 1
    finally:
        c.close()
    return out


def test_the_queue_path_and_the_intake_refuse_an_erased_person_without_writing_their_address(
        api, keys, uid, ch, settings, producer):
    email, other = f"cal.{uid}@example.com", f"dan.{uid}@example.com"
    lid, other_id = email_lead_id(T, email), email_lead_id(T, other)
    r = api.post("/v1/subjects/erase", json={"email": email, "reason": "asked before ever coming"},
                 headers={**auth(_admin_key()), "X-Tenant": T})
    assert r.status_code == 200, r.text
    # the queue path: the erased person's JSON, then another's, one partition: once the other is
    # taken, the first was seen, and leads.submitted holds nothing of them
    starts = _ends(settings, "leads.submitted")
    for address in (email, other):
        producer.produce("leads.intake.json", orjson.dumps({"tenant": T, "lead": lead(uid, email=address)}),
                         key=f"erasure-{uid}".encode())
    producer.flush(10)
    read_model(api, keys[T], other_id, timeout=60)
    written = _keys_since(settings, "leads.submitted", starts)
    assert other_id.encode() in written and lid.encode() not in written
    # the partner's JSON naming them, clear, is raw input: deleted once read
    wait_for(lambda: not records_holding(settings, "leads.intake.json", email.encode()), 90,
             what="their JSON forgotten once read")

    # a submission already in the log (taken before the erasure, decided after): refused, recorded
    # without the address, and no read model made
    sub = json.loads((ROOT / "schemas/lead/examples/submitted.v1.json").read_text())
    sub.update(tenant=T, lead_id=lid, channel="email", address=email, email=email, partner="ziprecruiter",
               list="daily-jobs", event_id=derived_event_id(uid, "lead.submitted", 0))
    producer.produce("leads.submitted", CODEC.encode("lead.submitted", sub), key=lid.encode())
    producer.flush(10)
    db = settings.clickhouse_database
    [(payload,)] = wait_for(lambda: ch.execute(
        f"SELECT payload FROM {db}.events WHERE event_type = 'lead.rejected' AND causation_id = %(c)s",
        {"c": sub["event_id"]}), 60, what="the refusal in ClickHouse")
    refusal = json.loads(payload)
    assert refusal["reasons"] == ["do_not_contact"] and email not in payload
    assert refusal["erased"] and refusal["lead_id"] != lid and "address" not in refusal  # counted, not named
    assert api.get(f"/v1/leads/{lid}", headers=auth(keys[T])).status_code == 404


def _submission(email: str, n: int) -> dict:
    sub = json.loads((ROOT / "schemas/lead/examples/submitted.v1.json").read_text())
    sub.update(tenant=T, lead_id=email_lead_id(T, email), channel="email", address=email, email=email,
               partner="ziprecruiter", list="daily-jobs", event_id=derived_event_id(f"{email}/{n}", "lead.submitted", 0))
    return sub


def test_a_replay_brings_no_erased_person_back_and_keeps_their_rows_counted_anonymously():
    from runtime.deps import build
    from services.privacy.erasure import Eraser, Subject
    with IsolatedPlatform(redis_db=16, agents=("intake", "analytics")) as p:
        people = [f"p{i}.{p.tag}@example.com" for i in range(3)]
        ids = [email_lead_id(T, e) for e in people]
        p.produce("leads.submitted", [(lid.encode(), CODEC.encode("lead.submitted", _submission(e, 0)))
                                      for e, lid in zip(people, ids)])
        db, ch = p.settings.clickhouse_database, connect(p.settings.clickhouse_host, p.settings.clickhouse_port)
        accepted = lambda: ch.execute(f"SELECT count() FROM {db}.events WHERE event_type = 'lead.accepted'")[0][0]  # noqa: E731
        wait_for(lambda: accepted() == 3 and all(p.redis.exists(f"ls:lead:{T}:{lid}") for lid in ids), 90,
                 what="three leads accepted")

        async def erase_first():
            deps = build(p.settings)
            try:
                return await Eraser(deps).erase(T, [Subject("email", ids[0], people[0])], "test", "a replay test")
            finally:
                await deps.redis.aclose()
        [gone] = asyncio.run(erase_first())
        assert gone.held and gone.clickhouse_rows_anonymised >= 2
        counted = types_of(ch, p.settings, gone.anonymous_id)
        assert counted == {"lead.submitted": 1, "lead.accepted": 1}
        dnc = p.redis.smembers(f"ls:dnc:{T}")

        p.stop_workers()
        out = p.replay()
        assert "replay done" in out and "erased_left_out=1" in out, out
        assert not p.redis.exists(f"ls:lead:{T}:{ids[0]}")
        assert all(p.redis.exists(f"ls:lead:{T}:{lid}") for lid in ids[1:])
        assert p.redis.smembers(f"ls:dnc:{T}") == dnc
        assert redis_traces(p.settings, ids[0], people[0]) == []
        assert rows_of(ch, p.settings, ids[0]) == dict.fromkeys(ROW_TABLES, 0)
        assert types_of(ch, p.settings, gone.anonymous_id) == counted  # the same anonymous id, the same counts
        assert accepted() == 3  # the totals an analyst reads

        # after the replay the intake still refuses them (the list was rebuilt from the records)
        p.start_workers()
        again = _submission(people[0], 1)
        p.produce("leads.submitted", [(ids[0].encode(), CODEC.encode("lead.submitted", again))])
        wait_for(lambda: ch.execute(f"SELECT count() FROM {db}.events WHERE event_type = 'lead.rejected' "
                                    f"AND causation_id = %(c)s", {"c": again["event_id"]})[0][0], 120,
                 what="the refusal after the replay")
        assert not p.redis.exists(f"ls:lead:{T}:{ids[0]}")


def test_a_late_click_or_product_event_of_an_erased_person_writes_nothing_about_them(api, keys, uid, ch, settings, rds, producer):
    """A click on an old message (a tracking hit), after the erasure: left undecided, so no
    engagement event, no counter and no row names them again; the same click of someone else is."""
    import os
    import time

    from domain.identity import new_event_id
    key = keys[T]
    lids = [api.post("/v1/leads", json=lead(f"{uid}{n}"), headers=auth(key)).json()["lead_id"] for n in "ab"]
    for lid in lids:
        read_model(api, key, lid, lambda d: d["status"] == "accepted")
    with signed_in(settings.api_url, BRAND_ADMIN) as admin:
        assert erase(admin, email=f"ann.{uid}a@example.com", reason="asked on the phone").status_code == 200
    example = json.loads((ROOT / "schemas/engagement/examples/hit.v2.json").read_text())
    now = int(time.time() * 1000)
    for lid in lids:
        hit = {**example, "event_id": new_event_id(now, os.urandom(10)), "lead_id": lid, "occurred_at": now,
               "delivered_at": now - 3_600_000, "send_id": lid[:24]}
        producer.produce(settings.topic_prefix + "engagement.observed", default_codec().encode("engagement.hit", hit),
                         lid.encode())
    producer.flush(10)
    # a product event naming them (by id or address) is refused, whatever the unknown-person policy
    for who in ({"lead_id": lids[0]}, {"email": f"ann.{uid}a@example.com"}):
        r = api.post("/v1/events", json={**who, "name": "job_viewed"}, headers=auth(key))
        assert r.status_code == 422 and r.json()["error"] == "do_not_contact", r.text
    wait_for(lambda: types_of(ch, settings, lids[1]).get("engagement.clicked"), 90, what="the other person's click")
    wait_for(lambda: drained(settings, "engagement"), 60, what="the engagement agent to have handled both hits")
    wait_for(lambda: drained(settings, "analytics"), 60, what="the analytics agent to have written what came of them")
    assert "engagement.clicked" not in types_of(ch, settings, lids[0])
    assert not rds.exists(f"ls:eng:{T}:{lids[0]}") and rds.exists(f"ls:eng:{T}:{lids[1]}")


def test_events_of_an_erased_person_still_in_the_backlogs_plan_follow_and_name_nothing(api, keys, uid, ch, settings, rds, producer):
    """A lead event and a product event about a person, reaching the agents after their erasure
    (on the queue path, or left in a backlog): the planner is not stuck on their missing read
    model and schedules nothing; the trigger, digest, hygiene and CRM agents keep nothing; the
    analytics rows count them under the erasure's anonymous id, with nothing of the person in
    them. Another person's same product event is taken as ever."""
    import os
    import time

    from domain.identity import new_event_id
    key, emails = keys[T], [f"ann.{uid}{n}@example.com" for n in "ab"]
    lids = [api.post("/v1/leads", json=lead(f"{uid}{n}"), headers=auth(key)).json()["lead_id"] for n in "ab"]
    for lid in lids:
        read_model(api, key, lid, lambda d: d["status"] == "accepted")
    with signed_in(settings.api_url, BRAND_ADMIN) as admin:
        r = erase(admin, email=emails[0], reason="asked by letter")
        assert r.status_code == 200, r.text
    anon = r.json()["leads"][0]["anonymous_id"]

    now = int(time.time() * 1000)
    accepted = {**json.loads((ROOT / "schemas/lead/examples/accepted.v2.json").read_text()),
                "event_id": new_event_id(now, os.urandom(10)), "occurred_at": now, "tenant": T,
                "lead_id": lids[0], "address": emails[0], "list": "daily-jobs"}
    producer.produce(settings.topic_prefix + "leads.events", CODEC.encode("lead.accepted", accepted), lids[0].encode())
    late = [accepted["event_id"]]
    tracked = json.loads((ROOT / "schemas/product/examples/tracked.v1.json").read_text())
    for lid, email in zip(lids, emails):
        ev = {**tracked, "event_id": new_event_id(now, os.urandom(10)), "occurred_at": now, "received_at": now,
              "tenant": T, "lead_id": lid, "properties": json.dumps({"job_id": "J1", "note": email})}
        producer.produce(settings.topic_prefix + "product.events", CODEC.encode("product.tracked", ev), lid.encode())
        late += [ev["event_id"]] if lid == lids[0] else []
    producer.flush(10)

    wait_for(lambda: types_of(ch, settings, lids[1]).get("product.tracked"), 90, what="the other person's event")
    for agent in ("planner", "hygiene", "triggers", "activity", "crm", "analytics"):
        wait_for(lambda: drained(settings, agent), 120, what=f"the {agent} agent to have handled the events")
    assert redis_traces(settings, lids[0], emails[0]) == []
    assert rds.exists(f"ls:lead:{T}:{lids[1]}")
    assert rows_of(ch, settings, lids[0]) == dict.fromkeys(ROW_TABLES, 0)
    rows = dict(ch.execute(f"SELECT event_type, payload FROM {settings.clickhouse_database}.events "
                           f"WHERE lead_id = %(a)s AND event_id IN %(ids)s", {"a": anon, "ids": tuple(late)}))
    assert set(rows) == {"lead.accepted", "product.tracked"}
    for payload in rows.values():
        doc = json.loads(payload)
        assert doc["erased"] and doc["lead_id"] == anon and emails[0] not in payload
        assert not {"address", "first_name", "last_name", "properties", "interests", "attribution"} & set(doc)
    assert json.loads(rows["lead.accepted"])["location"] == {"state": "NY", "country": "US"}
    assert json.loads(rows["product.tracked"])["name"] == "job_viewed"


def test_a_row_stored_after_the_erasures_scrub_is_scrubbed_once_its_batch_is_written(
        api, keys, uid, ch, settings, producer):
    """The analytics agent looked at the erased list before an erasure and stored its rows after
    the erasure's scrub (or a try of it died after its insert, before its offsets were committed):
    the row under the person's own id is rewritten under their anonymous id when the batch that
    carries the event is written (the row is held already, so it is not written twice)."""
    import os
    import time
    from datetime import datetime, timezone

    from domain.identity import new_event_id
    from projections.clickhouse import EventsWriter
    from projections.event_rows import event_row
    key, email = keys[T], f"ann.{uid}l@example.com"
    lid = api.post("/v1/leads", json=lead(f"{uid}l"), headers=auth(key)).json()["lead_id"]
    read_model(api, key, lid, lambda d: d["status"] == "accepted")
    with signed_in(settings.api_url, BRAND_ADMIN) as admin:
        r = erase(admin, email=email, reason="asked by mail")
        assert r.status_code == 200, r.text
    anon = r.json()["leads"][0]["anonymous_id"]
    # what the analytics agent had in hand when the erasure came is written and scrubbed first
    wait_for(lambda: drained(settings, "analytics"), 60, what="the analytics agent to have written its backlog")
    wait_for(lambda: rows_of(ch, settings, lid) == dict.fromkeys(ROW_TABLES, 0), 120,
             what="no row under the person's own id after the erasure")

    now = int(time.time() * 1000)
    tracked = json.loads((ROOT / "schemas/product/examples/tracked.v1.json").read_text())
    ev = {**tracked, "event_id": new_event_id(now, os.urandom(10)), "occurred_at": now, "received_at": now,
          "tenant": T, "lead_id": lid, "properties": json.dumps({"note": email})}
    topic = settings.topic_prefix + "product.events"
    writer = EventsWriter(connect(settings.clickhouse_host, settings.clickhouse_port), settings.clickhouse_database)
    writer.submit(event_row("product.tracked", ev, topic, 0, 0,
                            datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)))
    writer.flush()  # the row as the race left it: under their id, with their address
    assert rows_of(ch, settings, lid)["events"] == 1
    producer.produce(topic, CODEC.encode("product.tracked", ev), lid.encode())  # its batch, written again
    producer.flush(10)
    wait_for(lambda: rows_of(ch, settings, lid) == dict.fromkeys(ROW_TABLES, 0), 120,
             what="no row under the person's own id")
    rows = ch.execute(f"SELECT lead_id, payload FROM {settings.clickhouse_database}.events "
                      f"WHERE event_id = %(e)s", {"e": ev["event_id"]})
    assert len(rows) == 1 and rows[0][0] == anon and email not in rows[0][1], rows
