"""Prepares the services for the platform: topics, ClickHouse migrations, the blocklist.

Idempotent; `./dev up` runs it before starting the API and the workers.
"""
from __future__ import annotations

import asyncio
import sys

from confluent_kafka.admin import AdminClient, NewTopic

from domain.identity import identity_phone
from streams.settings import Settings, get_settings
from streams.topics import all_topics
from streams.wiring import build


def create_topics(s: Settings) -> list[str]:
    """Create the catalogue's topics that do not exist yet; returns the ones created."""
    admin = AdminClient({"bootstrap.servers": s.kafka_bootstrap})
    existing = set(admin.list_topics(timeout=10).topics)
    new = [NewTopic(f"{s.topic_prefix}{t.name}", s.partitions, 1, config=t.config())
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


def blocklist_entries(deps) -> list[str]:
    b = deps.tenants.blocklist
    return ([e.strip().lower() for e in b.emails] + ["@" + d.strip().lower() for d in b.domains]
            + [identity_phone(p, "US") for p in b.phones])


def main() -> None:
    s = get_settings()
    deps = build(s)
    created = create_topics(s)
    print(f"topics: {len(created)} created" + (f" ({', '.join(created)})" if created else ""))
    from projections.clickhouse import migrate
    applied = migrate(deps.clickhouse(), s.clickhouse_database)
    print(f"clickhouse: {len(applied)} migrations applied {applied}")
    entries = blocklist_entries(deps)
    asyncio.run(deps.leads.sync_blocklist(entries))
    print(f"redis: blocklist holds {len(entries)} entries")


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:
        sys.exit(f"bootstrap failed: {exc}")
