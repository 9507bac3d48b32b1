"""DKIM: every signature verifies with dkimpy (what receivers run) against the records
`./dev dns` publishes, and any change to a signed header or the body breaks it."""
from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import dkim
import httpx
import pytest

from channels.base import EmailMessage
from channels.dkim import (
    SIGNED_HEADERS, DkimSigner, DkimUnavailable, KeyLoader, SigningKey, from_domain,
    sign_message,
)
from channels.sendgrid import SendGridMailer
from channels.ses import SesMailer
from channels.smtp_pool import SmtpPool, mime_bytes
from domain.tenants import TenantBook
from stack.mail_dns import ensure_keys, generate_key, public_key_b64, records, txt_lookup, zone, zone_text
from streams.settings import Settings, load_tenants

DOMAIN = "jobs.example"


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("dkim")
    out = {"rsa": folder / "rsa.pem", "ed": folder / "ed.key"}
    generate_key(out["rsa"], "rsa-sha256")
    generate_key(out["ed"], "ed25519-sha256")
    return out


def dns_for(keys: dict[str, Path]) -> dict[str, str]:
    return {f"r1._domainkey.{DOMAIN}": f"v=DKIM1; k=rsa; p={public_key_b64(keys['rsa'].read_bytes(), 'rsa-sha256')}",
            f"e1._domainkey.{DOMAIN}":
                f"v=DKIM1; k=ed25519; p={public_key_b64(keys['ed'].read_bytes(), 'ed25519-sha256')}"}


def message(n: int = 1, **changes) -> EmailMessage:
    fields = dict(send_id=f"s{n}", from_addr=f"alerts@{DOMAIN}", from_name="Jobs Team", to_addr=f"lead{n}@example.com",
                  subject=f"3 new jobs for you ({n})", html=f"<p>Hi {n}</p>", text=f"Hi {n}",
                  headers={"List-Unsubscribe": f"<https://t.example/u/{n}>, <mailto:u@{DOMAIN}?subject=unsubscribe>",
                           "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                           "List-Id": f'"Jobs daily" <daily.{DOMAIN}>',
                           "Feedback-ID": "daily:daily:jobs:leadstream"})
    fields.update(changes)
    return EmailMessage(**fields)


def signed(keys, raw: bytes | None = None) -> bytes:
    raw = raw or mime_bytes(message(), DOMAIN)[0]
    return sign_message(raw, [SigningKey(DOMAIN, "r1", "rsa-sha256", keys["rsa"].read_bytes()),
                              SigningKey(DOMAIN, "e1", "ed25519-sha256", keys["ed"].read_bytes())])


def verdicts(raw: bytes, zone_map: dict[str, str]) -> list[bool]:
    """One verification result per DKIM-Signature in the message, as a receiver computes it."""
    d = dkim.DKIM(raw)
    count = sum(1 for name, _ in d.headers if name.lower() == b"dkim-signature")
    return [_verify(d, i, zone_map) for i in range(count)]


def _verify(d: dkim.DKIM, idx: int, zone_map: dict[str, str]) -> bool:
    try:
        return bool(d.verify(idx=idx, dnsfunc=txt_lookup(zone_map)))
    except dkim.DKIMException:  # a body hash mismatch raises; dkim.verify() calls it a failure too
        return False


def test_rsa_and_ed25519_signatures_verify_and_cover_the_headers_receivers_require(keys):
    raw = signed(keys)
    assert verdicts(raw, dns_for(keys)) == [True, True]
    sigs = re.findall(rb"DKIM-Signature:(.*?)(?=\r\n\S)", raw, re.S)
    algs = {re.search(rb"a=([\w-]+)", s).group(1) for s in sigs}
    assert algs == {b"rsa-sha256", b"ed25519-sha256"}
    h = re.search(rb"h=([^;]+);", sigs[0].replace(b"\r\n", b"")).group(1).decode().replace(" ", "").split(":")
    for name in ("from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post",
                 "list-id", "feedback-id"):
        assert name in h
    assert h.count("from") == 2  # oversigned


@pytest.mark.parametrize("header, new", [
    (b"Subject", b"Subject: 3 new jobs for you (1) - you won a prize"),
    (b"List-Unsubscribe", b"List-Unsubscribe: <https://evil.example/u/1>"),
    (b"List-Unsubscribe-Post", b"List-Unsubscribe-Post: List-Unsubscribe=Nope"),
    (b"Feedback-ID", b"Feedback-ID: other:other:other:x"),
    (b"To", b"To: someone.else@example.com"),
])
def test_a_tampered_signed_header_fails_verification(keys, header, new):
    raw = signed(keys)
    tampered = re.sub(rb"(?m)^" + header + rb":.*$", new, raw, count=1)
    assert tampered != raw
    assert verdicts(tampered, dns_for(keys)) == [False, False]


def test_a_second_from_or_a_changed_body_fails_verification(keys):
    raw = signed(keys)
    head, body = raw.split(b"\r\n\r\n", 1)
    assert verdicts(head + b"\r\nFrom: ceo@bank.example\r\n\r\n" + body, dns_for(keys)) == [False, False]
    assert verdicts(raw.replace(b"Hi 1", b"Hi 2"), dns_for(keys)) == [False, False]


def test_a_signature_does_not_verify_against_another_key_or_no_record(keys, tmp_path):
    raw = signed(keys)
    other = tmp_path / "other.pem"
    generate_key(other, "rsa-sha256")
    wrong = dict(dns_for(keys))
    wrong[f"r1._domainkey.{DOMAIN}"] = f"v=DKIM1; k=rsa; p={public_key_b64(other.read_bytes(), 'rsa-sha256')}"
    assert verdicts(raw, wrong) == [False, True]
    assert verdicts(raw, {}) == [False, False]


ODD_MESSAGES = [
    # folded and tabbed headers, trailing whitespace
    b"From: Jobs Team\r\n\t<alerts@" + DOMAIN.encode() + b">\r\nTo:  lead@example.com \r\nSubject:\tHi   there\t\r\n"
    b"Date: Mon, 1 Jun 2026 08:00:00 +0000\r\n\r\nline one  \r\n\tindented\t\ttabs\r\n\r\n\r\n",
    # two From fields (the lower one is signed), no body at all, bare LF line ends
    b"From: a@" + DOMAIN.encode() + b"\nFrom: b@" + DOMAIN.encode() + b"\nSubject: x\n\n",
    b"From: a@" + DOMAIN.encode() + b"\r\nSubject: no body\r\n",
    # a body without a final line end (SMTP's DATA adds one), and one of only blank lines
    b"From: a@" + DOMAIN.encode() + b"\r\nSubject: y\r\n\r\nlast line without CRLF  ",
    b"From: a@" + DOMAIN.encode() + b"\r\nSubject: z\r\n\r\n\r\n\r\n \r\n",
]


def on_the_wire(raw: bytes) -> bytes:
    """The message as a receiver gets it: SMTP's DATA ends the last line."""
    return raw if raw.endswith(b"\n") else raw + b"\r\n"


@pytest.mark.parametrize("raw", ODD_MESSAGES)
def test_our_signatures_verify_with_dkimpy_on_odd_messages(keys, raw):
    """The signer canonicalizes by hand (dkimpy's signing was 62 % of the priority sender's time);
    dkimpy, as a receiver, must agree on every edge of relaxed/relaxed."""
    assert verdicts(on_the_wire(signed(keys, raw)), dns_for(keys)) == [True, True]


@pytest.mark.parametrize("raw", ODD_MESSAGES)
def test_the_body_hash_is_dkimpys(keys, raw):
    from dkim.canonicalization import Relaxed
    from channels.dkim_signature import relaxed_body, split_message
    theirs = Relaxed.canonicalize_body(dkim.rfc822_parse(on_the_wire(raw))[1])
    assert relaxed_body(split_message(raw)[1]) == theirs


def test_a_key_of_the_wrong_kind_is_refused(keys):
    with pytest.raises(DkimUnavailable, match="r1._domainkey"):
        sign_message(mime_bytes(message(), DOMAIN)[0], [SigningKey(DOMAIN, "r1", "rsa-sha256", b"not pem")])
    with pytest.raises(DkimUnavailable, match="e1._domainkey"):
        sign_message(mime_bytes(message(), DOMAIN)[0],
                     [SigningKey(DOMAIN, "e1", "ed25519-sha256", keys["rsa"].read_bytes())])


def test_from_domain_reads_encoded_and_folded_from_headers():
    assert from_domain(b"To: a@x.example\r\nFrom: =?utf-8?q?J=C3=B6bs?= <alerts@Jobs.Example>\r\n\r\nbody") == \
        "jobs.example"
    assert from_domain(b"From: \"A, B\"\r\n <a@b.example>\r\nTo: c@d.example\r\n\r\n") == "b.example"
    assert from_domain(b"To: c@d.example\r\n\r\nFrom: x@y.example") == ""  # a body line is not a header


def book_with(dkim_keys: list[dict], from_address: str = f"alerts@{DOMAIN}") -> TenantBook:
    return TenantBook.model_validate({"tenants": {"jobs": {
        "name": "Jobs", "channels": ["email"], "api_key_sha256": ["0" * 64], "lists": {"daily": {"channel": "email"}},
        "brand": {"from_address": from_address, "dkim": dkim_keys}}}})


def test_the_signer_uses_the_brands_keys_from_files_and_the_environment(keys):
    ed_seed = keys["ed"].read_text().strip()
    book = book_with([{"selector": "r1", "key": f"file:{keys['rsa'].name}"},
                      {"selector": "e1", "algorithm": "ed25519-sha256", "key": "env:TEST_DKIM_ED"}])
    signer = DkimSigner(lambda: book, KeyLoader(keys["rsa"].parent, environ={"TEST_DKIM_ED": ed_seed}))
    raw = signer.sign(mime_bytes(message(), DOMAIN)[0])
    assert verdicts(raw, dns_for(keys)) == [True, True]
    other = mime_bytes(message(from_addr="x@unsigned.example"), "unsigned.example")[0]
    assert signer.sign(other) == other  # a brand without DKIM: as it was


def test_a_missing_key_is_refused_not_sent_unsigned(keys, tmp_path):
    signer = DkimSigner(lambda: book_with([{"selector": "r1", "key": "file:absent.pem"}]), KeyLoader(tmp_path))
    with pytest.raises(DkimUnavailable, match="absent.pem"):
        signer.sign(mime_bytes(message(), DOMAIN)[0])
    signer = DkimSigner(lambda: book_with([{"selector": "r1", "key": "env:NOT_SET_ANYWHERE"}]),
                        KeyLoader(tmp_path, environ={}))
    with pytest.raises(DkimUnavailable, match="NOT_SET_ANYWHERE"):
        signer.sign(mime_bytes(message(), DOMAIN)[0])
    (tmp_path / "garbage.pem").write_text("not a key")
    signer = DkimSigner(lambda: book_with([{"selector": "r1", "key": "file:garbage.pem"}]), KeyLoader(tmp_path))
    with pytest.raises(DkimUnavailable):
        signer.sign(mime_bytes(message(), DOMAIN)[0])


@pytest.mark.parametrize("brand, problem", [
    ({"from_address": "a@jobs.example", "dkim": [{"selector": "r1", "key": "file:x", "domain": "other.example"}]},
     "not aligned"),
    ({"dkim": [{"selector": "Bad_Selector", "key": "file:x"}]}, "selector"),
    ({"dkim": [{"selector": "r1", "key": "inline-private-key"}]}, "key"),
    ({"dkim": [{"selector": "r1", "key": "file:x"}, {"selector": "r1", "key": "file:y"}]}, "twice"),
    ({"dkim": [{"selector": "r1", "key": "file:x", "algorithm": "rsa-sha1"}]}, "algorithm"),
])
def test_bad_dkim_configuration_is_refused_with_its_reason(brand, problem):
    with pytest.raises(ValueError, match=problem):
        TenantBook.model_validate({"tenants": {"jobs": {"name": "Jobs", "api_key_sha256": ["0" * 64], "lists": {"daily": {"channel": "email"}}, "brand": brand}}})


async def test_the_smtp_pool_delivers_signed_mail_and_holds_mail_whose_key_is_missing(keys, tmp_path):
    from stack.standins import smtp_sink
    port, _, stop = smtp_sink.start(port=0, folder=tmp_path / "mail")
    try:
        book = book_with([{"selector": "r1", "key": f"file:{keys['rsa'].name}"},
                          {"selector": "e1", "algorithm": "ed25519-sha256", "key": f"file:{keys['ed'].name}"}])
        pool = SmtpPool("127.0.0.1", port, sign=DkimSigner(lambda: book, KeyLoader(keys["rsa"].parent)).sign)
        [ok] = await pool.send_many([message(1)])
        broken = DkimSigner(lambda: book, KeyLoader(tmp_path / "nowhere"))
        pool_without_keys = SmtpPool("127.0.0.1", port, sign=broken.sign)
        [held] = await pool_without_keys.send_many([message(2)])
        await pool.close()
        await pool_without_keys.close()
        delivered = [p.read_bytes() for p in (tmp_path / "mail").glob("*.eml")]
    finally:
        stop()
    assert ok.ok and held.transient and "cannot read" in held.error
    [raw] = delivered  # the unsigned one never left
    assert b"lead1@example.com" in raw and verdicts(raw, dns_for(keys)) == [True, True]


@pytest.fixture(scope="module")
def standin():
    from stack.standins import providers
    url, stop = providers.start(port=0)
    yield url
    stop()


async def test_ses_sends_our_signed_mime_as_raw_content_and_delivers_it_unchanged(keys, standin):
    book = book_with([{"selector": "r1", "key": f"file:{keys['rsa'].name}"}])
    mailer = SesMailer("AKIDSTANDIN", "standin/secret+key", "eu-west-1", standin,
                       sign=DkimSigner(lambda: book, KeyLoader(keys["rsa"].parent)).sign)
    [outcome] = await mailer.send_many([message(7)])
    await mailer.close()
    assert outcome.ok
    [accepted] = [a for a in httpx.get(f"{standin}/sent/ses").json() if a["id"] == outcome.provider_id]
    assert "Raw" in accepted["request"]["Content"] and accepted["subject"] == "3 new jobs for you (7)"
    raw = base64.b64decode(accepted["request"]["Content"]["Raw"]["Data"])
    assert raw.startswith(b"DKIM-Signature:") and verdicts(raw, dns_for(keys)) == [True]


async def test_sendgrid_gets_no_reserved_header_and_its_stand_in_signs_as_the_provider(standin):
    s = Settings()
    mailer = SendGridMailer("SG.standin-key", standin)
    [outcome] = await mailer.send_many([message(8, headers={**message().headers, "From": "x", "To": "y"})])
    await mailer.close()
    assert outcome.ok, outcome.error
    [accepted] = [a for a in httpx.get(f"{standin}/sent/sendgrid").json() if a["to"] == ["lead8@example.com"]]
    assert not {"From", "To"} & set(accepted["request"]["headers"])
    from stack.mail_dns import PROVIDER_SELECTORS, provider_key_path
    key = provider_key_path(s, "sendgrid", DOMAIN).read_bytes()
    zone_map = {f"{PROVIDER_SELECTORS['sendgrid']}._domainkey.{DOMAIN}":
                f"v=DKIM1; k=rsa; p={public_key_b64(key, 'rsa-sha256')}"}
    assert verdicts(accepted["raw"].encode(), zone_map) == [True]


def test_dev_dns_prints_spf_dkim_and_dmarc_for_every_email_brand(tmp_path):
    s = Settings(secrets_dir=tmp_path)
    book = load_tenants(s.tenants_file)
    made = ensure_keys(s, book)
    assert made and ensure_keys(s, book) == []  # generated once
    recs = records(s, book)
    assert set(recs) == {t for t, v in book.tenants.items() if "email" in v.channels}
    z = zone(s, book)
    for tenant in recs:
        brand = book.tenants[tenant].brand
        domain = brand.from_address.rpartition("@")[2]
        assert z[domain].startswith("v=spf1 ") and z[domain].endswith(" -all")
        assert z[f"_dmarc.{domain}"].startswith("v=DMARC1; p=")
        for k in brand.dkim:
            assert re.fullmatch(r"v=DKIM1; k=(rsa|ed25519); p=[A-Za-z0-9+/=]+", z[f"{k.selector}._domainkey.{domain}"])
    text = zone_text(recs)
    assert all(len(chunk) <= 255 for chunk in re.findall(r'"([^"]*)"', text))
    assert "ls2026e._domainkey.jobsnearby.example. 3600 IN TXT" in text


def test_production_refuses_an_http_tracking_url_with_a_clear_error():
    from tests.streams.test_production_settings import SAFE
    with pytest.raises(ValueError, match="tracked links and the one-click unsubscribe must be https"):
        Settings(**{**SAFE, "tracking_base_url": "http://t.example"})
    assert Settings(**{**SAFE, "tracking_base_url": "https://t.example"}).deployment == "production"
    assert Settings(tracking_base_url="http://127.0.0.1:18081").deployment == "local"


def test_the_signed_header_list_names_every_header_the_issue_requires():
    required = {"From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post",
                "List-Id", "Feedback-ID"}
    assert required <= set(SIGNED_HEADERS)


@pytest.mark.parametrize("module", [["-m", "api.tracking"], ["-m", "runtime.worker", "intake"]])
def test_a_production_process_with_an_http_tracking_url_refuses_to_start(module):
    import os
    import subprocess
    import sys
    env = {**os.environ, "LEADSTREAM_DEPLOYMENT": "production", "LEADSTREAM_TRACKING_BASE_URL": "http://t.example",
           "LEADSTREAM_TRACKING_PORT": "0", "LEADSTREAM_METRICS_PORT": "0"}
    done = subprocess.run([sys.executable, *module], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "LEADSTREAM_TRACKING_BASE_URL is 'http://t.example'" in done.stderr
    assert "tracked links and the one-click unsubscribe must be https" in done.stderr
    assert "LEADSTREAM_TWILIO_AUTH_TOKEN is the local stand-in's public default" in done.stderr  # all listed at once
