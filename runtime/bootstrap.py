"""Prepares the services for the platform: topics, ClickHouse migrations, the blocklist, and
whether Redis holds the platform's state (ls:intact).

Idempotent; `./dev up` runs it before starting the API and the workers.
"""
from __future__ import annotations

import asyncio
import sys
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from domain.validation import suppression_entries
from streams.settings import Settings, get_settings
from projections.redis_keys import INTACT
from projections.redis_sends import LINK_SEQ
from streams.topics import LEAD_EVENTS, SEND_LINKS, all_topics
from runtime.deps import build


def create_topics(s: Settings) -> list[str]:
    """Create the catalogue's topics that do not exist yet; returns the ones created."""
    admin = AdminClient({"bootstrap.servers": s.kafka_bootstrap})
    existing = set(admin.list_topics(timeout=10).topics)
    new = [NewTopic(f"{s.topic_prefix}{t.name}", t.partitions or s.partitions, 1, config=t.config())
           for t in all_topics() if f"{s.topic_prefix}{t.name}" not in existing]
    if not new:
        return []
    for name, fut in admin.create_topics(new, operation_timeout=30).items():
        try:
            fut.result()
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    return [t.topic for t in new]


def ensure_forgetting(s: Settings) -> list[str]:
    """The catalogue's bounds on forgetting (TopicSpec.forget_within_ms) set on topics made before
    them, as incremental changes (the topic's other settings stay); returns the topics changed."""
    admin = AdminClient({"bootstrap.servers": s.kafka_bootstrap})
    existing = set(admin.list_topics(timeout=10).topics)
    specs = {f"{s.topic_prefix}{t.name}": t for t in all_topics()
             if t.forget_within_ms is not None and f"{s.topic_prefix}{t.name}" in existing}
    if not specs:
        return []
    described = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, n) for n in specs])
    changes = []
    for res, fut in described.items():
        now = {k: v.value for k, v in fut.result().items()}
        want = specs[res.name].forgetting()
        if any(now.get(k) != v for k, v in want.items()):
            changes.append(ConfigResource(ConfigResource.Type.TOPIC, res.name, incremental_configs=[
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in want.items()]))
    for _, fut in (admin.incremental_alter_configs(changes).items() if changes else ()):
        fut.result()
    return [c.name for c in changes]


def topics_hold_events(s: Settings, names: list[str], created: list[str], timeout_s: float = 60.0) -> bool:
    """Whether any of these topics holds a message. One this bootstrap created holds none (and
    may not have its partition leaders yet); the others are asked, for up to timeout_s while
    their leaders are elected."""
    topics = [f"{s.topic_prefix}{n}" for n in names if f"{s.topic_prefix}{n}" not in created]
    if not topics:
        return False
    c = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": "leadstream-bootstrap"})
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                return any(hi > lo for topic in topics
                           for p in c.list_topics(topic, timeout=10).topics[topic].partitions
                           for lo, hi in [c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)])
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
    finally:
        c.close()


async def mark_intact(deps, created: list[str]) -> str:
    """Say that Redis holds the platform's state, when it does: already marked; or in use from
    before the mark existed (the link counter is there); or nothing to lose yet (no lead or link
    in the topics). A Redis that lost its state (wiped, or its data gone) while the topics hold
    events is left unmarked: `./dev replay --redis` rebuilds it and marks it."""
    r = deps.redis
    if await r.exists(INTACT):
        return "holds the platform's state"
    if await r.exists(LINK_SEQ) or not topics_hold_events(deps.settings, [LEAD_EVENTS, SEND_LINKS], created):
        await r.set(INTACT, "bootstrap")
        return "holds the platform's state (marked)"
    return ("WARNING: Redis holds none of the platform's state but the topics hold events: run "
            "./dev replay --redis with the workers stopped (until then, tracked links not in the tracking "
            "front's cache answer 503)")


def warm_group_coordinator(s: Settings, timeout_s: float = 60.0) -> float:
    """Commit an offset for a throwaway group until Kafka takes it: on a broker that has just
    started this creates __consumer_offsets and elects its coordinators. The supervisor's
    first lag probes (AdminClient offset requests) crashed librdkafka (SIGSEGV in its main
    thread) when they raced that start-up; after this they find a ready coordinator.
    Returns the seconds it took."""
    import time

    from confluent_kafka import Consumer, KafkaException, TopicPartition
    topic = f"{s.topic_prefix}{all_topics()[0].name}"
    c = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": "leadstream-bootstrap",
                  "enable.auto.commit": False})
    started = time.monotonic()
    try:
        while True:
            try:
                c.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
                return time.monotonic() - started
            except KafkaException:
                if time.monotonic() - started > timeout_s:
                    raise
                time.sleep(0.5)
    finally:
        c.close()


async def seed_config(deps) -> str:
    """On a fresh stack (no configuration yet) import the tenant file; otherwise leave it."""
    from services.config_import import import_doc, read_tenant_file
    s = deps.settings
    if deps.config.snapshot():
        return f"{len(deps.config.snapshot())} entities already (version {deps.tenants.version})"
    doc = read_tenant_file(s.tenants_file, s.placeholders)
    result = await import_doc(deps.config_service, doc, str(s.tenants_file), actor="bootstrap")
    return f"imported {s.tenants_file.name}: {result.created} entities created"


def blocklist_entries(deps) -> list[str]:
    return suppression_entries(deps.tenants.blocklist)


def main() -> None:
    s = get_settings()
    deps = build(s)
    created = create_topics(s)
    print(f"topics: {len(created)} created" + (f" ({', '.join(created)})" if created else ""))
    if changed := ensure_forgetting(s):
        print(f"topics: forgetting bounded on {', '.join(changed)}")
    print(f"group coordinator ready after {warm_group_coordinator(s):.1f}s")
    from projections.clickhouse import migrate
    applied = migrate(deps.clickhouse(), s.clickhouse_database)
    print(f"clickhouse: {len(applied)} migrations applied {applied}")

    async def configure() -> None:
        print(f"configuration: {await seed_config(deps)}")
        entries = blocklist_entries(deps)
        await deps.leads.sync_blocklist(entries)
        print(f"redis: blocklist holds {len(entries)} entries")
        print(f"redis: {await mark_intact(deps, created)}")
    asyncio.run(configure())


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:
        sys.exit(f"bootstrap failed: {exc}")
