"""A Redis database of the live stack's server for one test module: its URL, and a client to a
database emptied before and after each test (the module's own number, so modules never share)."""
from __future__ import annotations

from collections.abc import Iterator

import redis

from streams.settings import get_settings


def db_url(db: int) -> str:
    return get_settings().redis_url.rsplit("/", 1)[0] + f"/{db}"


def emptied(db: int) -> Iterator[redis.Redis]:
    """For a fixture: `yield from emptied(DB)`."""
    client = redis.Redis.from_url(db_url(db))
    client.flushdb()
    yield client
    client.flushdb()


def run_async(db: int, fn):
    """fn(client) on an asyncio client of that database, run to its end; its result."""
    import asyncio

    import redis.asyncio as aioredis

    async def go():
        client = aioredis.Redis.from_url(db_url(db))
        try:
            return await fn(client)
        finally:
            await client.aclose()
    return asyncio.run(go())
