"""Redis commands packed by hiredis (C) on the asyncio client.

redis-py's synchronous client packs commands with `hiredis.pack_command` when hiredis is
installed; its asyncio client always packs them in Python, an encode, a len and a join per
argument. Our writes are wide (a Lua call with a thousand keys, an HMGET of a batch's leads):
py-spy on `./dev bench pipeline` put 12 us of each event's ~270 us in that packing. Same bytes
on the wire (checked against redis-py's packer in tests/streams/test_redis_packing.py), ~9x
less CPU.

    pool = aioredis.BlockingConnectionPool.from_url(url, **packed(url))
    client = aioredis.Redis.from_url(url, **packed(url))
"""
from __future__ import annotations

import hiredis
import redis.asyncio as aioredis
from redis.exceptions import DataError


def pack(args: tuple) -> list[bytes]:
    """The RESP bytes of one command, as redis-py's packer writes them: a first argument with
    spaces ("CONFIG GET") split into words; bytes, memoryview, str (UTF-8), int and float
    arguments; anything else (None, a bool, a list) a DataError, as redis-py raises."""
    first = args[0]
    if isinstance(first, str):
        args = tuple(first.encode().split()) + args[1:]
    elif b" " in first:
        args = tuple(first.split()) + args[1:]
    try:
        return [hiredis.pack_command(args)]
    except TypeError as exc:  # hiredis takes neither views nor (unlike int) a bool
        if not any(isinstance(a, (bytearray, memoryview)) for a in args):
            raise DataError(f"a command's arguments are bytes, str, int or float: {exc}") from exc
    return [hiredis.pack_command(tuple(bytes(a) if isinstance(a, (bytearray, memoryview)) else a for a in args))]


class _Packed:
    """Commands packed by hiredis (pipelines too: redis-py's pack_commands packs each command
    with pack_command)."""

    def pack_command(self, *args) -> list[bytes]:
        return pack(args)


class PackedConnection(_Packed, aioredis.Connection):
    pass


class PackedSSLConnection(_Packed, aioredis.SSLConnection):
    pass


class PackedUnixConnection(_Packed, aioredis.UnixDomainSocketConnection):
    pass


_BY_SCHEME = {"redis": PackedConnection, "rediss": PackedSSLConnection, "unix": PackedUnixConnection}


def packed(url: str) -> dict:
    """The from_url keyword that gives the URL's kind of connection (TCP, TLS, a Unix socket)
    hiredis packing."""
    return {"connection_class": _BY_SCHEME[url.split("://", 1)[0].lower()]}
