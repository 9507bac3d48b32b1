"""The part of Avro our schemas use, walked once per schema to build a writer or a reader:
records, enums, arrays, maps, [null, X] unions, the primitives and timestamp-millis longs.
Anything else is Unsupported (fastavro handles it)."""
from __future__ import annotations

from typing import Any, Callable, Protocol


class Unsupported(ValueError):
    """A schema shape the compiled closures do not cover (fastavro does it instead)."""


class Builders(Protocol):
    primitives: dict[str, Callable]
    timestamp_millis: Callable

    def union(self, inner: Callable) -> Callable: ...
    def record(self, fields: list[tuple[str, Any, Callable]]) -> Callable: ...
    def enum(self, symbols: list[str]) -> Callable: ...
    def array(self, items: Callable) -> Callable: ...
    def map(self, values: Callable) -> Callable: ...


MISSING = object()  # a field without a default


def compile_schema(schema: Any, kit: Builders) -> Callable:
    """The closure for this (raw JSON) schema, built from the kit's pieces."""
    if isinstance(schema, str):
        if schema not in kit.primitives:
            raise Unsupported(f"named type reference {schema!r}")
        return kit.primitives[schema]
    if isinstance(schema, list):
        if len(schema) != 2 or schema[0] != "null":
            raise Unsupported(f"union {schema!r} (only [null, X])")
        return kit.union(compile_schema(schema[1], kit))
    kind = schema["type"]
    if kind == "record":
        return kit.record([(f["name"], f.get("default", MISSING), compile_schema(f["type"], kit))
                           for f in schema["fields"]])
    if kind == "enum":
        return kit.enum(schema["symbols"])
    if kind == "array":
        return kit.array(compile_schema(schema["items"], kit))
    if kind == "map":
        return kit.map(compile_schema(schema["values"], kit))
    if isinstance(kind, (str, list)) and "logicalType" not in schema:
        return compile_schema(kind, kit)
    if kind == "long" and schema.get("logicalType") == "timestamp-millis":
        return kit.timestamp_millis
    raise Unsupported(f"type {kind!r} {schema.get('logicalType', '')}".strip())
