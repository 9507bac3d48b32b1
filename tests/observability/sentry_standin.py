"""A local stand-in for Sentry's ingest API: envelope and store endpoints, real wire format."""
from __future__ import annotations

import gzip
import json
import re
import threading
import zlib
from dataclasses import dataclass, field
from typing import Any

from tests.observability.http_standin import QuietHandler, StandinServer

ROUTE = re.compile(r"^/api/(?P<project>\d+)/(?P<kind>envelope|store)/?(?:\?.*)?$")


@dataclass
class SentryState:
    """What the stand-in accepted, and the key it insists on."""

    public_key: str
    events: list[dict[str, Any]] = field(default_factory=list)
    items: list[tuple[str, Any]] = field(default_factory=list)  # (item type, payload)
    raw_bodies: list[bytes] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def parse_auth(header: str) -> dict[str, str]:
    """Fields of an X-Sentry-Auth header: 'Sentry sentry_key=..., sentry_version=7, ...'."""
    if not header.startswith("Sentry "):
        return {}
    pairs = (part.strip().split("=", 1) for part in header[len("Sentry "):].split(","))
    return {p[0]: p[1] for p in pairs if len(p) == 2}


def decompress(body: bytes, encoding: str) -> bytes:
    """The body with its Content-Encoding undone."""
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "br":
        import brotli  # only present when the SDK would choose it
        return brotli.decompress(body)
    if encoding in ("", "identity"):
        return body
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


def parse_envelope(data: bytes) -> tuple[dict[str, Any], list[tuple[dict[str, Any], bytes]]]:
    """An envelope's header and its (item header, payload) pairs.

    Wire format: a JSON header line, then per item a JSON header line and a payload that is
    either `length` bytes or runs to the next newline.
    """
    header_line, _, rest = data.partition(b"\n")
    items = []
    while rest.strip():
        item_line, _, rest = rest.partition(b"\n")
        item_header = json.loads(item_line)
        if "length" in item_header:
            n = item_header["length"]
            payload, rest = rest[:n], rest[n:]
            rest = rest[1:] if rest.startswith(b"\n") else rest
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((item_header, payload))
    return json.loads(header_line), items


class SentryHandler(QuietHandler):
    """Accepts POST /api/<project>/envelope/ and /store/ like Sentry's ingest does."""

    def do_POST(self) -> None:
        state: SentryState = self.server.state  # type: ignore[attr-defined]
        route = ROUTE.match(self.path)
        body = self.body()
        if not route:
            return self.reply(404, b'{"detail":"unknown route"}')
        auth = parse_auth(self.headers.get("X-Sentry-Auth", ""))
        if auth.get("sentry_key") != state.public_key:
            with state.lock:
                state.rejected.append(auth.get("sentry_key", "<none>"))
            return self.reply(401, b'{"detail":"bad sentry_key"}')
        data = decompress(body, self.headers.get("Content-Encoding", ""))
        with state.lock:
            state.raw_bodies.append(data)
            if route["kind"] == "store":
                state.events.append(json.loads(data))
            else:
                self._record_envelope(state, data)
        self.reply(200, b'{"id":"00000000000000000000000000000000"}', {"Content-Type": "application/json"})

    def _record_envelope(self, state: SentryState, data: bytes) -> None:
        _, items = parse_envelope(data)
        for item_header, payload in items:
            kind = item_header.get("type", "")
            decoded = json.loads(payload) if payload.strip().startswith((b"{", b"[")) else payload
            state.items.append((kind, decoded))
            if kind == "event":
                state.events.append(decoded)


def start_sentry_standin(public_key: str = "publickey") -> tuple[StandinServer, SentryState]:
    """A running stand-in and its recorded state; call server.stop() when done."""
    state = SentryState(public_key=public_key)
    return StandinServer(SentryHandler, state).start(), state
