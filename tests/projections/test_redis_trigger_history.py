"""The trigger engine's event histories against real Redis (database 44): what remember keeps,
trims and lets expire, one Lua call per chunk of leads."""
from __future__ import annotations

import asyncio

import redis
import redis.asyncio as aioredis

from projections.redis_triggers import EVENTS_TTL_S, MAX_EVENTS, REMEMBER_CHUNK, TriggerStore, events_key
from streams.settings import get_settings

DB = 44
DAY_MS = 86_400_000
NOW = 1_800_000_000_000


def _store():
    url = get_settings().redis_url.rsplit("/", 1)[0] + f"/{DB}"
    sync = redis.Redis.from_url(url)
    sync.flushdb()
    return sync, TriggerStore(aioredis.Redis.from_url(url))


def test_events_are_kept_once_each_newest_window_and_count_with_the_lifetime():
    sync, store = _store()
    old = [("acme", "L1", NOW - 100 * DAY_MS, "E-old", "viewed", {})]
    many = [("acme", "L1", NOW - i, f"E{i}", "viewed", {"job": i}) for i in range(MAX_EVENTS + 20)]

    async def go():
        await store.remember(old)
        await store.remember(many)
        await store.remember(many[:10])  # redelivered: the same members
        return await store.histories([("acme", "L1")], 0)
    (history,) = asyncio.run(go())
    key = events_key("acme", "L1")
    assert sync.zcard(key) == MAX_EVENTS
    ids = [event_id for _, event_id, _, _ in history]
    assert "E-old" not in ids  # beyond the 90-day window of the newest event
    assert ids[-1] == "E0" and f"E{MAX_EVENTS + 19}" not in ids  # the newest kept, the oldest trimmed
    assert history[-1][3] == {"job": 0}
    assert EVENTS_TTL_S - 5 < sync.ttl(key) <= EVENTS_TTL_S


def test_many_leads_in_one_call_each_get_their_own_events():
    sync, store = _store()
    items = [("acme", f"L{i}", NOW - j * 1000, f"E{i}-{j}", "opened", {}) for i in range(REMEMBER_CHUNK + 5)
             for j in range(2)]
    asyncio.run(store.remember(items))
    assert sync.dbsize() == REMEMBER_CHUNK + 5
    assert all(sync.zcard(events_key("acme", f"L{i}")) == 2 for i in (0, REMEMBER_CHUNK + 4))


def test_nothing_to_remember_writes_nothing():
    sync, store = _store()
    asyncio.run(store.remember([]))
    assert sync.dbsize() == 0
