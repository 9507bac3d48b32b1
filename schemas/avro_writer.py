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
from typing import Any, Callable

Writer = Callable[[Any, bytearray], None]
_MISSING = object()
_DOUBLE = Struct("<d").pack
_FLOAT = Struct("<f").pack


class Unsupported(ValueError):
    """A schema shape these closures do not write (fastavro writes it instead)."""


def _varint(n: int, buf: bytearray) -> None:
    """Zig-zag encoded long; n must be an int (a float raises TypeError here)."""
    n = (n << 1) ^ (n >> 63)
    while n > 0x7F:
        buf.append((n & 0x7F) | 0x80)
        n >>= 7
    buf.append(n)


def _long(v: Any, buf: bytearray) -> None:
    if v.__class__ is not int:  # a bool is no long to fastavro's union matching: it decides
        raise TypeError("not an int")
    if not -(1 << 63) <= v < (1 << 63):
        raise ValueError("out of range for a long")
    _varint(v, buf)


def _int(v: Any, buf: bytearray) -> None:
    if v.__class__ is not int:  # a bool is no long to fastavro's union matching: it decides
        raise TypeError("not an int")
    if not -(1 << 31) <= v < (1 << 31):
        raise ValueError("out of range for an int")
    _varint(v, buf)


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
    if isinstance(schema, str):
        if schema not in _PRIMITIVES:
            raise Unsupported(f"named type reference {schema!r}")
        return _PRIMITIVES[schema]
    if isinstance(schema, list):
        return _union(schema)
    kind = schema["type"]
    if kind == "record":
        return _record(schema)
    if kind == "enum":
        return _enum(schema["symbols"])
    if kind == "array":
        return _array(compile_writer(schema["items"]))
    if kind == "map":
        return _map(compile_writer(schema["values"]))
    if isinstance(kind, (str, list)) and "logicalType" not in schema:
        return compile_writer(kind)
    if kind in ("long", "int") and schema.get("logicalType") in ("timestamp-millis", "timestamp-micros"):
        return _PRIMITIVES[kind]  # ints only here: a datetime goes to fastavro, which converts it
    raise Unsupported(f"type {kind!r} {schema.get('logicalType', '')}".strip())


def _union(branches: list) -> Writer:
    if len(branches) != 2 or branches[0] != "null":
        raise Unsupported(f"union {branches!r} (only [null, X])")
    inner = compile_writer(branches[1])

    def write(v: Any, buf: bytearray) -> None:
        if v is None:
            buf.append(0)
        else:
            buf.append(2)  # zig-zag of branch 1
            inner(v, buf)
    return write


def _record(schema: dict) -> Writer:
    fields = tuple((f["name"], f.get("default", _MISSING), compile_writer(f["type"])) for f in schema["fields"])

    def write(v: Any, buf: bytearray) -> None:
        get = v.get
        for name, default, writer in fields:
            value = get(name, default)
            if value is _MISSING:
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
