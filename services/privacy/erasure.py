"""Erasure: a person gone from everything the platform can change, and kept out.

    eraser = Eraser(deps)                                         # runtime.deps.Deps
    done = await eraser.erase("acme", [Subject("email", lead_id, "ann@example.com")],
                              erased_by="person:dpo@acme.example", reason="ticket 4411")

For each of the person's leads, in this order (every step may run again: an erasure that
stopped half way is finished by asking again):
1. the erasure's record on privacy.erasures (who, when, why, the do-not-contact entry, the
   anonymous id; no address): durable before anything is removed, so a replay knows;
2. the do-not-contact entry (ls:dnc:{tenant}): from now on every intake path refuses them;
3. their data key destroyed (tombstoned on privacy.keys): every field sealed with it, in every
   topic and every copy of one, no longer opens;
3b. what we wrote on their CRM contact emptied (services/crm/sync_out.py clear_erased; the
   contact is the brand's: kept), before the Redis record naming it goes; a CRM that does not
   take it now is owed it (the crm agent retries) and the erasure goes on;
4. every trace in Redis removed (projections/redis_erasure.py: one pass over the keyspace);
5. their ClickHouse rows anonymised (projections/clickhouse_erasure.py): counted, not named;
6. the raw input read so far deleted (streams/forgetting.py: a partner's JSON on
   leads.intake.json, leads held clear on leads.held) without waiting for the agent's next
   round; what is not read yet is refused by the intake when it is (step 2).
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass

from domain.erasure import anonymous_id, contact_hash, erasure_event
from domain.identity import derived_event_id, new_event_id
from projections.clickhouse_erasure import scrub_leads
from projections.redis_erasure import find_traces, matcher, remove_traces
from services.crm.sync_out import clear_erased
from streams.forgetting import forget_once
from streams.topics import ERASURES

SOURCE = "api"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Subject:
    channel: str  # email | sms
    lead_id: str
    address: str  # as the intake keeps it (lower-cased email, E.164 phone)


@dataclass
class Erased:
    lead_id: str
    channel: str
    event_id: str
    anonymous_id: str
    held: bool  # the platform held something about them (a read model, a key, a trace)
    data_key_destroyed: bool
    redis_traces_removed: int
    clickhouse_rows_anonymised: int
    crm_contacts_cleared: int = 0
    crm_emptying_owed: bool = False  # the CRM did not take it now: the crm agent empties it later


class Eraser:
    def __init__(self, deps):
        self.deps = deps

    async def erase(self, tenant: str, subjects: list[Subject], erased_by: str, reason: str,
                    idempotency_key: str | None = None) -> list[Erased]:
        d = self.deps
        now_ms = int(time.time() * 1000)
        secret = d.settings.privacy_hash_secret
        records = []
        for s in subjects:
            eid = (derived_event_id(f"{tenant}/{idempotency_key}/{s.lead_id}", "privacy.subject_erased", 0)
                   if idempotency_key else new_event_id(now_ms, os.urandom(10)))
            records.append(erasure_event(eid, tenant, now_ms, s.lead_id, s.channel,
                                         contact_hash(secret, tenant, s.lead_id), anonymous_id(os.urandom(12)),
                                         erased_by, reason, SOURCE))
        topic = d.topic(ERASURES)
        await d.producer.send_many([(topic, r["lead_id"].encode(), d.codec.encode("privacy.subject_erased", r), None)
                                    for r in records], timeout=d.settings.produce_timeout_s)
        await d.do_not_contact().add(tenant, [r["contact_hash"] for r in records], [r["anonymous_id"] for r in records])
        destroyed = [await d.data_keys().destroy(tenant, s.lead_id) for s in subjects]
        crm_cleared = await clear_erased(d, d.tenants.tenants[tenant], [s.lead_id for s in subjects])
        traces = await find_traces(d.redis, matcher({s.lead_id for s in subjects}, {s.address for s in subjects}))
        await remove_traces(d.redis, traces)
        db = d.settings.clickhouse_database
        rows = {r["lead_id"]: await d.on_clickhouse(scrub_leads, db, tenant, {r["lead_id"]: r["anonymous_id"]})
                for r in records}
        await self._forget_read_input()
        out = []
        for s, r, gone in zip(subjects, records, destroyed):
            mine = [t for t in traces if s.lead_id in t.shown() or s.address in t.shown()]
            out.append(Erased(s.lead_id, s.channel, r["event_id"], r["anonymous_id"],
                              bool(gone or mine or rows.get(s.lead_id)), gone, len(mine), rows.get(s.lead_id, 0),
                              int(crm_cleared.get(s.lead_id) is True), crm_cleared.get(s.lead_id) is False))
        return out

    async def _forget_read_input(self) -> None:
        s = self.deps.settings
        try:
            await asyncio.to_thread(forget_once, s.kafka_bootstrap, s.topic_prefix, "intake_json")
        except Exception as exc:  # noqa: BLE001 - the intake_json agent forgets it within forget_interval_s
            log.warning("raw input not forgotten by the erasure (the agent will): %r", exc)

