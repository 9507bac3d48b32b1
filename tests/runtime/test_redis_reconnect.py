"""A connection Redis closed while it sat in the pool (Redis restarted, or the connection
killed) costs no command: the command goes again on a new connection. The chaos drill saw a
worker fail, and the API answer a webhook 503, on such a connection seconds after Redis was back."""
from __future__ import annotations

import asyncio

import redis

from runtime.deps import build
from streams.settings import get_settings


def test_a_command_on_a_connection_redis_closed_is_sent_again_on_a_new_one():
    s = get_settings()

    async def go():
        deps = build(s)
        r = deps.redis
        try:
            await r.set("test:reconnect", "1")
            first = await r.client_id()
            killed = redis.Redis.from_url(s.redis_url).client_kill_filter(_id=first)  # as a restart would
            assert killed == 1
            await asyncio.sleep(0.2)
            value = await r.get("test:reconnect")  # the pooled connection is closed: sent again
            return first, await r.client_id(), value
        finally:
            await r.delete("test:reconnect")
            await r.aclose()
            deps.producer.close()
    first, now, value = asyncio.run(go())
    assert value == b"1" and now != first
