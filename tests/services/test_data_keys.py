"""Leads' data keys against real Kafka and Redis (database 53, a private privacy.keys topic):
created once however many processes ask at the same time, durable on the compacted topic before
use (a creator that died leaves a pending key the next reader makes durable), destroyed by a
tombstone, rewrapped by a KEK rotation while in use, and rebuilt from the topic after a wipe."""
from __future__ import annotations

import asyncio
import base64
import os
import uuid

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from domain.sealing import field_aad, key_aad, open_sealed, seal, unwrap, wrap, wrapped_by
from projections.redis_data_keys import DataKeyStore, dek_key
from projections.redis_keys import INTACT
from runtime.deps import build
from runtime.replay import read_topics
from services.privacy.keys import DataKeys, KeyDestroyed, KeysNotRestored
from streams.settings import get_settings
from streams.topics import DATA_KEYS, all_topics
from tests.redis_db import db_url, emptied

DB = 53
OLD, NEW = os.urandom(32), os.urandom(32)
RING_OLD = f"old:{base64.b64encode(OLD).decode()}"
RING_BOTH = f"new:{base64.b64encode(NEW).decode()},{RING_OLD}"
RING_NEW = f"new:{base64.b64encode(NEW).decode()}"


@pytest.fixture
def r():
    for client in emptied(DB):
        client.set(INTACT, "test")  # a platform's Redis holding its state (not wiped)
        yield client


@pytest.fixture
def prefix():
    s = get_settings()
    p = f"t-dek-{uuid.uuid4().hex[:8]}."
    spec = next(t for t in all_topics() if t.name == DATA_KEYS)
    admin = AdminClient({"bootstrap.servers": s.kafka_bootstrap})
    for fut in admin.create_topics([NewTopic(p + DATA_KEYS, 3, 1, config=spec.config())]).values():
        fut.result()
    yield p
    from scaling.drill import delete_topics
    delete_topics(s.kafka_bootstrap, p)


def deps_for(prefix: str, ring: str):
    return build(get_settings().model_copy(update={"topic_prefix": prefix, "redis_url": db_url(DB),
                                                   "kek_ring": ring}))


def run(prefix: str, ring: str, fn):
    async def go():
        deps = deps_for(prefix, ring)
        try:
            return await fn(deps.data_keys(), deps)
        finally:
            await deps.redis.aclose()
            deps.producer.close()
    return asyncio.run(go())


def topic_latest(prefix: str) -> dict[str, str | None]:
    deps = deps_for(prefix, RING_OLD)
    out = {}
    for key, value in read_topics(deps, [prefix + DATA_KEYS], with_keys=True)[1]:
        out[key.decode()] = None if value is None else deps.codec.decode(value)[1]["wrapped"]
    return out


LEADS = [f"L{i:04d}" for i in range(200)]


def test_many_processes_asking_at_once_get_one_key_per_lead_durable_on_the_topic(r, prefix):
    async def go(_, deps):
        others = [deps_for(prefix, RING_OLD).data_keys() for _ in range(3)]
        got = await asyncio.gather(*[k.keys_for("acme", LEADS[i::2] + LEADS, 1_000) for i, k in enumerate(others)])
        for k in others:
            k.producer.close()
        return got
    a, b, c = run(prefix, RING_OLD, go)
    assert a == b == c and len(a) == 200 and len(set(a.values())) == 200
    assert all(v.startswith(b"D|old.") for v in r.hgetall(dek_key("acme")).values())
    latest = topic_latest(prefix)
    # whatever the topic kept last for a lead unwraps to the key every process uses
    assert {k: unwrap({"old": OLD}, w, key_aad("acme", k.split("/")[1])) for k, w in latest.items()} == {
        f"acme/{lead}": key for lead, key in a.items()}


def test_a_pending_key_left_by_a_dead_creator_is_made_durable_by_the_next_reader(r, prefix):
    dead = wrap("old", OLD, os.urandom(12), os.urandom(32), key_aad("acme", "L1"))
    r.hset(dek_key("acme"), "L1", f"P|{dead}")  # claimed, never written to the topic
    got = run(prefix, RING_OLD, lambda keys, _: keys.keys_for("acme", ["L1"], 1_000))
    assert got["L1"] == unwrap({"old": OLD}, dead, key_aad("acme", "L1"))
    assert r.hget(dek_key("acme"), "L1") == f"D|{dead}".encode() and topic_latest(prefix) == {"acme/L1": dead}


def test_a_destroyed_key_is_tombstoned_gone_and_never_silently_replaced(r, prefix):
    async def go(keys, _):
        deks = await keys.keys_for("acme", ["L1", "L2"], 1_000)
        sealed = seal(deks["L1"], os.urandom(12), "ana@example.com", field_aad("acme", "L1", "address"))
        assert await keys.destroy("acme", "L1") is True
        with pytest.raises(KeyDestroyed):
            await keys.keys_for("acme", ["L1"], 2_000, create=False)
        again = await keys.keys_for("acme", ["L1"], 3_000)  # a new key, if one is asked for: not the old
        return sealed, deks, again
    sealed, deks, again = run(prefix, RING_OLD, go)
    assert again["L1"] != deks["L1"]
    with pytest.raises(ValueError):
        open_sealed(again["L1"], sealed, field_aad("acme", "L1", "address"))
    assert open_sealed(deks["L1"], sealed, field_aad("acme", "L1", "address")) == "ana@example.com"


def test_a_kek_rotation_rewraps_every_key_while_keys_are_in_use_and_the_old_kek_can_go(r, prefix):
    before = run(prefix, RING_OLD, lambda keys, _: keys.keys_for("acme", LEADS, 1_000))
    run(prefix, RING_OLD, lambda keys, _: keys.keys_for("beta", ["B1"], 1_000))

    async def rotate_while_used(keys, deps):
        user = deps_for(prefix, RING_BOTH).data_keys()
        rotation, used = await asyncio.gather(keys.rotate(2_000), user.keys_for("acme", LEADS + ["N1"], 2_000))
        user.producer.close()
        return rotation, used
    rotation, used = run(prefix, RING_BOTH, rotate_while_used)
    assert rotation.rewrapped + rotation.changed_meanwhile == 201 and rotation.rewrapped >= 200
    assert {k: used[k] for k in LEADS} == before
    after = run(prefix, RING_NEW, lambda keys, _: keys.keys_for("acme", LEADS, 3_000, create=False))
    assert after == before  # the old KEK gone from the ring, every key still opens
    assert all(wrapped_by(w) == "new" for w in topic_latest(prefix).values())


def test_the_keys_are_rebuilt_from_the_topic_after_a_wipe_without_the_erased(r, prefix):
    from runtime.replay_data_keys import rebuild_data_keys

    async def go(keys, deps):
        deks = await keys.keys_for("acme", LEADS[:50], 1_000)
        await keys.destroy("acme", "L0003")
        snapshot = await deps.redis.hgetall(dek_key("acme"))
        await deps.redis.flushdb()
        counts = await rebuild_data_keys(deps, read_topics, lambda *a: None)
        return deks, snapshot, await deps.redis.hgetall(dek_key("acme")), counts
    deks, snapshot, rebuilt, counts = run(prefix, RING_OLD, go)
    assert rebuilt == snapshot and b"L0003" not in rebuilt and len(rebuilt) == 49
    assert counts == {"data_keys": 49, "data_keys_erased": 1, "data_keys_undecodable": 0}


def test_dev_privacy_rotate_kek_rewraps_the_keys_and_says_how_many(r, prefix):
    import subprocess
    import sys

    import orjson
    run(prefix, RING_OLD, lambda keys, _: keys.keys_for("acme", LEADS[:30], 1_000))
    env = {**os.environ, "LEADSTREAM_TOPIC_PREFIX": prefix, "LEADSTREAM_REDIS_URL": db_url(DB),
           "LEADSTREAM_KEK_RING": RING_BOTH}
    out = subprocess.run([sys.executable, "-m", "runtime.privacy", "rotate-kek"], env=env, capture_output=True,
                         text=True, timeout=120, check=True)
    said = orjson.loads(out.stdout.strip().splitlines()[-1])
    assert (said["kek"], said["rewrapped"], said["already_current"]) == ("new", 30, 0)
    assert base64.b64encode(NEW).decode() not in out.stdout + out.stderr  # the KEK is never printed
    assert all(v.startswith(b"D|new.") for v in r.hgetall(dek_key("acme")).values())
    bad = subprocess.run([sys.executable, "-m", "runtime.privacy", "rotate"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "rotate-kek" in bad.stdout


def test_a_destroy_racing_another_process_that_makes_the_key_durable_still_leaves_no_key(r, prefix):
    w = wrap("old", OLD, os.urandom(12), os.urandom(32), key_aad("acme", "L1"))
    r.hset(dek_key("acme"), "L1", f"P|{w}")

    class RacedStore(DataKeyStore):
        """Between destroy's read and its first swap, another process marks the key durable."""
        raced = False

        async def swap(self, tenant, changes):
            if not self.raced:
                self.raced = True
                await self.r.hset(dek_key(tenant), "L1", f"D|{w}")
            return await super().swap(tenant, changes)

    async def go(keys, deps):
        keys.store = RacedStore(deps.redis)
        return await keys.destroy("acme", "L1")
    assert run(prefix, RING_OLD, go) is True
    assert r.hget(dek_key("acme"), "L1") is None and topic_latest(prefix) == {"acme/L1": None}


def test_a_wiped_redis_makes_no_key_until_the_replay_restored_them(r, prefix):
    """After a wipe a lead's key may be on the topic only: a new one would replace it there and
    leave every field sealed with it unreadable, and reading it as missing would take the lead
    for erased (the intake dead-lettered submissions sealed before a wipe: the chaos drill's 40
    leads never decided). Keys are made and found again once Redis is intact."""
    from runtime.replay_data_keys import rebuild_data_keys

    async def go(keys, deps):
        first = await keys.keys_for("acme", ["L1"], 1_000)
        await deps.redis.flushdb()  # the wipe: the key and ls:intact gone
        try:
            await keys.keys_for("acme", ["L1", "L2"], 2_000)
            refused = None
        except KeysNotRestored as exc:
            refused = str(exc)
        with pytest.raises(KeysNotRestored):  # not read as erased: the events sealed with it wait
            await keys.existing("acme", ["L1"])
        await rebuild_data_keys(deps, read_topics, lambda *a: None)
        await deps.redis.set(INTACT, "replay")  # what the replay does once everything is rebuilt
        return first, refused, await keys.keys_for("acme", ["L1", "L2"], 3_000)
    first, refused, after = run(prefix, RING_OLD, go)
    assert refused and "not rebuilt yet" in refused
    assert after["L1"] == first["L1"] and len(after["L2"]) == 32  # the very key from the topic; L2 made now
    assert run(prefix, RING_OLD, lambda keys, _: keys.existing("acme", ["L1", "L9"])) == {"L1": first["L1"]}
    assert set(topic_latest(prefix)) == {"acme/L1", "acme/L2"}


def test_a_wipe_between_the_topic_write_and_the_durable_mark_keeps_the_key(r, prefix):
    """The wipe lands after a new key is on the topic and before Redis marks it durable: the key
    is not destroyed (no tombstone), the caller seals with it, and the replay restores it (the
    chaos drill: 40 submissions sealed with a key tombstoned a moment later, dead-lettered)."""
    from runtime.replay_data_keys import rebuild_data_keys

    class WipedStore(DataKeyStore):
        """Redis wiped (FLUSHDB: the key and ls:intact) just before the pending -> durable swap."""
        wiped = False

        async def swap(self, tenant, changes):
            if not self.wiped and any(new.startswith("D|") for _, _, new in changes):
                self.wiped = True
                await self.r.flushdb()
            return await super().swap(tenant, changes)

    async def go(keys, deps):
        keys.store = WipedStore(deps.redis)
        got = await keys.keys_for("acme", ["L1"], 1_000)
        await rebuild_data_keys(deps, read_topics, lambda *a: None)
        await deps.redis.set(INTACT, "replay")
        return got, await keys.existing("acme", ["L1"])
    got, after = run(prefix, RING_OLD, go)
    latest = topic_latest(prefix)
    assert latest["acme/L1"] is not None and unwrap({"old": OLD}, latest["acme/L1"], key_aad("acme", "L1")) == got["L1"]
    assert after == got
