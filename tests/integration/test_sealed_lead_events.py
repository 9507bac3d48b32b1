"""Lead events sealed in the log, on the live stack: the record of a lead's acceptance on
leads.events holds neither their address nor their name in clear (bytes as Kafka keeps them,
and the ClickHouse row copied from it); the lead's data key opens both; the read model the
senders use holds them in clear; once the key is destroyed, nothing opens."""
from __future__ import annotations

import asyncio

from confluent_kafka import Consumer, TopicPartition

from domain.sealing import is_sealed
from runtime.deps import build
from schemas.codec import default_codec
from services.privacy.sealer import Sealer
from tests.api.people import BRAND_ADMIN, signed_in
from tests.integration.conftest import auth, read_model, wait_for

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
    r = api.post("/v1/leads", json={"email": email, "first_name": name, "last_name": "Quill", "partner": "indeed-xml",
                                    "list": "daily-jobs", "location": {"city": "Austin", "state": "TX", "country": "US"}},
                 headers=auth(keys[T]))
    assert r.status_code == 202, r.text
    lid = r.json()["lead_id"]
    doc = read_model(api, keys[T], lid, lambda d: d["status"] == "accepted")
    assert doc["first_name"] == name  # the read model the senders compose from: clear

    def row():
        rows = ch.execute(f"SELECT topic, partition, offset, payload FROM {settings.clickhouse_database}.events "
                          "WHERE lead_id = %(l)s AND event_type = 'lead.accepted'", {"l": lid})
        return rows[0] if rows else None
    topic, partition, offset, payload = wait_for(row, 90, what="the acceptance's row")
    raw = record_at(settings, topic, partition, offset)
    assert email.encode() not in raw and name.encode() not in raw and b"Quill" not in raw
    assert email not in payload and name not in payload  # ClickHouse holds what the log holds
    event_name, ev = default_codec().decode(raw)
    assert event_name == "lead.accepted" and ev["lead_id"] == lid
    assert all(is_sealed(ev[f]) for f in ("address", "first_name", "last_name"))
    assert ev["partner"] == "indeed-xml" and ev["list"] == "daily-jobs"  # what analysts count stays clear

    clear = opened(settings, event_name, ev)
    assert (clear["address"], clear["first_name"], clear["last_name"]) == (email, name, "Quill")
    with signed_in(settings.api_url, BRAND_ADMIN) as admin:  # erased: their data key destroyed
        r = admin.post("/v1/subjects/erase", json={"email": email, "reason": "the sealing test"})
        assert r.status_code == 200 and r.json()["leads"][0]["data_key_destroyed"], r.text
    gone = opened(settings, event_name, ev)
    assert (gone["address"], gone["first_name"], gone["last_name"]) == (None, None, None)
