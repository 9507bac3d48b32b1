"""`./dev privacy audit`: every clear trace of one person left in Kafka, Redis and ClickHouse.

    python -m runtime.privacy audit TENANT EMAIL|PHONE|LEAD_ID|CONTACT_HASH [--also TEXT ...]

An address names the person's lead (its id is computed as the intake does); a lead id or a
do-not-contact entry (found in privacy.erasures) names a lead whose address the audit then does
not know, so it searches for the id alone (add --also for the address, a name...).

Searched, and failing the audit when found:
- every topic of the platform, each record's key and value, for the address and --also texts
  (the lead id itself keys every event about the person: it is pseudonymous, counted, not a fault);
- every Redis key, member, field and value for the lead id, the address and --also texts
  (the do-not-contact lists hold keyed hashes only, and the blocklist is configuration: skipped);
- every text column of every ClickHouse table, for the same.
Exit status 0 when nothing is found, 1 otherwise; the last line is one JSON object.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from confluent_kafka import Consumer

from domain.identity import identity_email, identity_phone
from projections.clickhouse_erasure import find_traces as clickhouse_traces
from projections.redis_erasure import find_traces as redis_traces, matcher
from runtime.replay import read_topics
from runtime.replay_erasures import read_erasures


@dataclass
class Findings:
    lead_id: str
    needles: list[str]
    topics_clear: dict[str, int] = field(default_factory=dict)  # topic -> records holding a clear trace
    topics_keyed: dict[str, int] = field(default_factory=dict)  # topic -> records keyed or naming the lead id
    redis: list[str] = field(default_factory=list)
    clickhouse: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.topics_clear or self.redis or self.clickhouse)


def subject_of(deps, tenant: str, who: str, also: list[str]) -> tuple[str, list[str]]:
    """(the lead id, the clear texts to search for) from an address, a lead id or a contact hash."""
    brand = deps.tenants.tenants[tenant]
    if "@" in who:
        address = identity_email(who)
        return deps.lead_ids.of(tenant, "email", address), [address, *also]
    if who.startswith("+") or who.replace(" ", "").isdigit():
        address = identity_phone(who, brand.validation.default_region)
        return deps.lead_ids.of(tenant, "sms", address), [address, *also]
    for lead, ev in read_erasures(deps, read_topics).get(tenant, {}).items():
        if who in (lead, ev["contact_hash"]):
            return lead, list(also)
    return who, list(also)  # a lead id never erased


def platform_topics(deps) -> list[str]:
    c = Consumer({"bootstrap.servers": deps.settings.kafka_bootstrap, "group.id": "leadstream-audit"})
    try:
        names = c.list_topics(timeout=10).topics
    finally:
        c.close()
    prefix = deps.settings.topic_prefix
    return sorted(t for t in names if not t.startswith("_") and t.startswith(prefix))


def search_topics(deps, found: Findings) -> None:
    clear = [n.encode() for n in found.needles if n]
    lead = found.lead_id.encode()
    for topic in platform_topics(deps):
        _, msgs = read_topics(deps, [topic], with_keys=True)
        for key, value in msgs:
            blob = (key or b"") + b"\x00" + (value or b"")
            if any(n in blob for n in clear):
                found.topics_clear[topic] = found.topics_clear.get(topic, 0) + 1
            elif lead in blob:
                found.topics_keyed[topic] = found.topics_keyed.get(topic, 0) + 1


async def audit(deps, tenant: str, who: str, also: list[str]) -> Findings:
    lead, needles = subject_of(deps, tenant, who, also)
    found = Findings(lead, needles)
    await asyncio.to_thread(search_topics, deps, found)
    traces = await redis_traces(deps.redis, matcher({lead}, set(needles)), thorough=True)
    found.redis = [t.shown() for t in traces]
    found.clickhouse = await deps.on_clickhouse(clickhouse_traces, deps.settings.clickhouse_database,
                                                [lead, *needles])
    return found


def report(found: Findings) -> list[str]:
    lines = [f"audit of lead {found.lead_id} (and {len(found.needles)} clear text(s))", "",
             f"  {'where':<12} {'what':<44} {'count':>7}  verdict"]
    for topic, n in sorted(found.topics_clear.items()):
        lines.append(f"  {'kafka':<12} {topic:<44} {n:>7}  CLEAR TRACE")
    for topic, n in sorted(found.topics_keyed.items()):
        lines.append(f"  {'kafka':<12} {topic:<44} {n:>7}  lead id only (pseudonymous)")
    for shown in found.redis:
        lines.append(f"  {'redis':<12} {shown[:44]:<44} {1:>7}  CLEAR TRACE")
    for table, column, n in found.clickhouse:
        lines.append(f"  {'clickhouse':<12} {f'{table}.{column}':<44} {n:>7}  CLEAR TRACE")
    lines.append("")
    lines.append("clean: nothing names this person" if found.clean else "NOT CLEAN: traces above")
    return lines
