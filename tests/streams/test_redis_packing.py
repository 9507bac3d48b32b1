"""Commands packed by hiredis on the asyncio Redis client: the same bytes redis-py's own packer
writes, the same refusals, and the platform's clients use it against the real Redis (DB 33)."""
from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from runtime.deps import build
from streams.redis_packing import (PackedConnection, PackedSSLConnection, PackedUnixConnection, pack,
                                   packed)
from streams.settings import get_settings
from tests.redis_db import db_url, emptied

DB = 33

COMMANDS = [
    ("SET", "k", "v"),
    ("SET", b"k", b"\x00\xff binary"),
    ("SET", "k", "é ü 漢字"),
    ("HSET", "h", "n", 1, "neg", -7, "big", 10**20, "f", 1.5, "g", 0.1 + 0.2, "e", 1e20, "zero", 0),
    ("CONFIG GET", "maxmemory"),  # a first argument of two words: two arguments on the wire
    (b"CLIENT SETNAME", b"x"),
    ("SET", "wide", "x" * 70_000),  # past redis-py's buffer cutoff (it sends such a value apart)
    ("EVALSHA", "a" * 40, 1000, *[f"ls:lead:t:{i:016x}" for i in range(1000)], *range(1000)),
    ("SET", "view", memoryview(b"from a view")),
    ("SET", "", ""),
]


def _redis_py(args: tuple) -> bytes:
    return b"".join(bytes(c) for c in Connection().pack_command(*args))


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: str(a[0]) + "/" + str(len(a)))
def test_the_bytes_on_the_wire_are_redis_pys(args):
    assert b"".join(pack(args)) == _redis_py(args)


@pytest.mark.parametrize("bad", [True, None, [1], {"a": 1}, object()], ids=repr)
def test_what_redis_py_refuses_is_refused_with_its_error(bad):
    with pytest.raises(DataError):
        Connection().pack_command("SET", "k", bad)
    with pytest.raises(DataError):
        pack(("SET", "k", bad))


def test_each_kind_of_url_keeps_its_kind_of_connection():
    assert packed("redis://127.0.0.1:6379/0")["connection_class"] is PackedConnection
    assert issubclass(packed("rediss://cache.example:6380/0")["connection_class"], aioredis.SSLConnection)
    assert packed("REDISS://cache.example:6380/0")["connection_class"] is PackedSSLConnection
    assert issubclass(packed("unix:///run/redis.sock")["connection_class"], aioredis.UnixDomainSocketConnection)
    assert packed("unix:///run/redis.sock")["connection_class"] is PackedUnixConnection
    pool = aioredis.ConnectionPool.from_url("rediss://cache.example:6380/0", **packed("rediss://cache.example:6380/0"))
    assert issubclass(pool.connection_class, aioredis.SSLConnection)  # TLS is not lost to the packing


@pytest.fixture
def r():
    yield from emptied(DB)


def test_commands_pipelines_and_wide_scripts_round_trip_through_the_real_redis(r):
    async def go():
        client = aioredis.Redis.from_url(db_url(DB), **packed(db_url(DB)))
        try:
            assert isinstance(await client.connection_pool.get_connection(), PackedConnection)
            keys = [f"test:packed:{i}" for i in range(1000)]
            values = [f"é{i}" if i % 3 else i for i in range(1000)]
            await client.mset(dict(zip(keys, values)))
            script = client.register_script("local n = 0 for i, k in ipairs(KEYS) do "
                                            "if redis.call('GET', k) == ARGV[i] then n = n + 1 end end return n")
            same = await script(keys=keys, args=values)
            pipe = client.pipeline(transaction=True)
            pipe.incrbyfloat("test:packed:f", 0.5)
            pipe.hset("test:packed:h", mapping={"a": b"\x00\xff", "b": 2})
            pipe.hgetall("test:packed:h")
            answers = await pipe.execute()
            with pytest.raises(DataError):
                await client.set("test:packed:bool", True)
            return same, answers, await client.mget(keys[:3])
        finally:
            await client.aclose()
    same, answers, first = asyncio.run(go())
    assert same == 1000
    assert answers == [0.5, 2, {b"a": b"\x00\xff", b"b": b"2"}]
    assert first == [b"0", "é1".encode(), "é2".encode()]
    assert not r.exists("test:packed:bool")


def test_the_platforms_clients_pack_with_hiredis():
    deps = build(get_settings())
    assert deps.redis.connection_pool.connection_class is PackedConnection
    deps.use_bulk_redis()
    assert deps.redis.connection_pool.connection_class is PackedConnection
