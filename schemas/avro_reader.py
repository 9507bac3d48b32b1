"""Avro binary bodies read by closures compiled once per schema (writer = reader only).

fastavro's schemaless_reader took 15 us for one lead.submitted body, and every agent decodes
every event it consumes (py-spy: 13 % of a pipeline worker). The closures cover the subset of
Avro our schemas use (see avro_writer.py) and return what fastavro returns (timestamps as
UTC datetimes). They are strict: anything odd (a bad union index, a boolean byte other than 0
or 1, a string past the end, invalid UTF-8) raises, and the codec then asks fastavro, whose
answer stands; tests/schemas/test_avro_reader.py compares both for every schema.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from struct import Struct
from types import SimpleNamespace
from typing import Any, Callable

from schemas.avro_subset import compile_schema

Reader = Callable[[bytes, int], tuple[Any, int]]
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_DOUBLE = Struct("<d").unpack_from
_FLOAT = Struct("<f").unpack_from


class Corrupt(ValueError):
    """These bytes are not a body of this schema."""


def _long(b: bytes, p: int) -> tuple[int, int]:
    c = b[p]
    p += 1
    if c < 0x80:
        return (c >> 1) ^ -(c & 1), p
    n, shift = c & 0x7F, 7
    while True:
        c = b[p]
        p += 1
        n |= (c & 0x7F) << shift
        if c < 0x80:
            break
        shift += 7
        if shift > 63:
            raise Corrupt("varint longer than 10 bytes")
    if n >> 64:
        raise Corrupt("varint past 64 bits")
    return (n >> 1) ^ -(n & 1), p


def _string(b: bytes, p: int) -> tuple[str, int]:
    n, p = _long(b, p)
    end = p + n
    if n < 0 or end > len(b):
        raise Corrupt("string past the end")
    return b[p:end].decode(), end


def _bytes(b: bytes, p: int) -> tuple[bytes, int]:
    n, p = _long(b, p)
    end = p + n
    if n < 0 or end > len(b):
        raise Corrupt("bytes past the end")
    return b[p:end], end


def _double(b: bytes, p: int) -> tuple[float, int]:
    return _DOUBLE(b, p)[0], p + 8


def _float(b: bytes, p: int) -> tuple[float, int]:
    return _FLOAT(b, p)[0], p + 4


def _boolean(b: bytes, p: int) -> tuple[bool, int]:
    c = b[p]
    if c > 1:
        raise Corrupt("boolean byte not 0 or 1")
    return c == 1, p + 1


def _null(b: bytes, p: int) -> tuple[None, int]:
    return None, p


def _timestamp_millis(b: bytes, p: int) -> tuple[datetime, int]:
    ms, p = _long(b, p)
    return _EPOCH + timedelta(microseconds=ms * 1000), p


_PRIMITIVES: dict[str, Reader] = {"long": _long, "int": _long, "string": _string, "bytes": _bytes,
                                  "double": _double, "float": _float, "boolean": _boolean, "null": _null}


def compile_reader(schema: Any) -> Reader:
    """A reader for bodies written with this (raw JSON) schema; Unsupported outside the subset."""
    return compile_schema(schema, _READERS)


def _union(inner: Reader) -> Reader:
    def read(b: bytes, p: int) -> tuple[Any, int]:
        c = b[p]
        if c == 0:
            return None, p + 1
        if c != 2:
            raise Corrupt("union branch out of range")
        return inner(b, p + 1)
    return read


def _record(fields: list[tuple[str, Any, Reader]]) -> Reader:
    fields = tuple((name, reader) for name, _default, reader in fields)

    def read(b: bytes, p: int) -> tuple[dict, int]:
        out = {}
        for name, reader in fields:
            out[name], p = reader(b, p)
        return out, p
    return read


def _enum(symbols: list[str]) -> Reader:
    table = tuple(symbols)

    def read(b: bytes, p: int) -> tuple[str, int]:
        i, p = _long(b, p)
        if i < 0:
            raise Corrupt("enum index out of range")
        return table[i], p
    return read


def _blocks(b: bytes, p: int, one: Callable[[bytes, int], int]) -> int:
    """Avro's blocked encoding of arrays and maps: count (negative: with a byte size), items, 0."""
    while True:
        n, p = _long(b, p)
        if n == 0:
            return p
        if n < 0:
            n = -n
            _, p = _long(b, p)
        for _ in range(n):
            p = one(b, p)


def _array(items: Reader) -> Reader:
    def read(b: bytes, p: int) -> tuple[list, int]:
        out: list = []

        def one(b: bytes, p: int) -> int:
            item, p = items(b, p)
            out.append(item)
            return p
        return out, _blocks(b, p, one)
    return read


def _map(values: Reader) -> Reader:
    def read(b: bytes, p: int) -> tuple[dict, int]:
        out: dict = {}

        def one(b: bytes, p: int) -> int:
            key, p = _string(b, p)
            out[key], p = values(b, p)
            return p
        return out, _blocks(b, p, one)
    return read


_READERS = SimpleNamespace(primitives=_PRIMITIVES, timestamp_millis=_timestamp_millis, union=_union,
                           record=_record, enum=_enum, array=_array, map=_map)
