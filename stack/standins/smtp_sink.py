"""A real SMTP server on loopback that keeps every message it receives as an .eml file.

Built on aiosmtpd. Each accepted message is written atomically to `<folder>/<Message-ID>.eml`
(or a counter when there is none); deliveries are counted per recipient and connections are
counted, so tests can see pooling. It can be told to misbehave:

- per recipient: answer RCPT with 421 (and close, as RFC 5321 says), 451, 550 or any code;
- drop: abort every connection at MAIL FROM without a reply (a crashed relay);
- throttle: answer MAIL FROM with 451 4.7.1 (a relay asking its client to slow down);
- delay_s: wait this long before answering each message's DATA (a slow relay or a slowed
  network to it).

Optionally it requires AUTH (`credentials`) and STARTTLS (`tls_context`), so a pool's login
and TLS paths are exercised too.

Control it with the `SinkController` methods when imported, or with a JSON file
`<folder>/control.json` when run as a process, re-read whenever it changes:
`{"reject": {"bounce@example.com": 550, "busy@example.com": [451, "try later"]}, "drop": false,
"throttle": false, "delay_s": 0}`.

    python -m stack.standins.smtp_sink --port 2525 --dir .stack/mail
"""
from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import logging
import os
import re
import signal
import ssl
import tempfile
import threading
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Callable, NamedTuple

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from stack.standins.threaded import cancel_all

DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / ".stack" / "mail"
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9@._+=-]")
_DEFAULT_TEXT = {421: "4.3.2 Service not available, closing channel", 451: "4.3.0 Try again later",
                 550: "5.1.1 Mailbox unavailable"}


class SinkController:
    """Counts what the sink received and holds how it should misbehave (thread-safe)."""

    def __init__(self, folder: Path, credentials: tuple[str, str] | None = None) -> None:
        self.folder = folder
        self.credentials = credentials
        self.control_file = folder / "control.json"
        self._lock = threading.Lock()
        self._rejects: dict[str, tuple[int, str]] = {}
        self._drop = False
        self._control_mtime: float | None = None
        self._file_rules = FileRules()
        self._counts: Counter[str] = Counter()
        self.connections = 0
        self.stored = 0
        self.stored_over_tls = 0
        self.loop: asyncio.AbstractEventLoop | None = None  # the sink's loop, set by serve()
        self._live: set[SMTP] = set()

    def reject(self, address: str, code: int = 550, text: str | None = None) -> None:
        """Answer RCPT TO this address with `code` from now on."""
        with self._lock:
            self._rejects[address.lower()] = (code, text or _DEFAULT_TEXT.get(code, "Rejected"))

    def drop_connections(self, on: bool = True) -> None:
        """Abort connections at MAIL FROM (on) or behave again (off)."""
        with self._lock:
            self._drop = on

    def disconnect_all(self) -> None:
        """Close every open connection, as a relay does with idle clients."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._close_live)

    def _close_live(self) -> None:
        for protocol in list(self._live):
            if protocol.transport is not None:
                protocol.transport.close()

    def reset(self) -> None:
        """Forget rejections, dropping and counts (files stay)."""
        with self._lock:
            self._rejects.clear()
            self._drop = False
            self._counts.clear()
            self.connections = self.stored = self.stored_over_tls = 0

    def count(self, address: str) -> int:
        """How many messages were accepted for this recipient."""
        with self._lock:
            return self._counts[address.lower()]

    @property
    def counts(self) -> dict[str, int]:
        """Accepted messages per recipient."""
        with self._lock:
            return dict(self._counts)

    def rejection_for(self, address: str) -> tuple[int, str] | None:
        """The (code, text) to answer for this recipient, or None to accept."""
        rejects = self._file_control().rejects
        with self._lock:
            return self._rejects.get(address.lower()) or rejects.get(address.lower())

    def dropping(self) -> bool:
        """Whether connections are being dropped."""
        drop = self._file_control().drop
        with self._lock:
            return self._drop or drop

    def throttling(self) -> bool:
        """Whether MAIL FROM is answered 451 (slow down), by control.json."""
        return self._file_control().throttle

    def delay_s(self) -> float:
        """How long to wait before answering DATA, by control.json."""
        return self._file_control().delay_s

    def connected(self, protocol: SMTP) -> None:
        """Note one more accepted connection."""
        self._live.add(protocol)
        with self._lock:
            self.connections += 1

    def disconnected(self, protocol: SMTP) -> None:
        """Forget a closed connection."""
        self._live.discard(protocol)

    def store(self, content: bytes, recipients: list[str], over_tls: bool = False) -> Path:
        """Write one message atomically and count it for each recipient."""
        path = self._free_name(_message_id(content))
        _write_atomically(path, content)
        with self._lock:
            self.stored += 1
            self.stored_over_tls += over_tls
            self._counts.update(r.lower() for r in recipients)
        return path

    def _free_name(self, message_id: str | None) -> Path:
        """`<id>.eml`, or `<id>.<n>.eml` when the same Message-ID arrives again (a duplicate)."""
        stem = _UNSAFE_NAME.sub("_", message_id.strip("<> ")) if message_id else f"msg-{self.stored + 1:08d}"
        path, n = self.folder / f"{stem}.eml", 1
        while path.exists():
            n += 1
            path = self.folder / f"{stem}.{n}.eml"
        return path

    def _file_control(self) -> "FileRules":
        """Rules from control.json, re-read only when its mtime changes."""
        try:
            mtime = self.control_file.stat().st_mtime
        except FileNotFoundError:
            return FileRules()
        if mtime != self._control_mtime:
            self._control_mtime = mtime
            self._file_rules = _parse_control(self.control_file)
        return self._file_rules


class FileRules(NamedTuple):
    rejects: dict[str, tuple[int, str]] = {}
    drop: bool = False
    throttle: bool = False
    delay_s: float = 0.0


def _parse_control(path: Path) -> FileRules:
    """Read control.json; a half-written or invalid file counts as no rules."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return FileRules()
    rejects = {}
    for address, rule in (data.get("reject") or {}).items():
        code, text = (rule, None) if isinstance(rule, int) else (int(rule[0]), rule[1])
        rejects[address.lower()] = (code, text or _DEFAULT_TEXT.get(code, "Rejected"))
    return FileRules(rejects, bool(data.get("drop")), bool(data.get("throttle")), float(data.get("delay_s") or 0))


_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(.*?)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)


def _message_id(content: bytes) -> str | None:
    """The Message-ID header of a raw message, if any (a regex: the email parser is slow)."""
    head = content.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    match = _MESSAGE_ID.search(head)
    return match.group(1).decode("ascii", "replace") if match and match.group(1) else None


def _write_atomically(path: Path, content: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: readers never see half a mail."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


class SinkHandler:
    """aiosmtpd hooks: apply the controller's rules, store what is accepted."""

    def __init__(self, controller: SinkController) -> None:
        self.controller = controller

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:
        """aiosmtpd reads commands in order, so it can offer PIPELINING (RFC 2920) as Postfix
        does: the pool's clients then send MAIL, RCPT and DATA in one write, as in production."""
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        if self.controller.dropping():
            server.transport.abort()  # no reply at all: what a crashed relay looks like
        if self.controller.throttling():
            return "451 4.7.1 Too many messages, slow down"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        rejection = self.controller.rejection_for(address)
        if rejection is None:
            envelope.rcpt_tos.append(address)
            return "250 OK"
        code, text = rejection
        if code == 421:  # RFC 5321 4.2.2: 421 means the server closes the channel
            asyncio.get_running_loop().call_soon(server.transport.close)
        return f"{code} {text}"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        if (delay := self.controller.delay_s()) > 0:
            await asyncio.sleep(delay)
        path = self.controller.store(content, envelope.rcpt_tos, over_tls=session.ssl is not None)
        return f"250 OK queued as {path.name}"


class _SinkSMTP(SMTP):
    """aiosmtpd's SMTP protocol that tells the controller when connections come and go."""

    def __init__(self, controller: SinkController, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.controller = controller

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None  # STARTTLS calls this again for the same connection
        super().connection_made(transport)
        if first:
            self.controller.connected(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.controller.disconnected(self)
        super().connection_lost(error)


def _authenticator(controller: SinkController) -> Callable[..., AuthResult]:
    """Accept exactly the configured login and password."""

    def check(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        ok = (isinstance(data, LoginPassword) and controller.credentials is not None
              and (data.login.decode(), data.password.decode()) == controller.credentials)
        return AuthResult(success=ok, handled=False)

    return check


async def serve(controller: SinkController, host: str, port: int,
                tls_context: ssl.SSLContext | None = None) -> asyncio.Server:
    """Listen on host:port with one aiosmtpd protocol per connection (STARTTLS required with TLS)."""
    loop = asyncio.get_running_loop()
    handler = SinkHandler(controller)
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd logs every session at WARNING
    options: dict[str, Any] = {"tls_context": tls_context, "require_starttls": tls_context is not None}
    if controller.credentials:
        warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
        # plain AUTH without TLS is fine on loopback and lets tests exercise the pool's login
        options.update(auth_required=True, auth_require_tls=False, authenticator=_authenticator(controller))

    def protocol() -> SMTP:
        return _SinkSMTP(controller, handler, hostname="leadstream-sink", loop=loop, **options)

    controller.loop = loop

    return await loop.create_server(protocol, host, port)


def start(port: int = 0, folder: Path | str = DEFAULT_FOLDER, *, host: str = "127.0.0.1",
          credentials: tuple[str, str] | None = None,
          tls_context: ssl.SSLContext | None = None) -> tuple[int, SinkController, Callable[[], None]]:
    """Run a sink on its own thread and loop; returns (port, controller, stop)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    controller = SinkController(folder, credentials)
    loop = asyncio.new_event_loop()
    ready: concurrent.futures.Future[int] = concurrent.futures.Future()
    thread = threading.Thread(target=_run, args=(loop, controller, host, port, tls_context, ready),
                              name="smtp-sink", daemon=True)
    thread.start()
    bound = ready.result(timeout=10)

    def stop() -> None:
        if thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)

    return bound, controller, stop


def _run(loop: asyncio.AbstractEventLoop, controller: SinkController, host: str, port: int,
         tls_context: ssl.SSLContext | None, ready: concurrent.futures.Future[int]) -> None:
    """Thread body: serve until the loop is stopped, then close every connection."""
    asyncio.set_event_loop(loop)
    try:
        server = loop.run_until_complete(serve(controller, host, port, tls_context))
    except BaseException as exc:
        ready.set_exception(exc)
        loop.close()
        return
    ready.set_result(server.sockets[0].getsockname()[1])
    loop.run_forever()
    server.close()
    loop.run_until_complete(cancel_all())
    loop.close()


async def _main(port: int, folder: Path, host: str = "127.0.0.1") -> None:
    """Serve until SIGINT/SIGTERM, then print a summary."""
    folder.mkdir(parents=True, exist_ok=True)
    controller = SinkController(folder)
    server = await serve(controller, host, port)
    bound = server.sockets[0].getsockname()[1]
    print(f"smtp sink listening on {host}:{bound}, writing .eml files to {folder}", flush=True)
    print(f"misbehave by writing {controller.control_file} (see module docstring)", flush=True)
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stopping.set)
    await stopping.wait()
    server.close()
    print(f"smtp sink stopped: {controller.stored} messages stored, "
          f"{controller.connections} connections", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Command line: python -m stack.standins.smtp_sink --port P --dir D."""
    parser = argparse.ArgumentParser(description="Local SMTP sink that stores mail as .eml files.")
    parser.add_argument("--port", type=int, default=2525, help="port on 127.0.0.1 (0 = any free)")
    parser.add_argument("--dir", type=Path, default=DEFAULT_FOLDER, help="folder for .eml files")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 in a container)")
    args = parser.parse_args(argv)
    asyncio.run(_main(args.port, args.dir, args.host))


if __name__ == "__main__":
    main()
