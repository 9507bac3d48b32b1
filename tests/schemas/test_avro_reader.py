"""The compiled Avro readers return what fastavro returns, for every schema and generated
events; odd bytes (truncated, flipped, trailing) get fastavro's answer through the codec."""
from __future__ import annotations

import io

import pytest
from fastavro import schemaless_reader
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.avro_reader import compile_reader
from schemas.codec import DecodeError
from tests.schemas.test_avro_writer import CODEC, LATEST, fastavro_bytes, values_of


def fastavro_read(name: str, data: bytes):
    buf = io.BytesIO(data)
    buf.seek(10)
    event = schemaless_reader(buf, LATEST[name].parsed, None)
    return event, buf.tell()


def codec_or_error(data: bytes):
    try:
        return CODEC.decode(data)
    except DecodeError:
        return "error"


def fastavro_or_error(name: str, data: bytes):
    try:
        event, end = fastavro_read(name, data)
    except Exception:  # noqa: BLE001 - any failure is the codec's DecodeError
        return "error"
    return (name, event) if end == len(data) else "error"


def test_every_schema_has_a_reader():
    assert len(CODEC._readers) == len(LATEST)


@pytest.mark.parametrize("name", sorted(LATEST))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_compiled_reads_are_fastavros(name, data):
    body = fastavro_bytes(name, data.draw(values_of(LATEST[name].raw)))
    event, end = CODEC._readers[LATEST[name].fingerprint](body, 10)
    assert (event, end) == fastavro_read(name, body)
    # damaged copies: the codec answers what fastavro answers (an event or a DecodeError)
    cut = data.draw(st.integers(10, len(body)))
    flip = data.draw(st.integers(10, max(10, len(body) - 1)))
    damaged = [body[:cut], body + b"\x00",
               body[:flip] + bytes([body[flip] ^ data.draw(st.integers(1, 255))]) + body[flip + 1:]
               if len(body) > 10 else body]
    for bad in damaged:
        assert _nan_equal(codec_or_error(bad)) == _nan_equal(fastavro_or_error(name, bad))


def _nan_equal(value):
    """NaN (a damaged double) as a marker, so two NaNs compare equal."""
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, dict):
        return {k: _nan_equal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_nan_equal(v) for v in value)
    return value


def test_odd_bytes_the_closures_refuse():
    read = compile_reader({"type": "record", "name": "R", "fields": [
        {"name": "b", "type": "boolean"}, {"name": "s", "type": ["null", "string"]}]})
    assert read(b"\x01\x02\x04hi", 0) == ({"b": True, "s": "hi"}, 5)
    for bad in (b"\x02\x00", b"\x01\x04", b"\x01\x02\x08hi", b"\x01\x02\x04\xff\xfe"):
        with pytest.raises((ValueError, IndexError)):
            read(bad, 0)


def test_blocked_arrays_with_byte_sizes_are_read():
    read = compile_reader({"type": "array", "items": "long"})
    # a block of -2 items with its byte size (2), then a block of 1, then the end
    assert read(b"\x03\x04\x02\x04\x02\x06\x00", 0) == ([1, 2, 3], 7)


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_a_bytearray_or_memoryview_reads_as_bytes_would(data):
    body = fastavro_bytes("send.links", data.draw(values_of(LATEST["send.links"].raw)))
    assert CODEC.decode(bytearray(body)) == CODEC.decode(memoryview(body)) == CODEC.decode(body)
