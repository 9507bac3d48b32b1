"""The replay forgets the families it rebuilds in one pass, on the live stack's Redis, and
nothing else: the configuration, the blocklist and the families it does not rebuild stay."""
from __future__ import annotations

import pytest

from runtime.replay import FORGOTTEN
from runtime.replay_forget import CHUNK, forget
from tests.redis_db import emptied, run_async

DB = 45


@pytest.fixture
def r():
    yield from emptied(DB)


def test_every_key_of_the_named_families_goes_and_nothing_else(r):
    doomed = [f"ls:tev:t:L{i}" for i in range(CHUNK + 7)] + ["ls:dgtop:t:g", "ls:dnc:t", "ls:dncanon:t",
                                                            "ls:lead:t:L1", "ls:due:t", "ls:dek:t", "ls:segm:t:s"]
    kept = ["ls:intact", "ls:block", "ls:mark:s1", "ls:link:abc", "ls:leadx", "other:ls:tev:x", "ls:tevx"]
    pipe = r.pipeline(transaction=False)
    for k in doomed + kept:
        pipe.set(k, "v")
    pipe.execute()
    assert run_async(DB, lambda c: forget(c, FORGOTTEN)) == len(doomed)
    assert sorted(k.decode() for k in r.keys("*")) == sorted(kept)
    assert run_async(DB, lambda c: forget(c, FORGOTTEN)) == 0


def test_a_client_that_decodes_its_answers_forgets_the_same(r):
    import asyncio

    import redis.asyncio as aioredis

    from tests.redis_db import db_url
    r.set("ls:consent:t:L1", "v")
    r.set("ls:consentx", "v")

    async def go():
        c = aioredis.Redis.from_url(db_url(DB), decode_responses=True)
        try:
            return await forget(c, ("ls:consent:",))
        finally:
            await c.aclose()
    assert asyncio.run(go()) == 1
    assert [k.decode() for k in r.keys("*")] == ["ls:consentx"]
