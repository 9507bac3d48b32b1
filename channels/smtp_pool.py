"""Email over SMTP through a small pool of persistent connections (channels.smtp_client).

Opening an SMTP session (TCP, EHLO, maybe STARTTLS and AUTH) costs several round trips, so
connections are kept and reused across messages; messages go out in parallel, one transaction
per connection at a time. A connection idle for a while is checked with NOOP before reuse; one
that failed is dropped and a fresh one is opened on the next checkout.
Reply codes: 5xx is permanent, 4xx and lost connections are transient.
"""
from __future__ import annotations

import asyncio
import binascii
import inspect
import email.header
import email.message
import email.policy
import email.utils
import re
import ssl
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Sequence

from channels.base import EmailMessage, Outcome, delivered, failed, map_bounded
from channels.dkim import DkimUnavailable
from channels.smtp_client import SmtpAuthError, SmtpConnection, SmtpReplyError

# atext of RFC 5322 minus "@", so "<id@domain>" stays a valid msg-id whatever the send_id is
_NOT_ATEXT = re.compile(r"[^A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]")
_CONNECTION_ERRORS = (OSError, asyncio.TimeoutError)  # ConnectionError, ssl errors, SmtpProtocolError


def message_id(send_id: str, domain: str) -> str:
    """The Message-ID for a send: deterministic, so a resend is recognisably the same mail."""
    return f"<{_NOT_ATEXT.sub('_', send_id).strip('.') or 'x'}@{domain}>"


# compat32 headers are stored as given: the default policy parses every header into a tree
# (about 2 ms a message), which alone would cap one worker below the 1,000 mails/s target
_POLICY = email.policy.compat32.clone(linesep="\r\n", max_line_length=78)


def _header(name: str, value: str) -> str | email.header.Header:
    """An ASCII value as is; anything else RFC 2047-encoded in UTF-8."""
    return value if value.isascii() else email.header.Header(value, "utf-8", header_name=name)


def _text_part(text: str, subtype: str) -> email.message.EmailMessage:
    """A text/* part in quoted-printable (binascii's C encoder: short lines, 7-bit clean)."""
    part = email.message.EmailMessage(policy=_POLICY)
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(binascii.b2a_qp(text.encode("utf-8")).decode("ascii"))
    return part


def mime_bytes(message: EmailMessage, domain: str, now: float | None = None) -> tuple[bytes, str]:
    """An RFC 5322 message (multipart/alternative: text, then html) written straight to CRLF
    bytes: the stdlib's email generator cost more than composing the email (py-spy on
    ./dev bench send). Returns (bytes, Message-ID)."""
    headers = {"From": email.utils.formataddr((message.from_name, message.from_addr)),
               "To": message.to_addr, "Subject": message.subject,
               "Date": email.utils.formatdate(now, usegmt=True),
               "Message-ID": message_id(message.send_id, domain),
               "X-Leadstream-Send-Id": message.send_id}
    for name, value in message.headers.items():
        headers[name] = value  # the composer's own From/To/Date/Message-ID win over the defaults
    # "=_" never occurs in quoted-printable output ("=" is always "=XX" or a soft break)
    boundary = f"=_ls_{_NOT_ATEXT.sub('_', message.send_id)}"
    out = [f"{name}: {_header_line(name, value)}" for name, value in headers.items()]
    out += ["MIME-Version: 1.0", f'Content-Type: multipart/alternative; boundary="{boundary}"', "",
            f"--{boundary}"]
    head = "\r\n".join(out).encode("ascii")
    return (head + b"\r\n" + _part(message.text, "plain") + f"\r\n--{boundary}\r\n".encode()
            + _part(message.html, "html") + f"\r\n--{boundary}--\r\n".encode()), headers["Message-ID"]


def _header_line(name: str, value: str) -> str:
    """An ASCII value as is (folded when long); anything else RFC 2047-encoded."""
    if value.isascii() and len(value) < 900 and "\n" not in value:
        return value
    return email.header.Header(value, "utf-8" if not value.isascii() else "us-ascii",
                               header_name=name).encode(linesep="\r\n")


MAX_LINE = 998  # RFC 5322 2.1.1: at most 998 characters a line, CRLF excluded
# where we break long lines: well under the limit, because filters read a line at the limit as
# a sign of spamware (SpamAssassin's __LONGLINE is /^[^\r\n]{998}/, and with any hidden element,
# such as the bot-trap link, it scored LONG_INVISIBLE_TEXT and LONGLN_LOW_CONTRAST, +1.0 each)
WRAP_AT = 500


def _part(text: str, subtype: str) -> bytes:
    """A text part: 7bit with long lines when the text is ASCII (MJML's HTML is), else
    quoted-printable. QP wraps every 76 characters: a 25 KB email became ~330 lines, and an
    SMTP server reads DATA line by line (the local aiosmtpd took 2.4x longer per message)."""
    lines = _seven_bit_lines(text) if text.isascii() else None
    if lines is None:
        return _qp_part(text, subtype)
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: 7bit\r\n\r\n").encode() + "\r\n".join(lines).encode("ascii")


def _seven_bit_lines(text: str) -> list[str] | None:
    """The text's lines, each long one broken after a '>' (between HTML tags) or at a space so
    none passes WRAP_AT; None when a line has neither (then quoted-printable it is)."""
    out = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        while len(line) > WRAP_AT:
            cut = line.rfind(">", 0, WRAP_AT) + 1 or line.rfind(" ", 0, WRAP_AT)
            if cut <= 0:
                return None
            out.append(line[:cut])
            line = line[cut:]
        out.append(line)
    return out


def _qp_part(text: str, subtype: str) -> bytes:
    body = binascii.b2a_qp(text.replace("\r\n", "\n").encode("utf-8")).replace(b"\n", b"\r\n")
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + body


def smtp_failure(send_id: str, provider: str, code: int, text: str) -> Outcome:
    """5xx replies are permanent; 4xx (greylisting, mailbox busy, 421 closing) are transient."""
    return failed(send_id, provider, f"SMTP {code}: {text}", permanent=500 <= code < 600)


@dataclass
class _Connection:
    smtp: SmtpConnection
    idle_since: float


class SmtpPool:
    """A Mailer that speaks SMTP to one relay over at most `size` persistent connections."""

    def __init__(
        self,
        host: str,
        port: int,
        size: int = 4,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        *,
        local_hostname: str = "localhost",
        message_id_domain: str = "leadstream.local",
        idle_check_s: float = 5.0,
        validate_certs: bool = True,
        tls_context: ssl.SSLContext | None = None,
        name: str = "smtp",
        sign: Callable[[bytes], bytes | Awaitable[bytes]] | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("SmtpPool size must be at least 1")
        self.name = name
        # DKIM (channels.dkim.DkimSigner.sign or .sign_async): the whole message as it goes out
        self.sign = sign
        self.host, self.port, self.size = host, port, size
        self.starttls, self.username, self.password = starttls, username, password
        self.timeout = timeout
        self.local_hostname = local_hostname  # explicit: the default looks up our FQDN, slowly
        self.message_id_domain = message_id_domain
        self.idle_check_s = idle_check_s
        self.validate_certs = validate_certs
        self.tls_context = tls_context  # e.g. trusting a private CA; None = the system's
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(size)  # pool-wide, so concurrent callers share `size`
        self.connections_opened = 0  # for tests and metrics: reuse means this stays small

    async def send_many(self, messages: Sequence[EmailMessage]) -> list[Outcome]:
        """Send every message over the pool; one outcome per message, in order."""
        return await map_bounded(list(messages), self._send_one, self._slots)

    async def close(self) -> None:
        """Say QUIT on every idle connection and forget them."""
        idle, self._idle = self._idle, []
        for conn in idle:
            try:
                await conn.smtp.quit()
            except (SmtpReplyError, *_CONNECTION_ERRORS):
                conn.smtp.close()

    async def _send_one(self, message: EmailMessage) -> Outcome:
        """Check out a connection, run MAIL/RCPT/DATA, classify the answer."""
        raw, mid = mime_bytes(message, self.message_id_domain)
        if self.sign is not None:
            try:
                raw = self.sign(raw)
                if inspect.isawaitable(raw):
                    raw = await raw
            except DkimUnavailable as exc:  # never unsigned: the message waits for its key
                return failed(message.send_id, self.name, str(exc), permanent=False)
        try:
            conn = await self._checkout()
        except SmtpAuthError as exc:  # our credentials: 4xx/5xx auth is permanent
            return failed(message.send_id, self.name, f"login refused: SMTP {exc.code}: {exc.text}",
                          permanent=True)
        except (SmtpReplyError, *_CONNECTION_ERRORS) as exc:  # no session: refused greeting, EHLO or TLS too
            return failed(message.send_id, self.name, f"connect: {type(exc).__name__}: {exc}", permanent=False)
        try:
            await conn.smtp.send(message.from_addr, message.to_addr, raw)
        except SmtpReplyError as exc:
            self._checkin(conn)  # the client sent RSET already; a 421 closed it and checkin drops it
            return smtp_failure(message.send_id, self.name, exc.code, exc.text)
        except ValueError as exc:  # an address that cannot go in a command
            self._checkin(conn)
            return failed(message.send_id, self.name, f"invalid address: {exc}", permanent=True)
        except _CONNECTION_ERRORS as exc:
            conn.smtp.close()
            return failed(message.send_id, self.name, f"{type(exc).__name__}: {exc}", permanent=False)
        self._checkin(conn)
        return delivered(message.send_id, self.name, mid)

    async def _checkout(self) -> _Connection:
        """A live connection: a recently used idle one, a checked older one, or a new one."""
        while self._idle:
            conn = self._idle.pop()  # LIFO: the warmest connection, least likely timed out
            if not conn.smtp.is_connected:
                continue
            if time.monotonic() - conn.idle_since < self.idle_check_s:
                return conn
            try:
                await conn.smtp.noop()
                return conn
            except (SmtpReplyError, *_CONNECTION_ERRORS):
                conn.smtp.close()
        return await self._connect()

    async def _connect(self) -> _Connection:
        """Open, greet and (if configured) authenticate a new connection."""
        smtp = await SmtpConnection.open(
            self.host, self.port, timeout=self.timeout, local_hostname=self.local_hostname,
            starttls=self.starttls, tls_context=self.tls_context, validate_certs=self.validate_certs,
            username=self.username, password=self.password)
        self.connections_opened += 1
        return _Connection(smtp, time.monotonic())

    def _checkin(self, conn: _Connection) -> None:
        """Return a connection to the pool if it is still usable."""
        if conn.smtp.is_connected:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
