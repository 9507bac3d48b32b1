"""DKIM signing of outgoing mail with each brand's own keys (RFC 6376; Ed25519: RFC 8463).

Mailbox providers (Gmail's and Yahoo's 2024 bulk-sender rules) want a DKIM signature whose d=
is aligned with the From domain, and RFC 8058 one-click unsubscribe counts only when the
signature covers List-Unsubscribe and List-Unsubscribe-Post. Every adapter that hands a whole
MIME message to a server (our SMTP relay, SES raw, Mailgun's MIME endpoint) passes it through
`DkimSigner.sign` just before it goes; providers that build the message themselves from JSON
(SendGrid, Postmark) sign it with the key the brand set up with them.

Which keys sign is live configuration (the brand's `dkim` list, control plane); the keys
themselves come from the environment or the secret store (`KeyLoader`), never from Kafka. A
brand with DKIM configured whose key cannot be read gets no unsigned mail: `DkimUnavailable`
is turned into a transient failure by the adapter, so the message waits instead of going out
in a form receivers would reject under DMARC.
"""
from __future__ import annotations

import asyncio
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import getaddresses
from pathlib import Path
from typing import Callable

from prometheus_client import Counter

from channels.dkim_signature import SignatureError, finished_headers, load_signer, signature_inputs

from domain.tenants import TenantBook

# Signed headers; each listed once more than it occurs ("oversigned"), so nobody on the way
# can add a second From, Subject or List-Unsubscribe without breaking the signature.
SIGNED_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post",
                  "List-Id", "Feedback-ID", "Auto-Submitted", "MIME-Version", "Content-Type")
OVERSIGNED = ("From", "To", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Id")
# Canonicalization relaxed/relaxed (survives the re-folding relays do): channels/dkim_signature.

SIGNED = Counter("leadstream_dkim_signatures_total", "DKIM signatures added", ["domain", "algorithm"])
UNAVAILABLE = Counter("leadstream_dkim_unavailable_total", "Messages held back: a brand's DKIM key could not be read",
                      ["domain"])

_FROM_LINE = re.compile(rb"^From:[ \t]*([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", re.IGNORECASE | re.MULTILINE)


class DkimUnavailable(Exception):
    """The brand signs with DKIM but a key cannot be loaded or used: do not send unsigned."""


@dataclass(frozen=True)
class SigningKey:
    """A loaded key, ready to sign for one domain and selector."""

    domain: str
    selector: str
    algorithm: str  # "rsa-sha256" | "ed25519-sha256"
    private: bytes  # PEM (RSA) or the base64 32-byte seed (Ed25519), as dkimpy takes them


class KeyLoader:
    """Reads key material named `env:NAME` or `file:PATH` (relative to the secrets folder)."""

    def __init__(self, secrets_dir: Path, environ: dict | None = None):
        self.secrets_dir = Path(secrets_dir)
        self.environ = os.environ if environ is None else environ
        self._cache: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def load(self, ref: str) -> bytes:
        """The key bytes `ref` names; DkimUnavailable with the reason when they cannot be read."""
        with self._lock:
            if ref in self._cache:
                return self._cache[ref]
        kind, _, name = ref.partition(":")
        if kind == "env":
            value = self.environ.get(name, "")
            if not value.strip():
                raise DkimUnavailable(f"DKIM key {ref}: environment variable {name} is not set")
            data = value.strip().encode()
        elif kind == "file":
            path = Path(name) if Path(name).is_absolute() else self.secrets_dir / name
            try:
                data = path.read_bytes().strip()
            except OSError as exc:
                raise DkimUnavailable(f"DKIM key {ref}: cannot read {path}: {exc.strerror or exc}") from None
        else:
            raise DkimUnavailable(f"DKIM key {ref}: say env:NAME or file:PATH")
        with self._lock:
            self._cache[ref] = data
        return data


def from_domain(raw: bytes) -> str:
    """The domain of the From address in a message's header block ("" when there is none)."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    m = _FROM_LINE.search(head)
    if not m:
        return ""
    value = m.group(1).decode("ascii", "replace").replace("\r\n", "")
    addresses = [addr for _, addr in getaddresses([value]) if "@" in addr]
    return addresses[0].rpartition("@")[2].lower() if addresses else ""


def keys_by_domain(book: TenantBook) -> dict[str, list[tuple[str, str, str, str]]]:
    """From domain -> the (d= domain, selector, algorithm, key reference) that sign its mail."""
    out: dict[str, list[tuple[str, str, str, str]]] = {}
    for tenant in book.tenants.values():
        brand = tenant.brand
        sender = brand.from_address.rpartition("@")[2].lower()
        for k in brand.dkim:
            entry = (brand.dkim_domain(k), k.selector, k.algorithm, k.key)
            if entry not in out.setdefault(sender, []):
                out[sender].append(entry)
    return out


def sign_message(raw: bytes, keys: list[SigningKey]) -> bytes:
    """The message with one DKIM-Signature per key prepended (RSA and Ed25519 side by side)."""
    return finished(keys, finished_headers(signing_inputs(raw, keys))) + raw


def signing_inputs(raw: bytes, keys: list[SigningKey]) -> list:
    """What each key signs (channels.dkim_signature.signature_inputs); DkimUnavailable if a key
    cannot sign or the message cannot be signed."""
    signers = []
    for k in keys:
        try:
            signers.append(load_signer(k.domain, k.selector, k.algorithm, k.private))
        except SignatureError as exc:
            raise DkimUnavailable(f"DKIM key {k.selector}._domainkey.{k.domain}: {exc}") from None
    try:
        return signature_inputs(raw, signers, SIGNED_HEADERS + OVERSIGNED)
    except SignatureError as exc:
        raise DkimUnavailable(f"DKIM signing for {keys[0].domain}: {exc}") from None


def finished(keys: list[SigningKey], headers: bytes) -> bytes:
    """The signature headers, counted per key."""
    for key in keys:
        SIGNED.labels(key.domain, key.algorithm).inc()
    return headers


class DkimSigner:
    """Signs each message with the keys its brand configured; unchanged when it has none."""

    def __init__(self, book: Callable[[], TenantBook], loader: KeyLoader):
        self._book = book
        self._loader = loader
        self._index: tuple[TenantBook, dict] | None = None  # (the book it was built from, index)
        self._rsa: ThreadPoolExecutor | None = None  # sign_async's thread, started on first use

    def keys_for(self, domain: str) -> list[SigningKey]:
        """The loaded keys that sign mail from `domain` (empty: the brand does not sign)."""
        book = self._book()
        if self._index is None or self._index[0] is not book:
            self._index = (book, keys_by_domain(book))
        refs = self._index[1].get(domain, [])
        try:
            return [SigningKey(d, sel, alg, self._loader.load(ref)) for d, sel, alg, ref in refs]
        except DkimUnavailable:
            UNAVAILABLE.labels(domain).inc()
            raise

    def sign(self, raw: bytes) -> bytes:
        """`raw` with the brand's DKIM signatures prepended; DkimUnavailable if a key is missing."""
        keys = self.keys_for(from_domain(raw))
        return sign_message(raw, keys) if keys else raw

    async def sign_async(self, raw: bytes) -> bytes:
        """`sign`, with the private-key operations on this signer's own thread: an RSA-2048
        signature is ~0.3 ms of a 25 KB email's ~2 ms in the sender (py-spy on ./dev bench
        send) and releases the GIL, so the event loop goes on with other messages meanwhile."""
        keys = self.keys_for(from_domain(raw))
        if not keys:
            return raw
        inputs = signing_inputs(raw, keys)
        if self._rsa is None:
            self._rsa = ThreadPoolExecutor(1, thread_name_prefix="dkim")
        headers = await asyncio.get_running_loop().run_in_executor(self._rsa, finished_headers, inputs)
        return finished(keys, headers) + raw
