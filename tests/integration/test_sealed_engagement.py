"""Where a person opened or clicked from, sealed in the log, on the live stack: a welcome is
delivered to the SMTP sink, its pixel and a link are fetched through the tracking front; the
hit on engagement.observed and the opened / clicked events on engagement.events (and their rows
in ClickHouse) hold the ip only sealed with the lead's data key, which opens it; the user agent
stays clear (the bot filter's evidence and the analysts' device breakdown)."""
from __future__ import annotations

import email
import email.policy
import re
import time

import httpx
from confluent_kafka import Consumer, TopicPartition

from domain.sealing import is_sealed
from schemas.codec import default_codec
from streams.topics import ENGAGEMENT_OBSERVED
from tests.integration.conftest import auth, wait_for
from tests.integration.test_sealed_lead_events import opened, record_at

T = "jobsnearby"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def _welcome(api, keys, ch, settings, uid: str) -> tuple[str, str]:
    r = api.post("/v1/leads", headers=auth(keys[T]),
                 json={"email": f"ip.{uid}@example.com", "first_name": "Ida", "list": "warehouse",
                       "partner": "ziprecruiter", "location": {"zip": "10001", "country": "US"}})
    assert r.status_code == 202, r.text
    lid = r.json()["lead_id"]

    def dispatched():
        rows = ch.execute(f"SELECT visitParamExtractString(payload, 'send_id') FROM {settings.clickhouse_database}.events "
                          "WHERE tenant = %(t)s AND lead_id = %(l)s AND event_type = 'send.dispatched'", {"t": T, "l": lid})
        return rows[0][0] if rows else None
    return lid, wait_for(dispatched, 120, 0.5, "the welcome dispatched")


def _observed_hits(settings, lid: str, since_ms: int, want: int) -> list[bytes]:
    """The records keyed by the lead on engagement.observed since since_ms."""
    topic = settings.topic_prefix + ENGAGEMENT_OBSERVED
    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "test-sealed-ip", "enable.auto.commit": False})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        starts = c.offsets_for_times([TopicPartition(topic, p, since_ms) for p in parts], timeout=10)
        c.assign([tp if tp.offset >= 0 else TopicPartition(topic, tp.partition, -1) for tp in starts])
        found, deadline = [], time.monotonic() + 60
        while len(found) < want and time.monotonic() < deadline:
            found += [m.value() for m in c.consume(500, timeout=0.5) if not m.error() and m.key() == lid.encode()]
        return found
    finally:
        c.close()


def test_the_ip_of_opens_and_clicks_is_sealed_from_the_front_to_clickhouse(api, keys, ch, settings, uid):
    since_ms = int(time.time() * 1000) - 1000
    lid, send_id = _welcome(api, keys, ch, settings, uid)
    path = settings.mail_dir / f"{send_id}@jobsnearby.example.eml"
    wait_for(path.exists, 30, 0.2, "the welcome at the SMTP sink")
    html = email.message_from_bytes(path.read_bytes(), policy=email.policy.default).get_body(("html",)).get_content()
    base = re.escape(settings.tracking_base_url)
    pixel = re.findall(base + r"/o/[0-9A-Za-z]+", html)[0]
    link = re.findall(base + r"/c/[0-9A-Za-z]+", html)[0]
    with httpx.Client(headers={"user-agent": UA}, follow_redirects=False) as c:
        assert c.get(pixel).status_code == 200 and c.get(link).status_code in (200, 302)

    db = settings.clickhouse_database

    def rows():
        got = ch.execute(f"SELECT event_type, topic, partition, offset, payload FROM {db}.events WHERE tenant = %(t)s "
                         "AND lead_id = %(l)s AND event_type IN ('engagement.opened', 'engagement.clicked')",
                         {"t": T, "l": lid})
        return got if {r[0] for r in got} == {"engagement.opened", "engagement.clicked"} else None
    decided = wait_for(rows, 90, 0.5, "the open and the click in ClickHouse")
    codec = default_codec()
    for kind, topic, partition, offset, payload in decided:
        raw = record_at(settings, topic, partition, offset)
        assert b"127.0.0.1" not in raw and "127.0.0.1" not in payload, kind  # the front saw the person at 127.0.0.1
        name, ev = codec.decode(raw)
        assert name == kind and is_sealed(ev["ip"]) and ev["user_agent"] == UA
        assert opened(settings, name, ev)["ip"] == "127.0.0.1"

    hits = [codec.decode(v) for v in _observed_hits(settings, lid, since_ms, 2)]
    assert sorted(ev["kind"] for _, ev in hits) == ["click", "open"]
    for name, ev in hits:
        assert name == "engagement.hit" and is_sealed(ev["ip"])
        assert opened(settings, name, ev)["ip"] == "127.0.0.1"
