"""SmtpPool against the real local SMTP sink (aiosmtpd on loopback)."""
from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from channels.base import EmailMessage
from services.sending.ports import Mailer
from channels.smtp_pool import WRAP_AT, SmtpPool, message_id, mime_bytes
from stack.standins import smtp_sink


@pytest.fixture
def sink(tmp_path: Path):
    port, controller, stop = smtp_sink.start(0, tmp_path / "mail")
    yield port, controller, tmp_path / "mail"
    stop()


def mail(i: int, to: str | None = None) -> EmailMessage:
    return EmailMessage(
        send_id=f"send-{i:04d}", from_addr="alerts@jobs.example", from_name="Jobs Ébauche",
        to_addr=to or f"lead{i}@example.com", subject=f"Nurse jobs near you — {i}",
        html=f"<p>Hello {i}, <a href='https://l.example/c/{i}'>3 new jobs</a> café</p>",
        text=f"Hello {i}, 3 new jobs: https://l.example/c/{i} café",
        headers={"List-Unsubscribe": f"<https://l.example/u/{i}>, <mailto:unsub+{i}@jobs.example>",
                 "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        tags={"tenant": "demo"},
    )


def read_eml(path: Path) -> email.message.EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


async def test_many_messages_over_few_connections_arrive_as_eml_with_both_parts(sink):
    port, controller, folder = sink
    pool = SmtpPool("127.0.0.1", port, size=3, timeout=5)
    assert isinstance(pool, Mailer)
    outcomes = await pool.send_many([mail(i) for i in range(60)])
    await pool.close()

    assert [o.send_id for o in outcomes] == [f"send-{i:04d}" for i in range(60)]
    assert all(o.ok and o.provider == "smtp" for o in outcomes)
    assert controller.connections <= 3 and pool.connections_opened <= 3
    assert controller.stored == 60 and controller.count("lead7@example.com") == 1
    files = sorted(folder.glob("*.eml"))
    assert len(files) == 60

    received = read_eml(folder / "send-0007@leadstream.local.eml")
    assert received["Message-ID"] == "<send-0007@leadstream.local>" == outcomes[7].provider_id
    assert received["Subject"] == "Nurse jobs near you — 7"
    assert received["From"].addresses[0].display_name == "Jobs Ébauche"
    assert received["To"] == "lead7@example.com"
    assert received["List-Unsubscribe"] == "<https://l.example/u/7>, <mailto:unsub+7@jobs.example>"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert received.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in received.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert "café" in received.get_body(("plain",)).get_content()
    assert "<a href='https://l.example/c/7'>" in received.get_body(("html",)).get_content()


async def test_550_recipient_is_permanent_451_transient_others_delivered(sink):
    port, controller, _ = sink
    controller.reject("bounce@example.com", 550)
    controller.reject("greylist@example.com", 451)
    batch = [mail(1), mail(2, "bounce@example.com"), mail(3), mail(4, "greylist@example.com"), mail(5)]
    pool = SmtpPool("127.0.0.1", port, size=2, timeout=5)
    outcomes = await pool.send_many(batch)
    await pool.close()

    by_id = {o.send_id: o for o in outcomes}
    assert by_id["send-0002"].permanent and "550" in by_id["send-0002"].error
    assert by_id["send-0004"].transient and "451" in by_id["send-0004"].error
    assert [by_id[f"send-000{i}"].ok for i in (1, 3, 5)] == [True, True, True]
    assert controller.counts == {"lead1@example.com": 1, "lead3@example.com": 1, "lead5@example.com": 1}
    assert pool.connections_opened <= 2  # a refused recipient does not cost the connection


async def test_421_is_transient_and_the_pool_opens_a_new_connection(sink):
    port, controller, _ = sink
    controller.reject("closing@example.com", 421)
    pool = SmtpPool("127.0.0.1", port, size=1, timeout=5)
    outcomes = await pool.send_many([mail(1, "closing@example.com"), mail(2), mail(3)])
    await pool.close()

    assert outcomes[0].transient and "421" in outcomes[0].error
    assert outcomes[1].ok and outcomes[2].ok
    assert controller.connections == 2  # the server closed the first one after 421


async def test_dropped_connections_are_transient_then_the_pool_reconnects(sink):
    port, controller, _ = sink
    pool = SmtpPool("127.0.0.1", port, size=2, timeout=5)
    assert all(o.ok for o in await pool.send_many([mail(i) for i in range(4)]))

    controller.drop_connections()
    dropped = await pool.send_many([mail(i) for i in range(10, 14)])
    assert all(o.transient for o in dropped), dropped

    controller.drop_connections(False)
    again = await pool.send_many([mail(i) for i in range(10, 14)])
    await pool.close()
    assert all(o.ok for o in again)
    assert controller.stored == 8


async def test_a_throttling_relay_is_transient_and_a_slow_one_still_delivers(sink):
    """The drill's provider fault writes the process sink's control.json: throttle answers MAIL
    FROM with 451 4.7.1, delay_s holds each DATA answer."""
    import json
    import time
    port, controller, folder = sink
    pool = SmtpPool("127.0.0.1", port, size=2, timeout=5)
    (folder / "control.json").write_text(json.dumps({"throttle": True}))
    throttled = await pool.send_many([mail(i) for i in range(2)])
    assert all(o.transient and "4.7.1" in (o.error or "") for o in throttled), throttled
    (folder / "control.json").write_text(json.dumps({"delay_s": 0.3}))
    t0 = time.monotonic()
    slow = await pool.send_many([mail(i) for i in range(2, 4)])
    took = time.monotonic() - t0
    (folder / "control.json").write_text("{}")
    await pool.close()
    assert all(o.ok for o in slow) and controller.stored == 2
    assert took >= 0.3  # held, not refused (a lower bound: the only way this can fail is no delay)


async def test_connection_closed_by_the_server_while_idle_is_replaced(sink):
    port, controller, _ = sink
    pool = SmtpPool("127.0.0.1", port, size=1, timeout=5, idle_check_s=0.0)  # NOOP before every reuse
    assert (await pool.send_many([mail(1)]))[0].ok
    controller.disconnect_all()
    outcome = (await pool.send_many([mail(2)]))[0]
    await pool.close()
    assert outcome.ok
    assert controller.connections == 2


async def test_nothing_listening_is_transient(tmp_path: Path):
    port, _, stop = smtp_sink.start(0, tmp_path)
    stop()  # the port is now closed
    outcome = (await SmtpPool("127.0.0.1", port, size=1, timeout=2).send_many([mail(1)]))[0]
    assert outcome.transient and outcome.error.startswith("connect:")


async def test_login_with_the_right_password_and_refused_with_a_wrong_one(tmp_path: Path):
    port, controller, stop = smtp_sink.start(0, tmp_path, credentials=("relay-user", "s3cret"))
    try:
        good = SmtpPool("127.0.0.1", port, size=1, username="relay-user", password="s3cret", timeout=5)
        assert (await good.send_many([mail(1)]))[0].ok
        await good.close()
        bad = SmtpPool("127.0.0.1", port, size=1, username="relay-user", password="wrong", timeout=5)
        refused = (await bad.send_many([mail(2)]))[0]
        assert refused.permanent and "login refused" in refused.error
        assert controller.stored == 1
    finally:
        stop()


def test_message_id_keeps_the_send_id_and_stays_valid():
    assert message_id("t1:lead 9/2024-05-01", "mx.example") == "<t1_lead_9/2024-05-01@mx.example>"
    raw, mid = mime_bytes(mail(3), "leadstream.local", now=0)
    mime = email.message_from_bytes(raw, policy=email.policy.default)
    assert b"\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n" in raw and mime["Message-ID"] == mid
    assert mime["X-Leadstream-Send-Id"] == "send-0003"
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only, as SMTP wants
    assert {p.get_content_type() for p in mime.iter_parts()} == {"text/plain", "text/html"}


def test_ascii_parts_go_as_7bit_with_long_lines_others_as_quoted_printable():
    import dataclasses
    html = "<html><body>" + "".join(f'<td class="c{i}">Job {i} &amp; more</td>' for i in range(400)) + "</body></html>"
    raw, _ = mime_bytes(dataclasses.replace(mail(4), html=html, text="Line one.\n" + "word " * 400), "x.example", now=0)
    lines = raw.split(b"\r\n")
    assert max(len(line) for line in lines) <= WRAP_AT and len(lines) < 90  # quoted-printable needed ~300
    mime = email.message_from_bytes(raw, policy=email.policy.default)
    parts = {p.get_content_type(): p for p in mime.iter_parts()}
    assert parts["text/html"]["Content-Transfer-Encoding"] == "7bit"
    assert parts["text/html"].get_content().replace("\r\n", "").replace("\n", "") == html  # only line breaks added
    assert parts["text/plain"].get_content().split() == ("Line one.\n" + "word " * 400).split()
    accented = dataclasses.replace(mail(5), html="<p>Zoë, 3 jobs near Montréal</p>")
    mime = email.message_from_bytes(mime_bytes(accented, "x.example", now=0)[0], policy=email.policy.default)
    html_part = [p for p in mime.iter_parts() if p.get_content_type() == "text/html"][0]
    assert html_part["Content-Transfer-Encoding"] == "quoted-printable"
    assert html_part.get_content() == "<p>Zoë, 3 jobs near Montréal</p>"


def self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting it) for a throwaway 127.0.0.1 certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


async def test_starttls_with_login_over_a_verified_certificate(tmp_path: Path):
    server_tls, client_tls = self_signed(tmp_path)
    port, controller, stop = smtp_sink.start(0, tmp_path / "mail", credentials=("u", "p"), tls_context=server_tls)
    try:
        pool = SmtpPool("127.0.0.1", port, size=2, starttls=True, username="u", password="p",
                        tls_context=client_tls, timeout=5)
        outcomes = await pool.send_many([mail(i) for i in range(4)])
        await pool.close()
        plain = SmtpPool("127.0.0.1", port, size=1, starttls=False, timeout=5)
        refused = (await plain.send_many([mail(9)]))[0]
        await plain.close()
    finally:
        stop()
    assert all(o.ok for o in outcomes)
    assert controller.stored == controller.stored_over_tls == 4
    assert refused.permanent and "530" in refused.error  # the sink requires STARTTLS
