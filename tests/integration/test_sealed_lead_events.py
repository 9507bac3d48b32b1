"""Lead events sealed in the log, on the live stack: the records of a lead's submission (on
leads.submitted, sealed by the API) and acceptance (on leads.events, by the intake) hold neither
their address, their name nor the ip and wording of the consent they came with in clear, as Kafka keeps them or as ClickHouse copied them; the
lead's data key opens both; the read model the senders use holds them in clear; once the person
is erased (their key destroyed), nothing opens. With Redis away the API still takes leads, clear
and counted."""
from __future__ import annotations

import asyncio
import os
import time

from confluent_kafka import Consumer, TopicPartition

from domain.identity import new_event_id
from domain.sealing import is_sealed
from runtime.deps import build
from schemas.codec import default_codec
from services.privacy.sealer import Sealer
from tests.api.people import BRAND_ADMIN, signed_in
from tests.integration.conftest import auth, read_model, records_holding, wait_for, watermarks

T = "jobsnearby"


def record_at(settings, topic: str, partition: int, offset: int) -> bytes:
    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "test-sealed", "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, partition, offset)])
        msg = wait_for(lambda: (m := c.poll(1.0)) is not None and not m.error() and m, 30, what="the record")
        return msg.value()
    finally:
        c.close()


def opened(settings, name: str, ev: dict) -> dict:
    async def go():
        deps = build(settings)
        try:
            [(_, out)] = await Sealer(deps.data_keys()).open([(name, ev)])
            return out
        finally:
            await deps.redis.aclose()
            deps.producer.close()
    return asyncio.run(go())


def test_an_accepted_lead_is_sealed_on_leads_events_and_opens_only_with_its_key(api, keys, uid, ch, settings):
    email, name = f"zed.{uid}@example.com", f"Zebulon{uid[:6]}"
    ip, wording = "198.51.100.201", f"Send me jobs, {uid}"
    r = api.post("/v1/leads", json={"email": email, "first_name": name, "last_name": "Quill", "partner": "indeed-xml",
                                    "list": "daily-jobs", "location": {"city": "Austin", "state": "TX", "country": "US"},
                                    "consent": {"at": "2026-12-01T09:30:00Z", "ip": ip, "text": wording}},
                 headers=auth(keys[T]))
    assert r.status_code == 202, r.text
    lid = r.json()["lead_id"]
    doc = read_model(api, keys[T], lid, lambda d: d["status"] == "accepted")
    assert doc["first_name"] == name  # the read model the senders compose from: clear

    def record(kind: str) -> tuple[bytes, str]:
        def row():
            rows = ch.execute(f"SELECT topic, partition, offset, payload FROM {settings.clickhouse_database}.events "
                              "WHERE lead_id = %(l)s AND event_type = %(k)s", {"l": lid, "k": kind})
            return rows[0] if rows else None
        topic, partition, offset, payload = wait_for(row, 90, what=f"the {kind} row")
        return record_at(settings, topic, partition, offset), payload

    for kind, fields in (("lead.submitted", ("address", "email", "first_name", "last_name")),
                         ("lead.accepted", ("address", "first_name", "last_name"))):
        raw, payload = record(kind)
        for secret in (email, name, "Quill", ip, wording):
            assert secret.encode() not in raw, (kind, secret)
            assert secret not in payload, (kind, secret)  # ClickHouse holds what the log holds
        event_name, ev = default_codec().decode(raw)
        assert event_name == kind and ev["lead_id"] == lid
        assert all(is_sealed(ev[f]) for f in fields) and ev.get("phone") is None
        assert is_sealed(ev["consent"]["ip"]) and is_sealed(ev["consent"]["text"]) and ev["consent"]["at"]
        assert ev["partner"] == "indeed-xml" and ev["list"] == "daily-jobs"  # what analysts count stays clear
        clear = opened(settings, event_name, ev)
        assert (clear["address"], clear["first_name"], clear["last_name"]) == (email, name, "Quill")
        assert (clear["consent"]["ip"], clear["consent"]["text"]) == (ip, wording)
    with signed_in(settings.api_url, BRAND_ADMIN) as admin:  # erased: their data key destroyed
        r = admin.post("/v1/subjects/erase", json={"email": email, "reason": "the sealing test"})
        assert r.status_code == 200 and r.json()["leads"][0]["data_key_destroyed"], r.text
    gone = opened(settings, event_name, ev)
    assert (gone["address"], gone["first_name"], gone["last_name"]) == (None, None, None)
    assert (gone["consent"]["ip"], gone["consent"]["text"]) == (None, None)


def test_with_redis_away_the_api_holds_leads_clear_until_the_queue_agent_seals_them_then_forgets_them(
        api, keys, uid, ch, settings):
    """Taking leads needs Kafka only: no data key can be made without Redis, so the API holds the
    submission clear on leads.held (counted); the intake_json agent, whose Redis answers, seals it
    onto leads.submitted as it was made (same event id), the lead is decided, and the clear
    record on leads.held is deleted once read."""
    from api.ingress import _produce, _sealed
    from domain.lead_input import LeadIn
    from domain.submission import build_submitted
    from streams import metrics
    from streams.topics import LEADS_HELD
    deps = build(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))  # nothing listens there
    tenant, email, now_ms = deps.tenants.tenants[T], f"away.{uid}@example.com", int(time.time() * 1000)
    sub = build_submitted(LeadIn.model_validate({"email": email, "first_name": "Awayna", "partner": "indeed-xml",
                                                 "list": "daily-jobs"}), tenant, new_event_id(now_ms, os.urandom(10)),
                          now_ms, "api", ids=deps.lead_ids)
    before = metrics.LEADS_HELD.labels(T)._value.get()
    held_topic = settings.topic_prefix + LEADS_HELD
    start = {p: lo for p, (lo, _) in watermarks(settings, held_topic).items()}

    async def go():
        try:
            subs, topic = await _sealed(deps, [sub], True)
            await _produce(deps, subs, topic=topic)
            return subs, topic
        finally:
            await deps.redis.aclose()
            deps.producer.close()
    subs, topic = asyncio.run(go())
    assert topic == LEADS_HELD and subs == [sub] and not is_sealed(sub["address"])
    assert metrics.LEADS_HELD.labels(T)._value.get() == before + 1
    doc = read_model(api, keys[T], sub["lead_id"], lambda d: d["status"] == "accepted", timeout=60)
    assert doc["first_name"] == "Awayna"

    [(topic_, partition, offset, source)] = wait_for(lambda: ch.execute(
        f"SELECT topic, partition, offset, source FROM {settings.clickhouse_database}.events FINAL "
        f"WHERE event_id = %(e)s", {"e": sub["event_id"]}), 60, what="the submission in ClickHouse")
    assert topic_.endswith("leads.submitted") and source == "api"  # as the API made it
    name, ev = default_codec().decode(record_at(settings, topic_, partition, offset))
    assert name == "lead.submitted" and is_sealed(ev["address"]) and is_sealed(ev["first_name"])
    assert email.encode() not in record_at(settings, topic_, partition, offset)
    assert opened(settings, name, ev)["address"] == email
    # the clear copy on leads.held: deleted once the agent's group committed past it
    wait_for(lambda: sum((lo for lo, _ in watermarks(settings, held_topic).values())) > sum(start.values()), 90,
             what="leads.held forgotten once read")
    assert not records_holding(settings, held_topic, email.encode())

