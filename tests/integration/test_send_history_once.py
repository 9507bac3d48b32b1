"""A send is in its lead's history once, however often its record is written: a batch retried
after its MULTI was applied but its answer was lost (Redis restarting) records it again. Before,
the drill's replay comparison found such leads (their history held one send twice)."""
from __future__ import annotations

import asyncio

import orjson
import redis
import redis.asyncio as aioredis

from projections.redis_sends import HIST_TTL_S, SendState

DB = 7
NOW = 1_796_000_000_000


def _dispatched(send_id: str, at: int) -> dict:
    return {"tenant": "t", "lead_id": "L1", "send_id": send_id, "list": "daily", "kind": "daily",
            "provider": "smtp", "channel": "email", "occurred_at": at, "provider_id": f"p-{send_id}",
            "job_keys": ["t:j:1"], "experiment": "", "variant": ""}


def test_recording_a_send_again_leaves_one_entry_and_keeps_the_order(settings):
    url = settings.redis_url.rsplit("/", 1)[0] + f"/{DB}"
    sync = redis.Redis.from_url(url)
    sync.flushdb()

    async def run() -> None:
        r = aioredis.Redis.from_url(url)
        state = SendState(r)
        first, second = _dispatched("s1", NOW), _dispatched("s2", NOW + 1000)
        for d in (first, first, second, first, second):  # retried records, in any order
            ev = ("send.dispatched", d)
            await state.settle_and_record([(d["send_id"], ev)], [], [], [d], NOW + 5000, NOW - 86_400_000)
        await r.aclose()
    try:
        asyncio.run(run())
        entries = [orjson.loads(e) for e in sync.lrange("ls:hist:t:L1", 0, -1)]
        assert [(e["send_id"], e["at"]) for e in entries] == [("s2", NOW + 1000), ("s1", NOW)]
        assert 0 < sync.ttl("ls:hist:t:L1") <= HIST_TTL_S
        assert sync.get("ls:send:s1").startswith(b"sent|")
    finally:
        sync.flushdb()
