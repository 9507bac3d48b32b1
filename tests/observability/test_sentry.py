"""init_sentry against a local stand-in of Sentry's ingest API, in a separate process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.sentry import redact, redact_text
from tests.observability.sentry_standin import start_sentry_standin

ROOT = Path(__file__).resolve().parents[2]

# Raises, captures, logs an error carrying personal data, flushes, prints init_sentry's result.
SCRIPT = """
import logging, sys, sentry_sdk
from streams.logs import log_context
from streams.sentry import init_sentry
enabled = init_sentry(sys.argv[1], "test", "pytest-worker", release="leadstream@test")
def mail(lead):
    address = "jane.doe@example.com"  # a local holding personal data
    raise ValueError(f"mail to {address} refused by gateway, call +44 20 7946 0958")
with log_context(tenant="acme", agent="intake", lead_id="L123"):
    logging.getLogger("leadstream.mailer").warning("retrying ann@example.com")  # a breadcrumb
    try:
        mail({"email": "jane.doe@example.com"})
    except ValueError:
        sentry_sdk.capture_exception()
    logging.getLogger("leadstream.mailer").error(
        "could not mail %s", "john.smith@example.org", extra={"contact": "sue@example.net"})
sentry_sdk.flush(timeout=10)
print(enabled)
"""


@pytest.fixture
def sentry():
    server, state = start_sentry_standin(public_key="publickey")
    yield server, state
    server.stop()


def run_script(dsn: str, env_dsn: str = "") -> str:
    """Run SCRIPT in a fresh interpreter; its stdout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SENTRY_DSN": env_dsn}
    done = subprocess.run([sys.executable, "-c", SCRIPT, dsn], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_exception_and_error_log_reach_sentry_redacted(sentry):
    server, state = sentry
    assert run_script(f"http://publickey@127.0.0.1:{server.port}/42") == "True"

    assert not state.rejected
    exceptions = [e for e in state.events if "exception" in e]
    logged = [e for e in state.events if e.get("logger") == "leadstream.mailer"]
    assert len(exceptions) == 1 and len(logged) == 1

    exc = exceptions[0]["exception"]["values"][-1]
    assert exc["type"] == "ValueError"
    assert exc["value"] == "mail to [redacted] refused by gateway, call [redacted]"
    for event in (exceptions[0], logged[0]):
        assert event["tags"]["process"] == "pytest-worker"
        assert event["tags"]["tenant"] == "acme" and event["tags"]["agent"] == "intake"
        assert event["contexts"]["leadstream"]["lead_id"] == "L123"
        assert event["environment"] == "test" and event["release"] == "leadstream@test"
    assert logged[0]["level"] == "error"
    assert logged[0]["logentry"]["formatted"] == "could not mail [redacted]"
    assert logged[0]["extra"]["contact"] == "[redacted]"
    crumbs = [c["message"] for c in logged[0]["breadcrumbs"]["values"]]
    assert "retrying [redacted]" in crumbs
    # Nothing personal anywhere on the wire: not in frames, params, breadcrumbs or extra.
    wire = b"".join(state.raw_bodies)
    for personal in (b"example.com", b"example.org", b"example.net", b"7946"):
        assert personal not in wire


def test_no_dsn_sends_nothing_and_returns_false(sentry):
    server, state = sentry
    # Even with SENTRY_DSN in the environment: Settings reads it, init_sentry only takes what it is given.
    assert run_script("", env_dsn=f"http://publickey@127.0.0.1:{server.port}/42") == "False"
    assert state.events == [] and state.raw_bodies == [] and state.rejected == []


def test_wrong_key_is_refused_by_standin(sentry):
    server, state = sentry
    assert run_script(f"http://otherkey@127.0.0.1:{server.port}/42") == "True"
    assert state.events == [] and "otherkey" in state.rejected


def test_redact_covers_emails_phones_and_leaves_ids_and_times():
    assert redact_text("to a.b+c@mail.example.co.uk or (555) 123-4567") == "to [redacted] or [redacted]"
    untouched = "lead 01J9Z8Q4X7 at 2025-01-31T12:00:00.123+00:00 offset 1738324800123"
    assert redact_text(untouched) == untouched
    event = {"extra": {"who": ["x@y.io", ("+1 415 555 0100",)], "x@y.io": 3, "n": 7}}
    assert redact(event) == {"extra": {"who": ["[redacted]", ["[redacted]"]], "[redacted]": 3, "n": 7}}
