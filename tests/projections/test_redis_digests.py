"""The digest store against real Redis (database 46): buckets keep each hour's best, memberships
follow joins, leaves and sightings, a run's snapshot is taken once, a chunk settles once."""
from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from domain.digests import DAY_MS, HOUR_MS, MAX_TOP_K, Item
from projections.redis_digests import DigestStore, item_key, top_key
from tests.redis_db import db_url, emptied

DB = 46
T = "acme"
H0 = 490_000  # an hour number (2025-11)


def _url() -> str:
    return db_url(DB)


@pytest.fixture
def r():
    yield from emptied(DB)


def run(coro_fn):
    async def go():
        client = aioredis.Redis.from_url(_url())
        try:
            return await coro_fn(DigestStore(client))
        finally:
            await client.aclose()
    return asyncio.run(go())


def item(n: int, score: float, group: str = "g1", hour: int = H0, author: str = "") -> Item:
    return Item(f"i{n:05d}", group, score, hour * HOUR_MS + n, f"Title {n}", f"https://x.test/{n}", author)


def test_a_bucket_keeps_the_hours_best_and_only_their_items_have_a_body_with_a_lifetime(r):
    items = [item(n, float(n % 97)) for n in range(700)]  # more than a call's chunk, equal scores too
    run(lambda s: s.post_items(T, items))
    kept = [m.decode() for m in r.zrange(top_key(T, "g1", H0), 0, -1, desc=True)]
    best = sorted(items, key=lambda i: (i.score, i.item_id), reverse=True)[:MAX_TOP_K]
    assert kept == [i.item_id for i in best]
    assert 0 < r.pttl(top_key(T, "g1", H0)) <= 9 * DAY_MS
    for it in best:
        assert r.hget(item_key(T, it.item_id), "title") == it.title.encode()
        assert 0 < r.pttl(item_key(T, it.item_id)) <= 9 * DAY_MS
    run(lambda s: s.post_items(T, [item(900, -1.0)]))  # posted into a full bucket, below its best
    assert not r.exists(item_key(T, "i00900")) and r.zscore(top_key(T, "g1", H0), "i00900") is None


def test_posting_an_item_again_changes_nothing_and_a_higher_score_raises_it(r):
    run(lambda s: s.post_items(T, [item(1, 5.0), item(2, 7.0)]))
    run(lambda s: s.post_items(T, [item(1, 5.0), item(1, 3.0)]))
    assert r.zscore(top_key(T, "g1", H0), "i00001") == 5.0
    run(lambda s: s.post_items(T, [item(1, 9.0)]))
    got = run(lambda s: s.window_items(T, "g1", [H0, H0 + 1], 5))
    assert sorted((i.item_id, i.score) for i in got) == [("i00001", 9.0), ("i00002", 7.0)]


def test_joins_leaves_and_sightings_keep_the_zone_sets(r):
    changes = [("join", "L1", "g1", "community", "Europe/Paris", 1000),
               ("join", "L1", "g2", "employer", "Europe/Paris", 2000),
               ("join", "L2", "g1", "community", "America/Chicago", 1500),
               ("seen", "L1", "", "", "", 5000), ("seen", "L1", "", "", "", 4000),  # last seen only rises
               ("seen", "L9", "", "", "", 6000)]  # not a member anywhere: nothing kept
    run(lambda s: s.change_memberships(T, changes))
    assert run(lambda s: s.zones(T)) == ["America/Chicago", "Europe/Paris"]
    assert r.zscore(f"ls:dgpeople:{T}:Europe/Paris", "L1") == 5000
    assert r.zscore(f"ls:dgpeople:{T}:Europe/Paris", "L9") is None
    assert run(lambda s: s.memberships(T, ["L1", "L2", "L9"])) == [{"g1": 1000, "g2": 2000}, {"g1": 1500}, {}]
    assert run(lambda s: s.group_kinds(T, ["g1", "g2", "g3"])) == {"g1": "community", "g2": "employer", "g3": ""}
    run(lambda s: s.change_memberships(T, [("leave", "L1", "g1", "", "", 7000)]))
    assert r.zscore(f"ls:dgpeople:{T}:Europe/Paris", "L1") == 5000  # still in g2
    run(lambda s: s.change_memberships(T, [("leave", "L1", "g2", "", "", 8000), ("leave", "L1", "g2", "", "", 8000)]))
    assert r.zscore(f"ls:dgpeople:{T}:Europe/Paris", "L1") is None
    assert run(lambda s: s.timezone_of(T, ["L1", "L2"])) == [None, "America/Chicago"]
    # a member who moves zone is in the new zone's set only
    run(lambda s: s.change_memberships(T, [("join", "L2", "g3", "feed", "Asia/Tokyo", 9000)]))
    assert r.zscore(f"ls:dgpeople:{T}:America/Chicago", "L2") is None
    assert r.zscore(f"ls:dgpeople:{T}:Asia/Tokyo", "L2") == 9000


def test_a_runs_snapshot_splits_by_last_seen_is_taken_once_and_settles_each_chunk_once(r):
    now = 100 * DAY_MS
    seen = {"fresh": now - DAY_MS, "recent": now - 3 * DAY_MS, "old": now - 30 * DAY_MS, "gone": now - 200 * DAY_MS}
    run(lambda s: s.change_memberships(T, [("join", k, "g1", "community", "UTC", v) for k, v in seen.items()]))
    plan = run(lambda s: s.plan("R1", T, "UTC", now - 7 * DAY_MS, now - 90 * DAY_MS, {"digest": "d"}))
    assert (plan["priority"], plan["standard"], plan["left_out"], plan["digest"]) == ("2", "1", "1", "d")
    assert run(lambda s: s.members("R1", "priority", 0, 10)) == [("recent", seen["recent"]), ("fresh", seen["fresh"])]
    assert run(lambda s: s.members("R1", "standard", 0, 10)) == [("old", seen["old"])]
    # members joining after the plan change nothing of it
    run(lambda s: s.change_memberships(T, [("join", "late", "g1", "community", "UTC", now)]))
    again = run(lambda s: s.plan("R1", T, "UTC", now - 7 * DAY_MS, None, {}))
    assert again["priority"] == "2" and run(lambda s: s.members("R1", "priority", 0, 10))[-1][0] == "fresh"
    assert run(lambda s: s.claim("R1", "priority", 0, "w1", now)) == 1
    # w1 was killed mid-chunk: the chunk, redelivered, is taken by its successor
    assert run(lambda s: s.claim("R1", "priority", 0, "w2", now + 1000)) == 1
    assert r.get("ls:dgchunk:R1:priority:0").decode().startswith("w2|")
    h = run(lambda s: s.settle("R1", "priority", 0, {"done_chunks": 1, "requested": 2}))
    h = run(lambda s: s.settle("R1", "priority", 0, {"done_chunks": 1, "requested": 2}))
    assert (h["done_chunks"], h["requested"]) == ("1", "2")
    assert run(lambda s: s.claim("R1", "priority", 0, "w3", now)) == 0  # done
    assert run(lambda s: s.mark_run("R1", "finished_at", now)) and not run(lambda s: s.mark_run("R1", "finished_at", 1))
