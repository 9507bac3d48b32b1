"""The brands' mail authentication: demo DKIM keys, and the DNS records to publish.

    ./dev dns            SPF, DKIM and DMARC TXT records per brand, in zone-file form

`./dev up` calls `ensure_keys`: every `file:` DKIM key a brand names that does not exist yet
is generated under the secrets folder (RSA-2048 or Ed25519, as configured), and so is the
key each API provider that builds the message itself (SendGrid, Postmark) signs a brand's
mail with: their stand-ins sign as the real services do once a brand has authenticated its
domain with them (in production those records are the CNAMEs the provider gives you).

`zone(...)` is the same records as a name -> TXT map; `txt_lookup(zone)` answers dkimpy's
DNS queries from it, so the tests and the demo verify signatures exactly as a receiver does,
against what `./dev dns` tells the operator to publish.
"""
from __future__ import annotations

import base64
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from domain.tenants import TenantBook
from streams.settings import Settings

# providers that build and sign the MIME themselves: the selector their DKIM records use
PROVIDER_SELECTORS = {"sendgrid": "s1", "postmark": "pm2026"}
# SPF: who may send for the brand's domain, per provider it uses
SPF_MECHANISMS = {"smtp": "ip4:127.0.0.1", "sendgrid": "include:sendgrid.net", "ses": "include:amazonses.com",
                  "mailgun": "include:mailgun.org", "postmark": "include:spf.mtasv.net"}


@dataclass(frozen=True)
class TxtRecord:
    """One TXT record to publish, with why."""

    name: str  # fully qualified, no trailing dot
    value: str
    comment: str = ""


def generate_key(path: Path, algorithm: str) -> None:
    """A new private key at `path` (mode 600): PEM for RSA-2048, the base64 seed for Ed25519."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if algorithm == "ed25519-sha256":
        seed = ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        data = base64.b64encode(seed) + b"\n"
    else:
        data = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption())
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o600)
    tmp.replace(path)


def public_key_b64(private: bytes, algorithm: str) -> str:
    """The p= value of a key's DKIM record."""
    if algorithm == "ed25519-sha256":
        key = ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(private.strip()))
        return base64.b64encode(key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
    key = serialization.load_pem_private_key(private, password=None)
    return base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()


def provider_key_path(s: Settings, provider: str, domain: str) -> Path:
    """Where a provider stand-in keeps the key it signs a brand domain's mail with."""
    return s.secrets_dir / "dkim-providers" / provider / f"{domain}.pem"


def ensure_provider_key(s: Settings, provider: str, domain: str) -> Path:
    """The provider stand-in's key for `domain`, generated on first use."""
    path = provider_key_path(s, provider, domain)
    if not path.exists():
        generate_key(path, "rsa-sha256")
    return path


def _key_path(s: Settings, ref: str) -> Path | None:
    kind, _, name = ref.partition(":")
    if kind != "file":
        return None
    return Path(name) if Path(name).is_absolute() else s.secrets_dir / name


def _email_providers(tenant) -> set[str]:
    names = set(tenant.sending.email)
    for lst in tenant.lists.values():
        if lst.channel == "email":
            names.update(lst.providers)
    return names


def ensure_keys(s: Settings, book: TenantBook) -> list[Path]:
    """Generate every missing key the brands (and the signing providers' stand-ins) need."""
    made = []
    for tenant in book.tenants.values():
        if "email" not in tenant.channels:
            continue
        for k in tenant.brand.dkim:
            path = _key_path(s, k.key)
            if path is not None and not path.exists():
                generate_key(path, k.algorithm)
                made.append(path)
        domain = tenant.brand.from_address.rpartition("@")[2].lower()
        for provider in PROVIDER_SELECTORS:
            path = provider_key_path(s, provider, domain)
            if not path.exists():
                generate_key(path, "rsa-sha256")
                made.append(path)
    return made


def _read_private(s: Settings, ref: str) -> bytes | None:
    from channels.dkim import DkimUnavailable, KeyLoader
    try:
        return KeyLoader(s.secrets_dir).load(ref)
    except DkimUnavailable:
        return None


def brand_records(s: Settings, tenant) -> list[TxtRecord]:
    """SPF, DKIM (own keys and signing providers') and DMARC for one brand's From domain."""
    domain = tenant.brand.from_address.rpartition("@")[2].lower()
    providers = _email_providers(tenant)
    spf = " ".join(["v=spf1", *[SPF_MECHANISMS[p] for p in sorted(providers) if p in SPF_MECHANISMS], "-all"])
    out = [TxtRecord(domain, spf, f"SPF: the servers that may send for {domain}")]
    for k in tenant.brand.dkim:
        private = _read_private(s, k.key)
        kind = "ed25519" if k.algorithm == "ed25519-sha256" else "rsa"
        value = (f"v=DKIM1; k={kind}; p={public_key_b64(private, k.algorithm)}" if private
                 else f"v=DKIM1; k={kind}; p=<key {k.key} not readable here>")
        out.append(TxtRecord(f"{k.selector}._domainkey.{tenant.brand.dkim_domain(k)}", value,
                             f"DKIM, {k.algorithm}, signed by leadstream"))
    for provider, selector in PROVIDER_SELECTORS.items():
        path = provider_key_path(s, provider, domain)
        if provider in providers and path.exists():
            out.append(TxtRecord(f"{selector}._domainkey.{domain}",
                                 f"v=DKIM1; k=rsa; p={public_key_b64(path.read_bytes(), 'rsa-sha256')}",
                                 f"DKIM, signed by {provider} (production: the CNAME {provider} gives you)"))
    out.append(TxtRecord(f"_dmarc.{domain}", f"v=DMARC1; p=quarantine; adkim=r; aspf=r; pct=100; "
                                             f"rua=mailto:dmarc-reports@{domain}",
                         "DMARC: mail failing aligned SPF and DKIM is quarantined; aggregate reports to rua"))
    return out


def records(s: Settings, book: TenantBook) -> dict[str, list[TxtRecord]]:
    """Every email brand's records, by tenant id."""
    return {tid: brand_records(s, t) for tid, t in sorted(book.tenants.items()) if "email" in t.channels}


def zone(s: Settings, book: TenantBook) -> dict[str, str]:
    """name -> TXT value of every record (what a resolver would answer after publishing)."""
    return {r.name: r.value for recs in records(s, book).values() for r in recs}


def txt_lookup(zone_map: dict[str, str]):
    """A dkimpy `dnsfunc` answering from `zone_map` (None for names not in it)."""
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        value = zone_map.get(name.decode().rstrip(".").lower())
        return value.encode() if value is not None else None
    return lookup


# where each email sink keeps the message as delivered: the SMTP server's files, and the field
# of each provider stand-in's /sent record holding the MIME it delivered
SENT_MIME_FIELD = {"ses": "raw", "sendgrid": "raw", "postmark": "raw", "mailgun": "mime"}


def delivered_mail(mail_dir: Path, providers_url: str) -> list[tuple[str, bytes]]:
    """(sink, raw message) of every email the SMTP server and the provider stand-ins delivered."""
    import httpx
    out = [("smtp", p.read_bytes()) for p in sorted(Path(mail_dir).glob("*.eml"))]
    for provider, field in SENT_MIME_FIELD.items():
        for m in httpx.get(f"{providers_url}/sent/{provider}", timeout=30).json():
            if m.get(field):
                out.append((provider, m[field].encode()))
    return out


def dkim_verdicts(raw: bytes, zone_map: dict[str, str]) -> list[bool]:
    """One result per DKIM-Signature of a message, checked as a receiver does (dkimpy)."""
    import dkim
    d = dkim.DKIM(raw)
    lookup = txt_lookup(zone_map)
    out = []
    for i in range(sum(1 for name, _ in d.headers if name.lower() == b"dkim-signature")):
        try:
            out.append(bool(d.verify(idx=i, dnsfunc=lookup)))
        except dkim.DKIMException:  # a body hash mismatch raises: a failure like any other
            out.append(False)
    return out


def zone_text(recs: dict[str, list[TxtRecord]]) -> str:
    """The records in zone-file form, long values split into 255-character strings."""
    lines = []
    for tenant, brand_recs in recs.items():
        lines.append(f"; --- {tenant} ---")
        for r in brand_recs:
            chunks = [r.value[i:i + 255] for i in range(0, len(r.value), 255)]
            value = " ".join(f'"{c}"' for c in chunks)
            lines.append(f"; {r.comment}")
            lines.append(f"{r.name}. 3600 IN TXT {value}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """./dev dns: print the records to publish for every brand of the live configuration (the
    tenant file when the configuration topic cannot be read)."""
    from streams.config_view import ConfigUnavailable
    from streams.settings import get_settings, load_tenants
    from runtime.deps import build
    s = get_settings()
    try:
        book, source = build(s).tenants, "the live configuration"
    except ConfigUnavailable as exc:
        book, source = load_tenants(s.tenants_file), f"{s.tenants_file} ({exc})"
    ensure_keys(s, book)
    print(f"; TXT records to publish for each brand's From domain, from {source}")
    print(zone_text(records(s, book)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
