"""The rebuilds' many-keys-a-call writes against real Redis (database 43): each does what the
per-key commands it replaces did, across chunk boundaries, with the asyncio and the plain client."""
from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from projections.redis_bulk import CHUNK, lists_where_absent, merge_sorted_sets, raise_counts, set_all, set_missing
from tests.redis_db import db_url, emptied

DB = 43


def _url() -> str:
    return db_url(DB)


@pytest.fixture
def r():
    yield from emptied(DB)


def _async(r):
    return aioredis.Redis.from_url(_url())


def run(coro):
    return asyncio.run(coro)


def test_set_missing_sets_only_absent_keys_with_their_lifetimes_across_chunks(r):
    r.set("k:1", "kept")
    items = [(f"k:{i}", f"v{i}", 60_000 + i) for i in range(CHUNK + 7)]
    assert run(set_missing(_async(r), items)) == CHUNK + 6
    assert r.get("k:1") == b"kept" and r.ttl("k:1") == -1
    assert r.get(f"k:{CHUNK + 6}") == f"v{CHUNK + 6}".encode()
    assert 59_000 < r.pttl("k:5") <= 60_005
    assert r.dbsize() == CHUNK + 7


def test_set_missing_with_the_plain_client_and_a_past_lifetime_keeps_the_key_a_moment(r):
    assert run(set_missing(r, [("a", b"x", 0), ("b", b"y", -5)])) == 2
    assert r.pttl("a") in (-2, 0, 1) and r.pttl("b") in (-2, 0, 1)  # one ms, gone: never forever


def test_set_all_replaces_and_leaves_no_lifetime(r):
    r.set("lead:1", "old", ex=100)
    assert run(set_all(_async(r), [("lead:1", b"new"), ("lead:2", b"two")])) == 2
    assert r.get("lead:1") == b"new" and r.ttl("lead:1") == -1 and r.get("lead:2") == b"two"


def test_raise_counts_only_raises(r):
    r.set("c:low", 1)
    r.set("c:high", 9, ex=500)
    n = run(raise_counts(_async(r), {"c:low": (3, 10_000), "c:high": (4, 10_000), "c:new": (2, 10_000)}))
    assert n == 2
    assert r.get("c:low") == b"3" and 0 < r.pttl("c:low") <= 10_000
    assert r.get("c:high") == b"9" and r.ttl("c:high") > 400
    assert r.get("c:new") == b"2"


def test_lists_where_absent_creates_missing_lists_and_names_the_held_ones(r):
    r.rpush("h:held", b"mine")
    lists = {f"h:{i}": ([f"e{i}a".encode(), f"e{i}b".encode()], 30_000) for i in range(CHUNK + 3)}
    lists["h:held"] = ([b"replayed"], 30_000)
    lists["h:empty"] = ([], 30_000)
    held = run(lists_where_absent(_async(r), lists))
    assert held == ["h:held"]
    assert r.lrange("h:held", 0, -1) == [b"mine"]
    assert r.lrange(f"h:{CHUNK + 2}", 0, -1) == [f"e{CHUNK + 2}a".encode(), f"e{CHUNK + 2}b".encode()]
    assert 0 < r.pttl("h:0") <= 30_000
    assert not r.exists("h:empty")


def test_a_list_longer_than_one_unpack_is_written_whole(r):
    entries = [str(i).encode() for i in range(4500)]
    assert run(lists_where_absent(_async(r), {"long": (entries, 1000)})) == []
    assert r.lrange("long", 0, -1) == entries


def test_merge_sorted_sets_adds_keeps_higher_scores_with_gt_and_the_longer_lifetime(r):
    r.zadd("z:held", {"job:a": 500, "job:b": 10})
    r.pexpire("z:held", 900_000)
    r.zadd("z:short", {"x": 1})
    r.pexpire("z:short", 1_000)
    sets = {"z:held": ({"job:a": 100, "job:b": 200, "job:c": 300}, 60_000),
            "z:short": ({"y": 2}, 60_000), "z:new": ({f"m{i}": i for i in range(2500)}, 60_000)}
    assert run(merge_sorted_sets(_async(r), sets, gt=True)) == 3
    assert dict(r.zrange("z:held", 0, -1, withscores=True)) == {b"job:a": 500, b"job:b": 200, b"job:c": 300}
    assert r.pttl("z:held") > 800_000
    assert 1_000 < r.pttl("z:short") <= 60_000
    assert r.zcard("z:new") == 2500 and r.zscore("z:new", "m2499") == 2499


def test_merge_sorted_sets_without_gt_takes_the_given_scores(r):
    r.zadd("z", {"a": 500})
    run(merge_sorted_sets(r, {"z": ({"a": 100}, 5_000)}))
    assert r.zscore("z", "a") == 100


def test_nothing_to_write_sends_nothing(r):
    assert run(set_missing(_async(r), [])) == 0
    assert run(lists_where_absent(_async(r), {})) == []
    assert run(merge_sorted_sets(_async(r), {})) == 0
    assert r.dbsize() == 0
