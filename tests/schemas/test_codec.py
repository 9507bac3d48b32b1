import io
import json

import pytest
from fastavro import schemaless_writer
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from avro.schema import parse

from schemas.codec import MARKER, SCHEMA_DIR, Codec, DecodeError, default_codec, load_all

EXAMPLES = sorted(SCHEMA_DIR.glob("*/examples/*.json"))


def _example(v):
    return json.loads((SCHEMA_DIR / v.name.split(".")[0] / "examples" /
                       f"{v.name.split('.', 1)[1]}.v{v.version}.json").read_text())


def test_every_schema_version_has_an_example():
    versions = load_all()
    assert len(versions) >= 6
    for v in versions:
        assert _example(v)["schema"] == v.label


def _written_with(v, ev) -> bytes:
    """ev single-object encoded with schema version v itself (the codec writes the newest)."""
    import io

    from fastavro import schemaless_writer
    buf = io.BytesIO()
    buf.write(b"\xc3\x01" + v.fingerprint)
    schemaless_writer(buf, v.parsed, ev)
    return buf.getvalue()


@pytest.mark.parametrize("v", load_all(), ids=lambda v: v.label)
def test_examples_round_trip_byte_for_byte(v):
    codec = default_codec()
    ev = _example(v)
    data = _written_with(v, ev)
    name, back = codec.decode(data)
    assert name == v.name
    assert _written_with(v, back) == data
    if codec.latest[name] is v:
        assert codec.encode(name, back) == data
    else:  # an older version is read into the newest shape, the added fields at their defaults
        newest = codec.decode(codec.encode(name, back))[1]
        assert newest == back


def test_fingerprint_is_the_spec_crc64_little_endian():
    # Avro spec: CRC-64-AVRO("int") = 0x7275d51a3f395c8f, written little endian.
    from fastavro.schema import fingerprint
    assert fingerprint('"int"', "CRC-64-AVRO") == "8f5c393f1ad57572"


@pytest.mark.parametrize("data, words", [
    (b"", "missing C3 01 marker"),
    (b"{\"json\": true}", "missing C3 01 marker"),
    (b"\xc3\x01" + b"\x00" * 8 + b"body", "unknown schema fingerprint"),
])
def test_foreign_bytes_are_refused(data, words):
    with pytest.raises(DecodeError, match=words):
        default_codec().decode(data)


def test_corrupt_and_trailing_bodies_are_refused():
    codec = default_codec()
    v = codec.latest["lead.rejected"]
    good = codec.encode(v.name, _example(v))
    with pytest.raises(DecodeError, match="corrupt"):
        codec.decode(good[:14])
    with pytest.raises(DecodeError, match="trailing"):
        codec.decode(good + b"\x00\x00")


def _compatible(reader: dict, writer: dict) -> bool:
    r = ReaderWriterCompatibilityChecker().get_compatibility(parse(json.dumps(reader)),
                                                             parse(json.dumps(writer)))
    return r.compatibility is SchemaCompatibilityType.compatible


def test_each_version_is_backward_compatible_with_the_one_before():
    by_name: dict[str, list] = {}
    for v in load_all():
        by_name.setdefault(v.name, []).append(v)
    for name, versions in by_name.items():
        versions.sort(key=lambda v: v.version)
        assert [v.version for v in versions] == list(range(1, len(versions) + 1)), name
        for old, new in zip(versions, versions[1:]):
            assert _compatible(new.raw, old.raw), f"{new.label} cannot read {old.label}"


def test_the_checker_catches_an_incompatible_change():
    old = load_all()[0].raw
    added_required = dict(old, fields=old["fields"] + [{"name": "new_required", "type": "string"}])
    added_optional = dict(old, fields=old["fields"] + [
        {"name": "new_optional", "type": ["null", "string"], "default": None}])
    assert not _compatible(added_required, old)
    assert _compatible(added_optional, old)


def test_an_old_version_is_read_into_the_newest_shape(tmp_path):
    src = SCHEMA_DIR / "lead" / "rejected.v1.avsc"
    raw = json.loads(src.read_text())
    raw["fields"].append({"name": "severity", "type": "string", "default": "normal"})
    (tmp_path / "lead").mkdir()
    (tmp_path / "lead" / "rejected.v1.avsc").write_text(src.read_text())
    (tmp_path / "lead" / "rejected.v2.avsc").write_text(json.dumps(raw))
    old_codec = Codec([v for v in load_all(tmp_path) if v.version == 1])
    new_codec = Codec(load_all(tmp_path))
    ev = json.loads((SCHEMA_DIR / "lead" / "examples" / "rejected.v1.json").read_text())
    name, back = new_codec.decode(old_codec.encode("lead.rejected", ev))
    assert back["severity"] == "normal" and back["reasons"] == ev["reasons"]


def test_the_codec_is_registered_with_faust():
    from faust.serializers import codecs

    from streams.faust_codec import NAME, register
    register()
    ev = json.loads((SCHEMA_DIR / "lead" / "examples" / "accepted.v1.json").read_text())
    data = codecs.dumps(NAME, ev)
    assert data == default_codec().encode("lead.accepted", ev)
    assert codecs.loads(NAME, data)["lead_id"] == ev["lead_id"]


def test_emitters_label_events_with_the_newest_schema_version():
    from domain.schema_labels import schema_label
    for name, v in default_codec().latest.items():
        assert schema_label(name) == v.label


def test_decode_if_reads_only_the_named_schemas_and_still_refuses_what_is_not_avro():
    codec, names = default_codec(), {v.name for v in load_all()}
    for v in load_all():
        data = _written_with(v, _example(v))
        assert codec.decode_if(data, {v.name}) == codec.decode(data)
        assert codec.decode_if(data, names - {v.name}) is None
    with pytest.raises(DecodeError):
        codec.decode_if(b"{\"not\": \"avro\"}", names)


def test_every_schema_a_trigger_can_start_on_is_named_in_trigger_sources():
    """The replay reads only TRIGGER_SOURCES' bodies for the trigger histories: a schema left out
    of it that as_trigger_event reads would be missing from a rebuilt history."""
    from domain.product_events import TRIGGER_SOURCES, as_trigger_event
    codec = default_codec()
    for v in load_all():
        name, ev = codec.decode(_written_with(v, _example(v)))
        ev = {**ev, "is_bot": False, "revision": 0, "channel": "email"}
        assert (as_trigger_event(name, ev) is not None) == (name in TRIGGER_SOURCES), name
