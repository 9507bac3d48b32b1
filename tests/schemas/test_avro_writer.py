"""The compiled Avro writers write fastavro's bytes, for every schema and generated events;
values they do not take go to fastavro, whose bytes or error stand."""
from __future__ import annotations

import io

import pytest
from fastavro import schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.avro_subset import Unsupported
from schemas.avro_writer import compile_writer
from schemas.codec import MARKER, Codec, load_all

LATEST = {v.name: v for v in sorted(load_all(), key=lambda v: v.version)}
CODEC = Codec(list(LATEST.values()))
_LONG = st.integers(-(1 << 63), (1 << 63) - 1)
_INT = st.integers(-(1 << 31), (1 << 31) - 1)


def values_of(schema) -> st.SearchStrategy:
    """Events (or parts) of this schema, edge values included."""
    if isinstance(schema, list):
        return st.one_of(*(values_of(b) for b in schema))
    if isinstance(schema, str):
        return {"null": st.none(), "string": st.text(max_size=80), "long": _LONG, "int": _INT,
                "double": st.floats(allow_nan=False), "boolean": st.booleans(),
                "bytes": st.binary(max_size=40), "float": st.floats(width=32, allow_nan=False)}[schema]
    kind = schema["type"]
    if schema.get("logicalType") == "timestamp-millis":  # readable back as a time (year 1970 to 2100)
        return st.integers(0, 4_102_444_800_000)
    if kind == "record":
        return st.fixed_dictionaries({f["name"]: values_of(f["type"]) for f in schema["fields"]})
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(values_of(schema["items"]), max_size=5)
    if kind == "map":
        return st.dictionaries(st.text(max_size=12), values_of(schema["values"]), max_size=5)
    return values_of(kind)


def fastavro_bytes(name: str, event) -> bytes:
    buf = io.BytesIO()
    buf.write(MARKER + LATEST[name].fingerprint)
    schemaless_writer(buf, LATEST[name].parsed, event)
    return buf.getvalue()


def test_every_schema_is_compiled():
    assert set(CODEC._writers) == set(LATEST)


@pytest.mark.parametrize("name", sorted(LATEST))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_compiled_bytes_are_fastavros(name, data):
    event = data.draw(values_of(LATEST[name].raw))
    fast = bytearray(MARKER + LATEST[name].fingerprint)
    CODEC._writers[name](event, fast)
    assert bytes(fast) == fastavro_bytes(name, event)
    assert CODEC.decode(bytes(fast)) == (name, CODEC.decode(fastavro_bytes(name, event))[1])


def test_values_the_closures_refuse_go_to_fastavro():
    event = {"event_id": "e1", "tenant": "t", "occurred_at": 1.0e12, "schema": "lead.unsubscribe_requested@1",
             "causation_id": None, "source": "api", "lead_id": "l1", "reason": "r", "requested_by": "x"}
    writer = CODEC._writers["lead.unsubscribe_requested"]
    with pytest.raises(TypeError):  # a float time: fastavro converts it
        writer(event, bytearray())
    assert CODEC.encode("lead.unsubscribe_requested", event) == fastavro_bytes("lead.unsubscribe_requested", event)
    missing = {k: v for k, v in event.items() if k != "causation_id"}  # nullable, no value: fastavro writes null
    assert CODEC.encode("lead.unsubscribe_requested", missing) == fastavro_bytes(
        "lead.unsubscribe_requested", {**missing, "causation_id": None})


def test_bad_values_still_get_fastavros_error():
    event = {"event_id": 7, "tenant": "t"}
    with pytest.raises((ValueError, TypeError, AttributeError)):
        CODEC.encode("lead.unsubscribe_requested", event)
    with pytest.raises(KeyError):
        CODEC.encode("no.such", {})


def test_bools_are_not_longs():
    writer = compile_writer({"type": "record", "name": "R", "fields": [
        {"name": "n", "type": ["null", "long"]}]})
    with pytest.raises(TypeError):
        writer({"n": True}, bytearray())


def test_shapes_outside_the_subset_are_left_to_fastavro():
    for schema in (["string", "long"], {"type": "fixed", "name": "F", "size": 4}, "Named",
                   {"type": "bytes", "logicalType": "decimal", "precision": 4}):
        with pytest.raises(Unsupported):
            compile_writer(schema)
