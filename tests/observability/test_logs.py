"""Structured logs: JSON lines with process and context, text format, Faust wiring."""
from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from streams.logs import (KEPT_LOGGERS, NOISY_LOGGERS, configure_logging, faust_logging_config,
                          log_context, quiet_noisy_loggers)

ROOT = Path(__file__).resolve().parents[2]
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
log = logging.getLogger("leadstream.test")


@pytest.fixture
def restore_logging():
    """Put the root logger and the quietened loggers back as pytest had them."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    named = {n: logging.getLogger(n).level for n in (*NOISY_LOGGERS, *KEPT_LOGGERS)}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, lvl in named.items():
        logging.getLogger(name).setLevel(lvl)


@pytest.fixture
def json_lines(restore_logging):
    """configure_logging("api") into a buffer; call the result to get the lines parsed."""
    buffer = io.StringIO()
    configure_logging("api", "json", logging.DEBUG, stream=buffer)

    def lines() -> list[dict]:
        return [json.loads(line) for line in buffer.getvalue().splitlines()]

    return lines


def test_each_line_is_json_with_process_level_and_msg(json_lines):
    log.info("hello %s", "world")
    log.warning("careful")
    first, second = json_lines()
    assert TS.match(first["ts"])
    assert first["level"] == "INFO" and first["logger"] == "leadstream.test"
    assert first["process"] == "api" and first["pid"] == os.getpid()
    assert first["msg"] == "hello world" and "exc_info" not in first
    assert second["level"] == "WARNING" and second["msg"] == "careful"


def test_context_fields_appear_inside_block_and_vanish_after(json_lines):
    with log_context(tenant="acme", lead_id="L1", event_id="E1", agent="intake"):
        log.info("inside")
        log.info("extra wins", extra={"tenant": "other", "topic": "leads.submitted"})
    log.info("outside")
    inside, extra, outside = json_lines()
    assert {k: inside[k] for k in ("tenant", "lead_id", "event_id", "agent")} == {
        "tenant": "acme", "lead_id": "L1", "event_id": "E1", "agent": "intake"}
    assert extra["tenant"] == "other" and extra["topic"] == "leads.submitted" and extra["lead_id"] == "L1"
    assert not {"tenant", "lead_id", "event_id", "agent", "topic"} & outside.keys()


def test_exc_info_is_a_traceback_string(json_lines):
    try:
        {}["missing"]
    except KeyError:
        log.exception("lookup failed")
    [line] = json_lines()
    assert line["level"] == "ERROR" and line["msg"] == "lookup failed"
    assert line["exc_info"].startswith("Traceback (most recent call last):")
    assert line["exc_info"].rstrip().endswith("KeyError: 'missing'")


def test_unserialisable_extra_does_not_break_the_line(json_lines):
    log.info("odd", extra={"obj": object(), "when": 1.5})
    [line] = json_lines()
    assert line["obj"].startswith("<object object") and line["when"] == 1.5


async def test_nested_contexts_in_concurrent_tasks_do_not_leak(json_lines):
    async def work(tenant: str) -> None:
        with log_context(tenant=tenant, agent="intake"):
            await asyncio.sleep(0)
            for n in range(3):
                with log_context(lead_id=f"{tenant}-{n}"):
                    await asyncio.sleep(0)  # let the other task run inside its own block
                    log.info("lead", extra={"task": tenant})
                await asyncio.sleep(0)
                log.info("between", extra={"task": tenant})
        log.info("done", extra={"task": tenant})

    await asyncio.gather(work("a"), work("b"))
    lines = [line for line in json_lines() if line["logger"] == log.name]  # not asyncio's own
    assert len(lines) == 14
    # The two tasks really interleaved, so a leak would have shown.
    assert [line["task"] for line in lines[:4]] != ["a"] * 4
    for line in lines:
        task = line["task"]
        if line["msg"] == "lead":
            assert line["tenant"] == task and line["lead_id"].startswith(f"{task}-")
        elif line["msg"] == "between":
            assert line["tenant"] == task and "lead_id" not in line
        else:
            assert not {"tenant", "lead_id", "agent"} & line.keys()


def test_text_format(restore_logging):
    buffer = io.StringIO()
    configure_logging("supervisor", "text", stream=buffer)
    with log_context(tenant="acme", agent="intake"):
        try:
            raise RuntimeError("worker died")
        except RuntimeError:
            log.exception("restart %d", 3)
    first, *rest = buffer.getvalue().splitlines()
    assert re.match(r"^\S+Z ERROR   supervisor\[\d+\] leadstream.test: restart 3 tenant=acme agent=intake$", first)
    assert rest[0] == "Traceback (most recent call last):" and rest[-1] == "RuntimeError: worker died"


def test_noisy_loggers_quietened_but_worker_ready_kept(json_lines):
    logging.getLogger("aiokafka.consumer.group_coordinator").info("rebalance chatter")
    logging.getLogger("faust.transport.consumer").info("fetcher chatter")
    logging.getLogger("aiokafka").warning("broker gone")
    logging.getLogger("faust.worker").info("Ready")
    assert [line["msg"] for line in json_lines()] == ["broker gone", "Ready"]


def test_quiet_noisy_loggers_alone(restore_logging):
    logging.getLogger("aiokafka").setLevel(logging.DEBUG)
    quiet_noisy_loggers()
    assert logging.getLogger("aiokafka").level == logging.WARNING
    assert logging.getLogger("faust.worker").getEffectiveLevel() == logging.INFO


def test_unknown_format_says_what_to_set():
    with pytest.raises(ValueError, match="LEADSTREAM_LOG_FORMAT"):
        faust_logging_config("api", "xml")


# Faust applies app.conf.logging_config when its Worker starts; this runs that very step
# (Worker._setup_logging, what Worker.on_first_start calls) without needing a broker.
FAUST_SCRIPT = """
import logging, faust
from streams.logs import faust_logging_config, log_context
early = logging.getLogger("leadstream.batch")  # created before Faust configures logging
app = faust.App("obs-test", broker="kafka://127.0.0.1:1", web_enabled=False,
                logging_config=faust_logging_config("worker-intake"))
worker = faust.Worker(app, loglevel="info", redirect_stdouts=False)
worker._setup_logging()
with log_context(agent="intake"):
    early.info("flushed")
logging.getLogger("faust.transport.consumer").info("chatter")
"""


def test_faust_worker_applies_the_logging_config():
    done = subprocess.run([sys.executable, "-c", FAUST_SCRIPT], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(l["process"], l["logger"], l["msg"], l["agent"]) for l in lines] == [
        ("worker-intake", "leadstream.batch", "flushed", "intake")]


# A FastAPI app behind uvicorn, whose factory configures logging as api/ingress.py's would:
# uvicorn's own lines (startup, access, "Exception in ASGI application") must come out as JSON too.
UVICORN_SCRIPT = """
import logging, socket, threading, time, httpx, uvicorn
from fastapi import FastAPI
from streams.logs import configure_logging, log_context

def create_app():
    configure_logging("api")
    app = FastAPI()

    @app.get("/boom")
    async def boom():
        with log_context(tenant="acme"):
            logging.getLogger("leadstream.api").info("about to fail")
        raise RuntimeError("kaboom")
    return app

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
server = uvicorn.Server(uvicorn.Config(create_app, factory=True, log_level="info", lifespan="off"))
thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
thread.start()
deadline = time.monotonic() + 20
while not server.started and time.monotonic() < deadline:
    time.sleep(0.02)
print(httpx.get(f"http://127.0.0.1:{sock.getsockname()[1]}/boom").status_code)
server.should_exit = True
thread.join(20)
"""


def test_uvicorn_lines_become_json_once_the_factory_configures_logging():
    done = subprocess.run([sys.executable, "-c", UVICORN_SCRIPT], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and done.stdout.strip() == "500", done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # every line is JSON
    by_msg = {line["msg"].rstrip(): line for line in lines}
    assert by_msg["about to fail"]["tenant"] == "acme"
    crash = by_msg["Exception in ASGI application"]
    assert crash["logger"] == "uvicorn.error" and crash["process"] == "api"
    assert crash["exc_info"].rstrip().endswith("RuntimeError: kaboom")
    assert not any("color_message" in line for line in lines)
    assert any(line["logger"] == "uvicorn.access" and '"GET /boom HTTP/1.1" 500' in line["msg"] for line in lines)
