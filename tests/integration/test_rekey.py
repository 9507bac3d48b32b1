"""The migration to keyed lead ids (runtime/rekey.py), on a private platform with a log written
under the old, unkeyed ids: leads taken by the real intake (one of them erased by the real
eraser), then the migration, the replay, and the platform running on under the new ids."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import orjson

from domain.identity import LeadIds, identity_email, legacy_lead_id, new_event_id
from domain.lead_input import LeadIn
from domain.sealing import field_aad, is_sealed, key_aad, open_sealed, parse_key_ring, unwrap
from domain.submission import build_submitted
from projections.clickhouse import connect
from runtime.deps import build
from runtime.rekey_io import Kafka
from schemas.codec import default_codec
from services.privacy.erasure import Eraser, Subject
from stack.isolated import IsolatedPlatform
from streams.settings import ROOT
from tests.integration.conftest import wait_for

T, LIST = "jobsnearby", "daily-jobs"
CODEC = default_codec()


class Unkeyed:
    """Lead ids as they were made before the migration."""

    @staticmethod
    def of(tenant: str, channel: str, address: str) -> str:
        return legacy_lead_id(tenant, channel, address)


def submitted(email: str, ids, first_name: str = "Ann") -> dict:
    now = int(time.time() * 1000)
    return build_submitted(LeadIn.model_validate({"email": email, "partner": "ziprecruiter", "list": LIST,
                                                  "first_name": first_name}),
                           _tenant(), new_event_id(now, os.urandom(10)), now, "test", ids=ids)


def submission(email: str, ids, first_name: str = "Ann") -> tuple[bytes, bytes]:
    sub = submitted(email, ids, first_name)
    return sub["lead_id"].encode(), CODEC.encode("lead.submitted", sub)  # clear: as written before sealing


_TENANTS = {}


def _tenant():
    if not _TENANTS:
        from streams.settings import get_settings, load_tenants
        _TENANTS.update(load_tenants(get_settings().tenants_file).tenants)
    return _TENANTS[T]


def rekey(p: IsolatedPlatform, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runtime.rekey", *args], env=p.env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def records(p: IsolatedPlatform, topic: str) -> list:
    return list(Kafka(p.settings.kafka_bootstrap).read(p.prefix + topic))


def decided(p: IsolatedPlatform, lid: str) -> dict | None:
    raw = p.redis.get(f"ls:lead:{T}:{lid}")
    return orjson.loads(raw) if raw else None


def test_a_log_under_unkeyed_ids_moves_to_keyed_ids_and_the_platform_goes_on(uid):
    people = {n: f"{n}.{uid}@example.com" for n in ("ann", "bob", "cat", "eve")}
    old = {n: legacy_lead_id(T, "email", identity_email(e)) for n, e in people.items()}
    with IsolatedPlatform(redis_db=21, agents=("intake", "analytics")) as p:
        ids = LeadIds(p.settings.lead_id_secret)
        new = {n: ids.of(T, "email", identity_email(e)) for n, e in people.items()}
        # cat came through the API after sealing existed: her submission sealed with her key
        [cat] = asyncio.run(build(p.settings).sealer().seal([("lead.submitted", submitted(people["cat"], Unkeyed, "Cat"))],
                                               int(time.time() * 1000)))
        assert is_sealed(cat["address"])
        p.produce("leads.submitted", [submission(people[n], Unkeyed) for n in ("ann", "bob")]
                  + [(cat["lead_id"].encode(), CODEC.encode("lead.submitted", cat))])
        for n in ("ann", "bob", "cat"):
            wait_for(lambda n=n: decided(p, old[n]), 90, what=f"{n} decided under the old id")
        done = asyncio.run(Eraser(build(p.settings)).erase(T, [Subject("email", old["cat"], people["cat"])], "person:test",
                                              "the test's erasure before the migration"))
        assert done[0].data_key_destroyed
        wait_for(lambda: p.lag("intake") == 0 and p.lag("analytics") == 0, 90, what="the agents drained")

        # a record the intake has not read yet: the migration refuses (it would be lost to the old id)
        p.stop_workers()
        p.produce("leads.submitted", [submission(people["eve"], Unkeyed, "Eve")])
        refused = rekey(p)
        assert refused.returncode == 2 and "leadstream-intake" in refused.stderr, refused.stderr
        assert p.redis.get(f"ls:lead:{T}:{old['ann']}")  # nothing was touched
        p.start_workers()
        wait_for(lambda: decided(p, old["eve"]) and p.lag("intake") == 0 and p.lag("analytics") == 0, 120,
                 what="eve decided, the agents drained")
        p.stop_workers()

        dry = rekey(p, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        plan = orjson.loads(dry.stdout.strip().splitlines()[-1])
        # ann, bob and eve read from their clear addresses; cat's address no longer opens
        assert (plan["leads_resolved"], plan["leads_unresolved"], plan["dry_run"]) == (3, 1, True)

        # a run stopped half way (one topic rewritten, the next copied only) goes on with the same ids
        halfway = rekey(p, "--stop-after", "leads.submitted")
        assert halfway.returncode == 3, halfway.stderr
        assert all(sub["lead_id"] != old["ann"] for _, sub in _events(p, "leads.submitted"))
        assert any(ev["lead_id"] == old["ann"] for _, ev in _events(p, "leads.events"))  # not yet
        assert rekey(p, "--stop-after", "leads.events:copied").returncode == 3
        out = rekey(p)
        assert out.returncode == 0, out.stderr
        summary = orjson.loads(out.stdout.strip().splitlines()[-1])
        assert summary["keys_made"] == 0  # the intake had made every lead's key
        _no_old_id_anywhere(p, old)
        _sealed_under_the_new_ids(p, people, new, ids.of_unread(T, old["cat"]))

        p.redis.flushdb()
        p.replay()
        for n in ("ann", "bob", "eve"):
            state = decided(p, new[n])
            assert state and state["status"] == "accepted", (n, state)
        assert decided(p, old["ann"]) is None and decided(p, new["cat"]) is None
        ch = connect(p.settings.clickhouse_host, p.settings.clickhouse_port)
        db = p.settings.clickhouse_database
        rows = dict(ch.execute(f"SELECT lead_id, count() FROM {db}.events GROUP BY lead_id"))
        assert not set(rows) & set(old.values())
        assert {new["ann"], new["bob"], new["eve"]} <= set(rows)
        assert any(k.startswith("erased-") for k in rows)  # cat's rows, under the erasure's anonymous id

        # the platform goes on under the new ids: ann again is the same lead; cat is refused (her
        # erasure is listed under her old id: the intake asks for that one too)
        p.start_workers()
        p.produce("leads.submitted", [submission(people["ann"], ids), submission(people["cat"], ids, "Cat")])
        wait_for(lambda: (decided(p, new["ann"]) or {}).get("submissions") == 2, 120,
                 what="ann's second submission merged into her lead")
        refusals = wait_for(lambda: [ev for _, ev in _events(p, "leads.events")
                                     if ev["lead_id"] == new["cat"] and "do_not_contact" in (ev.get("reasons") or [])],
                            120, what="cat refused as erased")
        assert refusals and decided(p, new["cat"]) is None
        p.stop_workers()

        again = rekey(p)
        assert again.returncode == 0 and orjson.loads(again.stdout.strip().splitlines()[-1])["already_complete"]


def _events(p: IsolatedPlatform, topic: str) -> list[tuple[str, dict]]:
    return [CODEC.decode(m.value()) for m in records(p, topic) if m.value()]


def _no_old_id_anywhere(p: IsolatedPlatform, old: dict[str, str]) -> None:
    """No record of any topic, key or value, holds an old id (cat's neither: it was derived again)."""
    admin = Kafka(p.settings.kafka_bootstrap).admin
    topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(p.prefix)]
    assert not [t for t in topics if t.endswith(".rekeying")]
    seen = 0
    for t in topics:
        found = records(p, t[len(p.prefix):])
        if t.endswith("privacy.migrations"):  # its id map is tombstoned: compaction forgets it within the hour
            latest = {m.key(): m for m in found}
            assert len(latest) < len(found) and [k for k, m in latest.items() if b"/id/" in k and m.value()] == []
            found = list(latest.values())
        for m in found:
            blob = (m.key() or b"") + (m.value() or b"")
            assert not [n for n, lid in old.items() if lid.encode() in blob], (t, m.key())
            seen += 1
    assert seen > 20


def _sealed_under_the_new_ids(p: IsolatedPlatform, people: dict, new: dict, cat: str) -> None:
    """The submissions written clear are sealed now, under the new id; the keys wrapped for it."""
    _, ring = parse_key_ring(p.settings.kek_ring)
    keys = {m.key().decode(): m.value() for m in records(p, "privacy.keys")}  # the latest of each
    wrapped = {k: CODEC.decode(v)[1]["wrapped"] for k, v in keys.items() if v}
    for n in ("ann", "bob", "eve"):
        dek = unwrap(ring, wrapped[f"{T}/{new[n]}"], key_aad(T, new[n]))
        subs = [ev for name, ev in _events(p, "leads.submitted") if ev["lead_id"] == new[n]]
        assert subs and all(is_sealed(ev["address"]) and is_sealed(ev["email"]) for ev in subs)
        assert open_sealed(dek, subs[0]["address"], field_aad(T, new[n], "lead.submitted.address")) == people[n]
    assert keys[f"{T}/{cat}"] is None and f"{T}/{new['cat']}" not in keys  # cat's key stays destroyed
    cats = [ev for _, ev in _events(p, "leads.submitted") + _events(p, "leads.events") if ev["lead_id"] == cat]
    assert cats and all(not ev.get("address") or is_sealed(ev["address"]) for ev in cats)
