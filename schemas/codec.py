"""Avro single-object encoding for every event, with every published schema version.

A message is `C3 01` + the writer schema's CRC-64-AVRO fingerprint (8 bytes, little
endian) + the Avro binary body. The fingerprint names the writer schema, so any version
ever published can be read without a registry server; the reader schema is always the
newest version of that event, so old messages resolve into the current shape.
"""
from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

from schemas.avro_reader import compile_reader
from schemas.avro_subset import Unsupported
from schemas.avro_writer import compile_writer

SCHEMA_DIR = Path(__file__).resolve().parent
MARKER = b"\xc3\x01"
_FILE = re.compile(r"^(?P<event>[a-z_.]+)\.v(?P<version>\d+)\.avsc$")


class DecodeError(ValueError):
    """The bytes are not a single-object-encoded event we know."""


@dataclass(frozen=True)
class SchemaVersion:
    name: str  # e.g. "lead.submitted"
    version: int
    raw: dict
    parsed: dict
    fingerprint: bytes

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


def _load(path: Path, aggregate: str) -> SchemaVersion:
    m = _FILE.match(path.name)
    if not m:
        raise ValueError(f"schema file {path} is not named EVENT.vN.avsc")
    raw = json.loads(path.read_text())
    # keep fastavro's "parsed" marker: without it every read and write parses the schema again
    parsed = parse_schema(raw)
    # fastavro gives the fingerprint as the little-endian bytes the spec puts on the wire
    fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(raw), "CRC-64-AVRO"))
    return SchemaVersion(f"{aggregate}.{m['event']}", int(m["version"]), raw, parsed, fp)


def load_all(root: Path = SCHEMA_DIR) -> list[SchemaVersion]:
    """Every published schema version under schemas/<aggregate>/."""
    found = []
    for agg_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")):
        for f in sorted(agg_dir.glob("*.avsc")):
            found.append(_load(f, agg_dir.name))
    return found


class Codec:
    """Encodes an event dict with the newest schema of its name; decodes any version."""

    def __init__(self, versions: list[SchemaVersion]):
        self.by_fingerprint = {v.fingerprint: v for v in versions}
        self.latest: dict[str, SchemaVersion] = {}
        for v in sorted(versions, key=lambda v: v.version):
            self.latest[v.name] = v
        self._headers = {name: MARKER + v.fingerprint for name, v in self.latest.items()}
        self._writers, self._readers = {}, {}
        for name, v in self.latest.items():
            try:
                self._writers[name] = compile_writer(v.raw)
                self._readers[v.fingerprint] = compile_reader(v.raw)
            except Unsupported:
                pass  # fastavro writes and reads this one

    def encode(self, name: str, event: dict) -> bytes:
        """Single-object encoding of `event` with the newest version of schema `name`."""
        writer = self._writers.get(name)
        if writer is not None:
            buf = bytearray(self._headers[name])
            try:
                writer(event, buf)
                return bytes(buf)
            except Exception:  # noqa: BLE001 - a value the closures do not take: fastavro decides
                pass
        return self._encode_slow(name, event)

    def _encode_slow(self, name: str, event: dict) -> bytes:
        v = self.latest.get(name)
        if v is None:
            raise KeyError(f"no schema named {name!r}")
        buf = io.BytesIO()
        buf.write(self._headers[name])
        schemaless_writer(buf, v.parsed, event)
        return buf.getvalue()

    def writer_of(self, data: bytes) -> SchemaVersion:
        """The schema version that wrote these bytes."""
        if len(data) < 10 or data[:2] != MARKER:
            raise DecodeError("not Avro single-object encoding (missing C3 01 marker)")
        v = self.by_fingerprint.get(bytes(data[2:10]))
        if v is None:
            raise DecodeError(f"unknown schema fingerprint {bytes(data[2:10]).hex()}")
        return v

    def decode_if(self, data: bytes, names) -> tuple[str, dict] | None:
        """(schema name, event) when a schema named in `names` wrote these bytes; None, without
        reading the body, when another did (a reader that wants a few kinds of a busy topic)."""
        if self.writer_of(data).name not in names:
            return None
        return self.decode(data)

    def decode(self, data: bytes) -> tuple[str, dict]:
        """(schema name, event) read into the newest version of that schema."""
        writer = self.writer_of(data)
        compiled = self._readers.get(bytes(data[2:10]))
        if compiled is not None:  # the newest version wrote it: no resolution to do
            if data.__class__ is not bytes:  # a memoryview or bytearray: slices must be bytes
                data = bytes(data)
            try:
                event, end = compiled(data, 10)
                if end == len(data):
                    return writer.name, event
            except Exception:  # noqa: BLE001 - odd bytes: fastavro reads them or says what is wrong
                pass
        reader = self.latest[writer.name]
        try:
            buf = io.BytesIO(data)
            buf.seek(10)
            event = schemaless_reader(buf, writer.parsed,
                                      None if reader is writer else reader.parsed)
        except Exception as exc:  # fastavro raises many types on corrupt bodies
            raise DecodeError(f"corrupt {writer.label} body: {exc}") from exc
        if buf.tell() != len(data):
            raise DecodeError(f"{len(data) - buf.tell()} trailing bytes after {writer.label} body")
        return writer.name, event


_default: Codec | None = None


def default_codec() -> Codec:
    """The codec over every schema in this repository, built once."""
    global _default
    if _default is None:
        _default = Codec(load_all())
    return _default
