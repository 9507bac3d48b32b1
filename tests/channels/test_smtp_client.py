"""channels.smtp_client on real sockets: scripted servers for the protocol's corners, and
Postfix's smtp-sink (the MTA-grade server ./dev installs) for real deliveries."""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

import pytest

from bench._bare_smtp import dumped, read_dump, start_sink
from channels.base import EmailMessage
from channels.smtp_client import SmtpConnection, SmtpProtocolError, SmtpReplyError, wire_data
from channels.smtp_pool import SmtpPool


def test_wire_data_stuffs_dots_and_ends_the_message():
    assert wire_data(b"Subject: x\r\n\r\n.hidden\r\nok\r\n") == b"Subject: x\r\n\r\n..hidden\r\nok\r\n.\r\n"
    assert wire_data(b".first") == b"..first\r\n.\r\n"  # a leading dot, no final CRLF
    assert wire_data(b"a\r\n.\r\nb") == b"a\r\n..\r\nb\r\n.\r\n"  # a lone dot never ends it early


def test_wire_data_turns_bare_line_ends_into_crlf():
    # a bare LF or CR before a dot is how "SMTP smuggling" hides a second message
    assert wire_data(b"a\n.\nMAIL FROM:<x>\rb") == b"a\r\n..\r\nMAIL FROM:<x>\r\nb\r\n.\r\n"


class Script:
    """A tiny SMTP server on loopback: replies from a rule per command, records what came."""

    def __init__(self, ehlo: list[str], rules: dict[str, str], pipelined_only: bool = False):
        self.ehlo, self.rules, self.pipelined_only = ehlo, rules, pipelined_only
        self.commands: list[str] = []
        self.messages: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self.session, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def __aexit__(self, *exc) -> None:
        self.server.close()

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 script ESMTP\r\n")
        held: list[str] = []
        while line := await reader.readline():
            command = line.decode().rstrip("\r\n")
            self.commands.append(command)
            verb = command.split(" ")[0].split(":")[0].upper()
            if verb == "EHLO":
                writer.write(("".join(f"250-{e}\r\n" for e in ["script", *self.ehlo[:-1]])
                              + f"250 {self.ehlo[-1]}\r\n").encode())
                continue
            reply = self.rules.get(verb, {"DATA": "354 go on", "QUIT": "221 bye"}.get(verb, "250 ok"))
            if self.pipelined_only and verb in ("MAIL", "RCPT"):
                held.append(reply)  # answers nothing until DATA came: only a pipelining client gets on
                continue
            writer.write("".join(f"{r}\r\n" for r in [*held, reply]).encode())
            held = []
            if verb == "DATA" and reply.startswith("354"):
                body = b""
                while (chunk := await reader.readline()) not in (b".\r\n", b""):
                    body += chunk
                self.messages.append(body)
                writer.write((self.rules.get("END", "250 queued") + "\r\n").encode())
            if verb == "QUIT" or reply.startswith("421"):
                break
        writer.close()


async def test_with_pipelining_mail_rcpt_and_data_go_before_any_reply():
    async with (script := Script(["PIPELINING", "8BITMIME"], {}, pipelined_only=True)) as port:
        conn = await SmtpConnection.open("127.0.0.1", port, timeout=5)
        assert "pipelining" in conn.extensions
        await conn.send("a@b.example", "c@d.example", b"Subject: one\r\n\r\n.dot\r\n")
        await conn.send("a@b.example", "e@d.example", b"Subject: two\r\n\r\nhi\r\n")
        await conn.quit()
    assert script.commands[1:7] == ["MAIL FROM:<a@b.example>", "RCPT TO:<c@d.example>", "DATA",
                                    "MAIL FROM:<a@b.example>", "RCPT TO:<e@d.example>", "DATA"]
    assert script.messages == [b"Subject: one\r\n\r\n..dot\r\n", b"Subject: two\r\n\r\nhi\r\n"]


async def test_without_pipelining_each_command_waits_for_its_reply():
    async with (script := Script(["8BITMIME"], {"MAIL": "451 4.7.1 slow down"})) as port:
        conn = await SmtpConnection.open("127.0.0.1", port, timeout=5)
        with pytest.raises(SmtpReplyError) as refused:
            await conn.send("a@b.example", "c@d.example", b"Subject: x\r\n\r\nx\r\n")
        await conn.quit()
    assert (refused.value.code, refused.value.stage) == (451, "mail")
    assert script.commands[1:] == ["MAIL FROM:<a@b.example>", "RSET", "QUIT"]  # no RCPT after a refused MAIL


async def test_a_refused_recipient_with_data_accepted_anyway_ends_empty_and_resets():
    rules = {"RCPT": "550 5.1.1 no such user"}
    async with (script := Script(["PIPELINING"], rules)) as port:
        conn = await SmtpConnection.open("127.0.0.1", port, timeout=5)
        with pytest.raises(SmtpReplyError) as refused:
            await conn.send("a@b.example", "gone@d.example", b"Subject: x\r\n\r\nsecret\r\n")
        script.rules = {}
        await conn.send("a@b.example", "ok@d.example", b"Subject: y\r\n\r\nfine\r\n")  # same connection
        await conn.quit()
    assert (refused.value.code, refused.value.stage) == (550, "rcpt")
    assert script.messages == [b"", b"Subject: y\r\n\r\nfine\r\n"]  # the refused one's body never went
    assert script.commands.count("RSET") == 1


async def test_421_closes_the_connection_and_says_so():
    async with Script(["PIPELINING"], {"RCPT": "421 4.3.2 shutting down"}) as port:
        conn = await SmtpConnection.open("127.0.0.1", port, timeout=5)
        with pytest.raises(SmtpReplyError) as refused:
            await conn.send("a@b.example", "c@d.example", b"Subject: x\r\n\r\nx\r\n")
    assert refused.value.code == 421 and not conn.is_connected


async def test_a_reply_that_is_not_smtp_is_a_lost_connection():
    async with Script(["PIPELINING"], {"MAIL": "HTTP/1.1 400 Bad Request"}) as port:
        conn = await SmtpConnection.open("127.0.0.1", port, timeout=5)
        with pytest.raises(SmtpProtocolError):
            await conn.send("a@b.example", "c@d.example", b"Subject: x\r\n\r\nx\r\n")
    assert not conn.is_connected


async def test_an_address_that_would_inject_a_command_is_refused_before_anything_is_written():
    async with (script := Script(["PIPELINING"], {})) as port:
        conn = await SmtpConnection.open("127.0.0.1", port, timeout=5)
        for bad in ("x@y.example>\r\nRCPT TO:<victim@z.example", "a b@y.example", "x@y.example\n"):
            with pytest.raises(ValueError):
                await conn.send("a@b.example", bad, b"Subject: x\r\n\r\nx\r\n")
        await conn.send("Jobs <a@b.example>", "Sam Lee <sam@d.example>", b"Subject: x\r\n\r\nx\r\n")
        await conn.quit()
    assert script.commands[1:] == ["MAIL FROM:<a@b.example>", "RCPT TO:<sam@d.example>", "DATA", "QUIT"]


async def test_a_server_that_never_answers_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        with pytest.raises(TimeoutError):
            await SmtpConnection.open("127.0.0.1", listener.getsockname()[1], timeout=0.5)
    finally:
        listener.close()


def mail(i: int) -> EmailMessage:
    return EmailMessage(f"mta-{i}", "alerts@jobs.example", "Jobs", f"lead{i}@example.com", f"Jobs {i}",
                        f"<p>Hello {i}</p>\n.<p>a line that starts with a dot</p>", f"Hello {i}\n.\nbye", {})


@pytest.fixture
def postfix_sink():
    if not (shutil.which("smtp-sink") or os.path.exists("/usr/sbin/smtp-sink")):
        pytest.fail("smtp-sink is missing: ./dev installs Debian's postfix package for it")
    folder = Path(tempfile.mkdtemp(prefix="leadstream-mta-"))  # not under pytest's 0700 root-only folder:
    # as root, smtp-sink writes as nobody
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = start_sink(folder, port)
    deadline = time.monotonic() + 10
    while not _listening(port):
        assert time.monotonic() < deadline and sink.poll() is None, "smtp-sink did not start"
        time.sleep(0.05)
    yield port, folder
    sink.terminate()
    sink.wait(10)
    shutil.rmtree(folder, ignore_errors=True)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def test_the_pool_delivers_to_postfix_smtp_sink_pipelined_and_byte_exact(postfix_sink):
    port, folder = postfix_sink
    pool = SmtpPool("127.0.0.1", port, size=3, timeout=5)
    outcomes = await pool.send_many([mail(i) for i in range(30)])
    opened = pool.connections_opened
    await pool.close()
    assert all(o.ok for o in outcomes), [o for o in outcomes if not o.ok][:1]
    assert opened <= 3
    deadline = time.monotonic() + 10
    while len(dumped(folder)) < 30 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    got = {rcpt: raw for _, rcpt, raw in map(read_dump, dumped(folder))}
    assert sorted(got) == sorted(f"lead{i}@example.com" for i in range(30))
    raw = got["lead7@example.com"]
    assert b"X-Leadstream-Send-Id: mta-7\r\n" in raw
    assert b"\r\n.<p>a line that starts with a dot</p>\r\n" in raw  # stuffed on the wire, unstuffed there
    assert b"\r\nHello 7\r\n.\r\nbye\r\n" in raw  # a lone dot line did not end the message
