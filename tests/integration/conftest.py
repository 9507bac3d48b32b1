"""Integration fixtures: the real stack that ./dev up started (Kafka, Redis, ClickHouse,
the API and the workers). Nothing here is mocked."""
from __future__ import annotations

import time
import uuid

import httpx
import pytest
import redis
from confluent_kafka import Consumer, Producer, TopicPartition

from domain.identity import LeadIds, identity_email
from projections.clickhouse import connect
from stack.services import build_services
from streams.settings import get_settings, load_tenants


@pytest.fixture(scope="session")
def settings():
    return get_settings()


@pytest.fixture(scope="session")
def book(settings):
    return load_tenants(settings.tenants_file)


@pytest.fixture(scope="session")
def keys(book):
    return book.demo_keys


@pytest.fixture(scope="session")
def api(settings):
    with httpx.Client(base_url=settings.api_url, timeout=30) as c:
        c.get("/healthz").raise_for_status()
        yield c


@pytest.fixture(scope="session")
def ch(settings):
    return connect(settings.clickhouse_host, settings.clickhouse_port)


@pytest.fixture(scope="session")
def rds(settings):
    return redis.Redis.from_url(settings.redis_url)


@pytest.fixture(scope="session")
def producer(settings):
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    yield p
    p.flush(10)


@pytest.fixture(scope="session")
def supervisor(settings):
    from scaling.client import SupervisorClient
    return SupervisorClient(settings.supervisor_port)


@pytest.fixture(scope="session")
def services(settings):
    return {s.name: s for s in build_services(settings)}


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:10]


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def wait_for(fn, timeout: float = 30.0, every: float = 0.2, what: str = "condition"):
    """Poll fn until it returns something truthy; fail with `what` after the timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


def read_model(api, key: str, lid: str, until=lambda doc: True, timeout: float = 30.0) -> dict:
    """GET the lead's read model once it exists and satisfies `until`. The read model is
    written just after the decision events are produced, so it may trail them by a moment."""
    def get():
        r = api.get(f"/v1/leads/{lid}", headers=auth(key))
        return r.json() if r.status_code == 200 and until(r.json()) else None
    return wait_for(get, timeout, 0.1, f"the read model of {lid}")


IDS = LeadIds(get_settings().lead_id_secret)  # the lead ids the running stack makes


def lead_id(tenant: str, channel: str, address: str) -> str:
    return IDS.of(tenant, channel, address)


def email_lead_id(tenant: str, email: str) -> str:
    return lead_id(tenant, "email", identity_email(email))


def decisions(ch, db: str, causes: list[str]) -> list[tuple]:
    """(event_type, outcome, reasons, causation_id) of the decisions caused by these events."""
    if not causes:
        return []
    return ch.execute(
        f"SELECT event_type, outcome, reasons, causation_id FROM {db}.events FINAL "
        f"WHERE causation_id IN %(ids)s AND event_type != 'lead.submitted'", {"ids": tuple(causes)})


def wait_decisions(ch, db: str, causes: list[str], timeout: float = 60.0) -> list[tuple]:
    """Wait until every cause has its decision in ClickHouse; returns them in cause order."""
    def ready():
        rows = decisions(ch, db, causes)
        return rows if len({r[3] for r in rows}) >= len(set(causes)) else None
    rows = wait_for(ready, timeout, 0.3, f"{len(causes)} decisions in ClickHouse")
    by_cause = {r[3]: r for r in rows}
    return [by_cause[c] for c in causes]


def read_dead_letters(settings, topic: str, match_key: bytes, timeout: float = 30.0) -> list:
    """The dead-letter messages of `topic` whose key is match_key."""
    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"t-{uuid.uuid4().hex}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    name = f"{settings.topic_prefix}{topic}.dlq"
    parts = c.list_topics(name, timeout=10).topics[name].partitions
    c.assign([TopicPartition(name, p, 0) for p in parts])
    found, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not found:
            for m in c.consume(1000, timeout=0.5):
                if not m.error() and m.key() == match_key:
                    found.append(m)
    finally:
        c.close()
    return found


def seed_config_topic(settings, prefix: str, tenants_file=None) -> None:
    """Create only the configuration topics under `prefix` and import a tenant file into them."""
    import asyncio

    from confluent_kafka.admin import AdminClient, NewTopic

    from services.config_import import import_doc, read_tenant_file
    from streams.topics import CONFIG, CONFIG_HISTORY, all_topics
    from runtime.deps import build
    s = settings.model_copy(update={"topic_prefix": prefix})
    specs = {t.name: t for t in all_topics()}
    admin = AdminClient({"bootstrap.servers": s.kafka_bootstrap})
    for fut in admin.create_topics([NewTopic(prefix + n, 1, 1, config=specs[n].config())
                                    for n in (CONFIG, CONFIG_HISTORY)]).values():
        fut.result()
    deps = build(s)
    doc = read_tenant_file(tenants_file or s.tenants_file, s.placeholders)
    asyncio.run(import_doc(deps.config_service, doc, "test", actor="test"))


def drop_topics(settings, prefix: str) -> None:
    from scaling.drill import delete_topics
    delete_topics(settings.kafka_bootstrap, prefix)


def drained(settings, agent: str) -> bool:
    """Whether the live agent's consumer group has handled every record on its topics now
    (committed offsets at the end offsets: the effects of each are written)."""
    from scaling.config import load_scaling
    from scaling.lag import LagProbe
    conf = load_scaling()[agent]
    topics = [f"{settings.topic_prefix}{t}" for t in conf.topics]
    return LagProbe(settings.kafka_bootstrap).measure(conf.group(settings.topic_prefix), topics).total == 0


def opened(settings, pairs: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """(name, event) read from a topic, with the personal fields the producer sealed opened by
    the leads' data keys in this platform's Redis (services/privacy/sealer.py)."""
    import asyncio

    from runtime.deps import build
    from services.privacy.sealer import Sealer

    async def go():
        deps = build(settings)
        try:
            return await Sealer(deps.data_keys()).open(pairs)
        finally:
            await deps.redis.aclose()
            deps.producer.close()
    return asyncio.run(go())


def records_holding(settings, topic: str, needle: bytes) -> list[bytes]:
    """Every record still on the topic holding `needle`."""
    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "test-records",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in parts}
        c.assign([TopicPartition(topic, p, lo) for p, (lo, hi) in ends.items() if hi > lo])
        left, out, idle = sum(hi - lo for lo, hi in ends.values()), [], 0
        while left > 0 and idle < 5:  # records deleted meanwhile are never read: stop after 10 s of nothing
            batch = c.consume(500, timeout=2.0)
            idle = 0 if batch else idle + 1
            for m in batch:
                left -= 1
                if not m.error() and needle in (m.value() or b""):
                    out.append(m.value())
        return out
    finally:
        c.close()


def watermarks(settings, topic: str) -> dict[int, tuple[int, int]]:
    """partition -> (log start, end) of a topic now."""
    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "test-watermarks"})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in parts}
    finally:
        c.close()
