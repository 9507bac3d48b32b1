"""The send benchmark's baseline and sink: Postfix's smtp-sink, and a bare SMTP client.

smtp-sink (C, from Debian's postfix package) keeps every message it receives as one file; a
file starts with its own X-Client-Addr ... X-Rcpt-Args lines and a Received header, then the
message with LF line ends. `read_dump` turns a file back into (sender, recipient, bytes as sent).
`push` is the delivery ceiling: raw asyncio streams, EHLO once per connection, then per message
MAIL, RCPT and DATA written together (RFC 2920 pipelining) and the dot-stuffed bytes; it reads
reply codes and nothing else.
"""
from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path


def sink_folder(prefix: str) -> Path:
    """A new folder for smtp-sink's messages, in memory (/dev/shm) when the machine has it. On
    disk, the sink's synchronous file write a message was the ceiling: our own pool of 8
    connections got 1,300 to 4,200 messages/s out by the disk's mood, ~5,000 into /dev/shm."""
    memory = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=memory))


def start_sink(folder: Path, port: int) -> subprocess.Popen:
    """smtp-sink on 127.0.0.1:port, one file per message under folder."""
    binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    if not os.path.exists(binary):
        raise SystemExit("smtp-sink not found: it comes with Debian's postfix package (./dev installs it)")
    user = []
    if os.geteuid() == 0:  # as root, smtp-sink must drop to an unprivileged user: it writes here as that one
        nobody = pwd.getpwnam("nobody")
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
        user = ["-u", "nobody"]
    return subprocess.Popen([binary, *user, "-d", f"{folder}/%H%M%S.", f"127.0.0.1:{port}", "1024"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def dumped(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file()]


def read_dump(path: Path) -> tuple[str, str, bytes]:
    """(MAIL FROM, RCPT TO, message bytes with CRLF) of one smtp-sink file."""
    lines = path.read_bytes().split(b"\n")
    head = {}
    i = 0
    while lines[i].startswith(b"X-") and b":" in lines[i]:
        name, _, value = lines[i].partition(b": ")
        head[name] = value.decode().strip("<>")
        i += 1
    if lines[i].startswith(b"Received:"):  # smtp-sink's own trace header and its continuations
        i += 1
        while lines[i][:1] in (b" ", b"\t"):
            i += 1
    return head[b"X-Mail-Args"].split()[0], head[b"X-Rcpt-Args"].split()[0], b"\r\n".join(lines[i:])


async def _reply(reader: asyncio.StreamReader) -> int:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("the server closed the connection")
        if line[3:4] != b"-":
            return int(line[:3])


async def _connection(host: str, port: int, messages: list[tuple[str, str, bytes]]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    codes = [await _reply(reader)]
    writer.write(b"EHLO bare\r\n")
    codes.append(await _reply(reader))
    while messages:
        sender, rcpt, raw = messages.pop()
        data = (b"." + raw if raw.startswith(b".") else raw).replace(b"\r\n.", b"\r\n..")
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        writer.write(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
        got = (await _reply(reader), await _reply(reader), await _reply(reader))
        if got != (250, 250, 354):
            raise RuntimeError(f"server answered {got} to MAIL, RCPT, DATA")
        writer.write(data + b".\r\n")
        if (code := await _reply(reader)) != 250:
            raise RuntimeError(f"server answered {code} after the message")
    writer.write(b"QUIT\r\n")
    await writer.drain()
    writer.close()


async def push(host: str, port: int, messages: list[tuple[str, str, bytes]], connections: int) -> None:
    """Deliver every message over `connections` connections sharing one work list."""
    work = list(messages)
    await asyncio.gather(*(_connection(host, port, work) for _ in range(connections)))
