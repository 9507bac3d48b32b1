"""Keyed lead ids for a log written before them: python -m runtime.rekey [--dry-run]

Lead ids used to be an unkeyed hash of the address: anyone could turn an address into its lead
id. Now they are keyed (domain/identity.LeadIds, LEADSTREAM_LEAD_ID_SECRET). This migration moves
every topic that names leads to the new ids; `./dev privacy rekey` runs it with the platform
stopped, then empties Redis and rebuilds Redis and ClickHouse from the topics (runtime.replay).

1. It refuses to start while a record waits in a spool or journal (it would come back under an
   old id), or while one of the platform's consumer groups has not read a topic to the end.
2. It reads the lead topics: each lead's address (opened with its data key) gives its new id; a
   lead whose address can no longer be read (erased) gets an id derived from its old one. A lead
   with personal fields written before sealing existed and no data key gets one (made durable on
   privacy.keys before anything is rewritten).
3. Each topic is copied, every record rewritten (domain/rekeying.py: key, lead ids, sealed fields
   sealed again under the new id, same timestamps and headers), into `T.rekeying`; then T is
   made again, refilled from the copy, and the copy dropped. privacy.keys gets each key wrapped
   for its new id; privacy.erasures one more record per erased lead: the do-not-contact entry of
   the new id (the old entry still refuses the address: the intake checks both).
4. Every consumer group that had read a rewritten topic is moved to its end.
Progress is kept on privacy.migrations (JSON): an interrupted run goes on where it stopped, and
a finished one is not run again (a run under another secret is refused).
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import sys
import time

import orjson
from confluent_kafka import KafkaException

from domain.erasure import contact_hash
from domain.identity import new_event_id
from domain.rekeying import MIGRATION, LeadKey, rekeyed_event, remapped_key
from domain.sealing import NONCE_BYTES, key_aad, parse_key_ring, unwrap, wrap
from runtime.deps import Deps, build
from runtime.rekey_io import Kafka, flushed
from runtime.rekey_plan import Plan, decoded, dek_of, is_destroyed, mint_keys, plan_ids
from scaling.config import load_scaling
from scaling.lag import LagProbe
from streams.forgetting import forget_once
from streams.settings import get_settings
from streams.topics import (CONFIG, CONFIG_HISTORY, DATA_KEYS, ERASURES, INTAKE_JSON, JOBS, LEADS_HELD, MIGRATIONS,
                           PRODUCT_INTAKE, all_topics, dlq)

# no lead id in them (configuration, jobs, partners' JSON), or read and deleted before (leads.held)
LEFT_ALONE = {CONFIG, CONFIG_HISTORY, JOBS, dlq(JOBS), INTAKE_JSON, dlq(INTAKE_JSON), PRODUCT_INTAKE, dlq(PRODUCT_INTAKE),
              LEADS_HELD, dlq(LEADS_HELD), MIGRATIONS}


class Refused(RuntimeError):
    """The migration cannot run now: why, and what to do."""


class Stopped(RuntimeError):
    """--stop-after: the run stopped where a crash would have (drills and tests)."""


def fingerprint(secret: str) -> str:
    return hmac.new(secret.encode(), b"leadstream lead-id secret fingerprint", hashlib.sha256).hexdigest()[:16]


def rewritten(prefix: str, kafka: Kafka) -> list[str]:
    """The topics the migration rewrites (every one naming leads), privacy.keys first."""
    names = [t.name for t in all_topics() if t.name not in LEFT_ALONE]
    names.sort(key=lambda n: n != DATA_KEYS)
    return [n for n in names if kafka.exists(prefix + n)]


# -- progress ---------------------------------------------------------------------------------

ID_RECORD = f"{MIGRATION}/id/"  # old lead id -> new, kept from the plan until the migration is complete


def read_progress(deps: Deps, kafka: Kafka) -> tuple[dict[str, dict], dict[str, str]]:
    """(each step's record, the id map a run stopped half way had planned)."""
    topic = deps.topic(MIGRATIONS)
    steps: dict[str, dict] = {}
    ids: dict[str, str] = {}
    slots: dict[str, tuple[str, str] | None] = {}
    if kafka.exists(topic):
        for m in kafka.read(topic):
            key = m.key().decode()
            if key.startswith(ID_RECORD):
                old, _, new = (m.value() or b"").decode().partition(" ")
                slots[key] = (old, new) if new else None
            elif key.startswith(MIGRATION):
                steps[key] = orjson.loads(m.value()) if m.value() else {}
    for pair in slots.values():
        if pair:
            ids[pair[0]] = pair[1]
    return steps, ids


def _id_slot(old: str) -> bytes:
    """An id record's key: a hash of the old id, so that its tombstone names no lead."""
    return (ID_RECORD + hashlib.blake2b(old.encode(), digest_size=10).hexdigest()).encode()


def record_ids(deps: Deps, kafka: Kafka, ids: dict[str, str], forget: bool = False) -> None:
    """The plan's id map made durable before anything is rewritten (a run that stops half way
    goes on with the very same ids); forgotten (tombstones) once the migration is complete, as
    the map would tie an address's unkeyed id to its keyed one."""
    p, topic = kafka.producer(), deps.topic(MIGRATIONS)
    for i, (old, new) in enumerate(ids.items()):
        p.produce(topic, None if forget else f"{old} {new}".encode(), _id_slot(old))
        if i % 10000 == 0:
            p.poll(0)
    flushed(p, "the migration's id map")


def record_progress(deps: Deps, kafka: Kafka, key: str, doc: dict) -> None:
    p = kafka.producer()
    p.produce(deps.topic(MIGRATIONS), orjson.dumps(doc), key.encode())
    flushed(p, "the migration's progress")


# -- preflight --------------------------------------------------------------------------------

def refuse_if_busy(deps: Deps, kafka: Kafka, topics: list[str]) -> dict[str, list[str]]:
    """The groups to move afterwards (group -> topics); Refused while anything is in flight."""
    spooled = [p for p in deps.settings.spool_dir.rglob("*.jsonl")] if deps.settings.spool_dir.exists() else []
    if spooled:
        raise Refused(f"{len(spooled)} spool or journal file(s) wait under {deps.settings.spool_dir} (e.g. "
                      f"{spooled[0].name}): start the platform until they are sent, stop it, run this again")
    full = {deps.topic(t) for t in topics}
    probe, prefix, behind = LagProbe(deps.settings.kafka_bootstrap), deps.settings.topic_prefix, []
    positions = kafka.group_positions(full)
    for agent in load_scaling().values():  # an agent that never ran has no position to keep
        its = [prefix + t for t in agent.topics if prefix + t in full]
        lag = probe.measure(agent.group(prefix), its).total if its and agent.group(prefix) in positions else 0
        if lag:  # a partition the group never committed counts from its start
            behind.append(f"{agent.group(prefix)}: {lag} record(s)")
    if behind:
        raise Refused("these consumer groups have not read everything (start the platform until their lag "
                      "is 0, stop it, run this again): " + "; ".join(behind))
    return {g: sorted(by_topic) for g, by_topic in positions.items()}


# -- one record rewritten ----------------------------------------------------------------------

class Rewriter:
    def __init__(self, deps: Deps, plan: Plan):
        self.deps, self.plan = deps, plan
        self.current, self.ring = parse_key_ring(deps.settings.kek_ring)
        self.deks: dict[tuple[str, str], LeadKey] = {}
        self.erasures: dict[tuple[str, str], dict] = {}  # the rewritten erasure records, by lead

    def key_of(self, tenant: str, lead: str) -> LeadKey:
        k = (tenant, lead)
        if k not in self.deks:
            dek = dek_of(self.plan, self.ring, k)
            self.deks[k] = LeadKey(dek, destroyed=dek is None and is_destroyed(self.plan, k))
        return self.deks[k]

    def record(self, topic: str, key: bytes | None, value: bytes | None) -> tuple[bytes | None, bytes | None]:
        new_key = remapped_key(key, self.plan.ids)
        if value is None:
            return new_key, None
        got = decoded(self.deps, value)
        if got is None:  # a dead letter, or bytes that never decoded: kept as they are
            return new_key, value
        name, ev = got
        if topic == DATA_KEYS:
            return new_key, self._rewrapped(ev)
        key_ = self.key_of(ev["tenant"], ev["lead_id"]) if ev.get("lead_id") else LeadKey(None)
        brand = self.deps.tenants.tenants.get(ev.get("tenant", ""))
        keep = frozenset(brand.triggering.clear_properties) if brand else frozenset()
        out = rekeyed_event(name, ev, self.plan.ids, key_, lambda: os.urandom(NONCE_BYTES), keep)
        return new_key, self.deps.codec.encode(name, out)

    def _rewrapped(self, ev: dict) -> bytes:
        tenant, old = ev["tenant"], ev["lead_id"]
        new = self.plan.ids.get(old, old)
        dek = unwrap(self.ring, ev["wrapped"], key_aad(tenant, old))
        w = wrap(self.current, self.ring[self.current], os.urandom(NONCE_BYTES), dek, key_aad(tenant, new))
        return self.deps.codec.encode("privacy.data_key", {**ev, "lead_id": new, "wrapped": w})

    def erasure_entries(self, secret: str) -> list[tuple[bytes, bytes]]:
        """One more erasure record per erased lead whose id changed: the entry of the new id."""
        out = []
        for ev in self.erasures.values():
            new = ev["lead_id"]
            entry = contact_hash(secret, ev["tenant"], new)
            if entry == ev["contact_hash"]:
                continue
            now = int(time.time() * 1000)
            extra = {**ev, "event_id": new_event_id(now, os.urandom(10)), "occurred_at": now,
                     "causation_id": ev["event_id"], "source": "migration:" + MIGRATION, "contact_hash": entry,
                     "reason": "lead ids keyed: the same erasure under the lead's new id"}
            out.append((new.encode(), self.deps.codec.encode("privacy.subject_erased", extra)))
        return out


# -- one topic ---------------------------------------------------------------------------------

def rewrite_topic(deps: Deps, kafka: Kafka, rw: Rewriter, topic: str, progress: dict, say,
                  stop_after: str | None = None) -> int:
    """The topic rewritten through its copy; how many records it holds."""
    full, copy, spec = deps.topic(topic), deps.topic(topic) + ".rekeying", _spec(topic)
    step = progress.get(f"{MIGRATION}/{topic}", {}).get("state")
    if step == "done":
        return kafka.count(full)
    if step != "copied":
        kafka.delete(copy)
        kafka.create(copy, spec, deps.settings.partitions)
        n = _copy(kafka, full, copy, lambda m: rw.record(topic, m.key(), m.value()), topic == ERASURES, rw)
        record_progress(deps, kafka, f"{MIGRATION}/{topic}", {"state": "copied", "records": n})
        say(f"  {topic}: {n:,} record(s) rewritten")
        if stop_after == f"{topic}:copied":
            raise Stopped(f"stopped after copying {topic}")
    n = kafka.count(copy)
    kafka.delete(full)
    kafka.create(full, spec, deps.settings.partitions)
    back = _refill(kafka, copy, full)
    if back != n:
        raise RuntimeError(f"{topic}: {back} record(s) put back of {n}; run again (it goes on from the copy)")
    record_progress(deps, kafka, f"{MIGRATION}/{topic}", {"state": "done", "records": n})
    if stop_after == topic:
        raise Stopped(f"stopped after {topic}, its copy left")
    kafka.delete(copy)
    return n


def _spec(topic: str):
    return next(t for t in all_topics() if t.name == topic)


def _copy(kafka: Kafka, src: str, dst: str, change, erasures: bool, rw: Rewriter) -> int:
    p, n = kafka.producer(), 0
    rw.erasures = {}
    for m in kafka.read(src):
        key, value = change(m)
        if erasures and value is not None and (ev := decoded(rw.deps, value)) is not None:
            rw.erasures.setdefault((ev[1]["tenant"], ev[1]["lead_id"]), ev[1])
        p.produce(dst, value, key, timestamp=m.timestamp()[1], headers=m.headers())
        n += 1
        if n % 10000 == 0:
            p.poll(0)
    if erasures:
        for key, value in rw.erasure_entries(rw.deps.settings.privacy_hash_secret):
            p.produce(dst, value, key)
            n += 1
    flushed(p, dst)
    return n


def _refill(kafka: Kafka, src: str, dst: str) -> int:
    """The copy's records back, each to the partition it was in (the order of every key kept)."""
    p, n = kafka.producer(), 0
    for m in kafka.read(src):
        p.produce(dst, m.value(), m.key(), partition=m.partition(), timestamp=m.timestamp()[1], headers=m.headers())
        n += 1
        if n % 10000 == 0:
            p.poll(0)
    flushed(p, dst)
    return n


# -- the whole migration -----------------------------------------------------------------------

def migrate(deps: Deps, dry_run: bool = False, say=print, stop_after: str | None = None) -> dict:
    kafka, ids = Kafka(deps.settings.kafka_bootstrap), deps.lead_ids
    if not kafka.exists(deps.topic(MIGRATIONS)):
        kafka.create(deps.topic(MIGRATIONS), _spec(MIGRATIONS), deps.settings.partitions)
    progress, saved = read_progress(deps, kafka)
    mark = progress.get(MIGRATION, {})
    if mark.get("state") == "complete":
        if mark.get("secret") != fingerprint(deps.settings.lead_id_secret):
            raise Refused("the log was migrated under another LEADSTREAM_LEAD_ID_SECRET: set that one back")
        return {"migration": MIGRATION, "already_complete": True, "at": mark.get("at")}
    topics = rewritten(deps.settings.topic_prefix, kafka)
    # leads held clear (leads.held) carry ids made under the old secret: read before, then forgotten
    groups = progress.get(f"{MIGRATION}/groups", {}).get("groups") or refuse_if_busy(
        deps, kafka, topics + [t for t in (LEADS_HELD,) if kafka.exists(deps.topic(t))])
    say(f"reading {len(topics)} topics for every lead id")
    plan = plan_ids(deps, kafka, topics, ids, saved)
    summary = {"migration": MIGRATION, "leads_resolved": plan.resolved, "leads_already_keyed": plan.already_keyed,
               "leads_unresolved": plan.unresolved, "keys_to_make": len(plan.need_key), "topics": len(topics),
               "groups_to_move": len(groups), "dry_run": dry_run}
    if dry_run:
        return summary
    if not saved:
        record_ids(deps, kafka, plan.ids)
    record_progress(deps, kafka, f"{MIGRATION}/groups", {"groups": groups})
    summary["keys_made"] = mint_keys(deps, kafka, plan)
    rw, records = Rewriter(deps, plan), 0
    for topic in topics:
        records += rewrite_topic(deps, kafka, rw, topic, progress, say, stop_after)
    for topic in topics:  # a copy left by a run stopped right after its topic was refilled
        kafka.delete(deps.topic(topic) + ".rekeying")
    summary["groups_not_moved"] = _move_groups(kafka, groups)
    forget_once(deps.settings.kafka_bootstrap, deps.settings.topic_prefix, "intake_json")
    record_ids(deps, kafka, plan.ids, forget=True)
    record_progress(deps, kafka, MIGRATION, {"state": "complete", "secret": fingerprint(deps.settings.lead_id_secret),
                                             "at": int(time.time() * 1000), **summary})
    return {**summary, "records": records}


def _move_groups(kafka: Kafka, groups: dict[str, list[str]]) -> list[str]:
    """Every group to the end of the topics it had read; the ones Kafka refused (a group with a
    live member: not the platform's, which is stopped), with why."""
    refused = []
    for group, its in groups.items():
        for topic in its:
            try:
                if kafka.exists(topic):
                    kafka.move_to_end(group, topic)
            except KafkaException as exc:
                refused.append(f"{group} on {topic}: {exc}")
    return refused


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m runtime.rekey", description=__doc__.split("\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="only count what would change")
    ap.add_argument("--stop-after", metavar="TOPIC[:copied]",
                    help="stop once TOPIC is rewritten (or only copied), as a crash would: drills and tests")
    args = ap.parse_args(argv)
    deps = build(get_settings())
    try:
        out = migrate(deps, args.dry_run, stop_after=args.stop_after)
    except Refused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    except Stopped as exc:
        print(f"stopped: {exc}; run again to go on", file=sys.stderr)
        return 3
    finally:
        deps.producer.close()
    print(orjson.dumps(out).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
