"""The link-code counter against real Redis (database 54): codes are unique and increasing,
and a wiped Redis never hands out a code an email sent before the wipe already carries."""
from __future__ import annotations

import asyncio

import redis
import redis.asyncio as aioredis

from domain.links import CODE_EPOCH_MS, CODES_PER_MS, counter_floor
from projections.redis_sends import LINK_SEQ, SendState
from streams.settings import get_settings

DB = 54
DAY_MS = 86_400_000


def _state():
    url = get_settings().redis_url.rsplit("/", 1)[0] + f"/{DB}"
    sync = redis.Redis.from_url(url)
    sync.flushdb()
    return sync, SendState(aioredis.Redis.from_url(url))


def test_codes_are_unique_and_increasing_across_calls():
    sync, state = _state()
    now = CODE_EPOCH_MS + 30 * DAY_MS

    async def go():
        return [await state.link_codes(n, now) for n in (3, 1, 5)]
    batches = asyncio.run(go())
    flat = [c for b in batches for c in b]
    assert flat == list(range(counter_floor(now) + 1, counter_floor(now) + 10))
    assert int(sync.get(LINK_SEQ)) == flat[-1]


def test_after_a_wipe_the_counter_restarts_above_every_code_made_before():
    sync, state = _state()
    day1 = CODE_EPOCH_MS + 100 * DAY_MS
    # a busy day before the wipe: as many codes as the floor allows in one day, short of it
    made_per_day = CODES_PER_MS * DAY_MS - 1

    async def go():
        first = (await state.link_codes(1, day1))[0]
        await state.r.incrby(LINK_SEQ, made_per_day)  # a day's worth of codes, counted, not built
        last_before = int(await state.r.get(LINK_SEQ))
        sync.flushdb()  # the wipe, a day later
        after = await state.link_codes(4, day1 + DAY_MS)
        return first, last_before, after, await state.link_codes(0, day1)
    first, last_before, after, none = asyncio.run(go())
    assert min(after) > last_before > first and none == []
    assert after == sorted(after) and len(set(after)) == 4


def test_a_counter_that_exists_is_never_moved_by_the_floor():
    sync, state = _state()
    sync.set(LINK_SEQ, 41)  # an installation from before the floor: its small codes continue
    assert asyncio.run(state.link_codes(2, CODE_EPOCH_MS + 300 * DAY_MS)) == [42, 43]
