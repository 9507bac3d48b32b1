"""Avro binary bodies written by closures compiled once per schema.

fastavro's schemaless_writer cost 17 us for one lead.submitted event (a quarter of the API's
CPU at 17,000 leads/s, py-spy): it resolves every union branch and logical type on every call.
Our schemas use a small part of Avro (records, enums, arrays, maps, [null, X] unions and the
primitives), so each schema is compiled once into nested closures that only append bytes.

The closures write exactly fastavro's bytes for the values they accept (tests/schemas/
test_avro_writer.py checks it for every schema with generated events); any value they do not
accept raises, and the codec then asks fastavro, whose answer (bytes or its error) stands.
"""
from __future__ import annotations

from struct import Struct
from types import SimpleNamespace
from typing import Any, Callable

from schemas.avro_subset import MISSING, compile_schema

Writer = Callable[[Any, bytearray], None]
_DOUBLE = Struct("<d").pack
_FLOAT = Struct("<f").pack


def _varint(n: int, buf: bytearray) -> None:
    """Zig-zag encoded long; n must be an int (a float raises TypeError here)."""
    n = (n << 1) ^ (n >> 63)
    while n > 0x7F:
        buf.append((n & 0x7F) | 0x80)
        n >>= 7
    buf.append(n)


def _ranged(bits: int) -> Writer:
    lo, hi = -(1 << (bits - 1)), 1 << (bits - 1)

    def write(v: Any, buf: bytearray) -> None:
        if v.__class__ is not int:  # a bool is no long to fastavro's union matching: it decides
            raise TypeError("not an int")
        if not lo <= v < hi:
            raise ValueError(f"out of range for {bits} bits")
        _varint(v, buf)
    return write


_long, _int = _ranged(64), _ranged(32)


def _string(v: Any, buf: bytearray) -> None:
    data = v.encode()  # anything but a str raises (AttributeError), and fastavro decides
    if v.__class__ is not str:
        raise TypeError("not a str")
    n = len(data)
    if n < 64:
        buf.append(n << 1)
    else:
        _varint(n, buf)
    buf += data


def _bytes(v: Any, buf: bytearray) -> None:
    if v.__class__ is not bytes:
        raise TypeError("not bytes")
    _varint(len(v), buf)
    buf += v


def _double(v: Any, buf: bytearray) -> None:
    if v.__class__ is not float:
        raise TypeError("not a float")
    buf += _DOUBLE(v)


def _float(v: Any, buf: bytearray) -> None:
    if v.__class__ is not float:
        raise TypeError("not a float")
    buf += _FLOAT(v)


def _boolean(v: Any, buf: bytearray) -> None:
    if v.__class__ is not bool:
        raise TypeError("not a bool")
    buf.append(1 if v else 0)


def _null(v: Any, buf: bytearray) -> None:
    if v is not None:
        raise TypeError("not None")


_PRIMITIVES: dict[str, Writer] = {"long": _long, "int": _int, "string": _string, "bytes": _bytes,
                                  "double": _double, "float": _float, "boolean": _boolean, "null": _null}


def compile_writer(schema: Any) -> Writer:
    """A writer for this (raw JSON) schema; Unsupported for shapes it does not cover."""
    return compile_schema(schema, _WRITERS)


def _union(inner: Writer) -> Writer:
    def write(v: Any, buf: bytearray) -> None:
        if v is None:
            buf.append(0)
        else:
            buf.append(2)  # zig-zag of branch 1
            inner(v, buf)
    return write


def _record(fields: list[tuple[str, Any, Writer]]) -> Writer:
    fields = tuple(fields)

    def write(v: Any, buf: bytearray) -> None:
        get = v.get
        for name, default, writer in fields:
            value = get(name, default)
            if value is MISSING:
                raise KeyError(name)
            writer(value, buf)
    return write


def _enum(symbols: list[str]) -> Writer:
    index = {s: i for i, s in enumerate(symbols)}

    def write(v: Any, buf: bytearray) -> None:
        _varint(index[v], buf)
    return write


def _array(items: Writer) -> Writer:
    def write(v: Any, buf: bytearray) -> None:
        if v.__class__ is not list:
            raise TypeError("not a list")
        if v:
            _varint(len(v), buf)
            for item in v:
                items(item, buf)
        buf.append(0)
    return write


def _map(values: Writer) -> Writer:
    def write(v: Any, buf: bytearray) -> None:
        if v.__class__ is not dict:
            raise TypeError("not a dict")
        if v:
            _varint(len(v), buf)
            for key, value in v.items():
                _string(key, buf)
                values(value, buf)
        buf.append(0)
    return write


# timestamp-millis: ints only here (a datetime goes to fastavro, which converts it)
_WRITERS = SimpleNamespace(primitives=_PRIMITIVES, timestamp_millis=_long, union=_union, record=_record,
                           enum=_enum, array=_array, map=_map)
