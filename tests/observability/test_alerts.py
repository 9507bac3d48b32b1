"""AlertSender against a local stand-in of a Slack incoming webhook."""
from __future__ import annotations

import logging
import socket

import pytest

from scaling.alerts import Alert, AlertSender, alert_payload
from tests.observability.webhook_standin import start_webhook_standin

DISK = Alert(name="ClickHouse disk", severity="critical", summary="disk 95% full on <ch-1>",
             details={"host": "ch-1", "free": "2.1 GB"}, key="disk:ch-1")


@pytest.fixture
def webhook():
    server, state = start_webhook_standin()
    yield f"http://127.0.0.1:{server.port}/services/T0/B0/secret", state
    server.stop()


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def make_sender(webhook, sleeps):
    url, _ = webhook
    made = []

    def make(**kw) -> AlertSender:
        opts = {"timeout": 2.0, "max_tries": 3, "repeat_after_s": 600.0, **kw}
        sender = AlertSender(opts.pop("url", url), sleep=sleeps.append, **opts)
        made.append(sender)
        return sender

    yield make
    for sender in made:
        sender.close()


def test_delivers_slack_shaped_payload(webhook, make_sender):
    _, state = webhook
    assert make_sender().send(DISK, now=0.0) is True
    [post] = state.posts
    assert post["text"] == ":rotating_light: [CRITICAL] ClickHouse disk: disk 95% full on &lt;ch-1&gt;"
    header, summary, fields, context = post["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                                 "text": ":rotating_light: [CRITICAL] ClickHouse disk"}}
    assert summary["type"] == "section" and summary["text"] == {"type": "mrkdwn", "text": "disk 95% full on &lt;ch-1&gt;"}
    assert fields["fields"] == [{"type": "mrkdwn", "text": "*host*\nch-1"}, {"type": "mrkdwn", "text": "*free*\n2.1 GB"}]
    assert context == {"type": "context", "elements": [{"type": "mrkdwn", "text": "key `disk:ch-1`"}]}


def test_payload_stays_within_slack_limits():
    alert = Alert("x" * 400, "warning", "y" * 5000, details={f"k{i}": "v" * 3000 for i in range(15)})
    blocks = alert_payload(alert)["blocks"]
    assert len(blocks[0]["text"]["text"]) <= 150 and len(blocks[1]["text"]["text"]) <= 3000
    assert len(blocks[2]["fields"]) == 10 and blocks[2]["fields"][-1]["text"] == "_+6 more details_"
    assert all(len(f["text"]) <= 2000 for f in blocks[2]["fields"])
    assert alert.key == alert.name


def test_retries_500_with_backoff_then_succeeds(webhook, make_sender, sleeps):
    _, state = webhook
    state.fail(2, status=500)
    assert make_sender(backoff_s=0.5).send(DISK, now=0.0) is True
    assert state.attempts == 3 and len(state.posts) == 1
    assert sleeps == [0.5, 1.0]


def test_honours_retry_after_on_429(webhook, make_sender, sleeps):
    _, state = webhook
    state.fail(1, status=429, retry_after="7")
    assert make_sender().send(DISK, now=0.0) is True
    assert sleeps == [7.0] and len(state.posts) == 1


def test_retry_after_beyond_max_wait_gives_up_without_hammering(webhook, make_sender, sleeps, caplog):
    _, state = webhook
    state.fail(1, status=429, retry_after="3600")
    with caplog.at_level(logging.ERROR, logger="leadstream.alerts"):
        assert make_sender(max_wait_s=30.0).send(DISK, now=0.0) is False
    assert state.attempts == 1 and sleeps == []
    assert "Retry-After 3600s" in caplog.text


def test_gives_up_after_max_tries_and_logs_without_raising(webhook, make_sender, sleeps, caplog):
    url, state = webhook
    state.fail(10, status=503)
    with caplog.at_level(logging.WARNING, logger="leadstream.alerts"):
        assert make_sender(max_tries=3).send(DISK, now=0.0) is False
    assert state.attempts == 3 and state.posts == [] and len(sleeps) == 2
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "gave up after 3 tries" in errors[0].getMessage()
    assert "HTTP 503" in errors[0].getMessage()
    assert "secret" not in caplog.text  # the webhook URL carries a token and is never logged


def test_client_error_is_not_retried(webhook, make_sender, sleeps):
    _, state = webhook
    state.fail(1, status=404)
    assert make_sender().send(DISK, now=0.0) is False
    assert state.attempts == 1 and sleeps == []


def test_same_key_not_repeated_within_window(webhook, make_sender):
    _, state = webhook
    sender = make_sender(repeat_after_s=600.0)
    assert sender.send(DISK, now=1000.0) is True
    assert sender.send(DISK, now=1599.0) is False
    other = Alert("ClickHouse disk", "critical", "disk 96% full", key="disk:ch-2")
    assert sender.send(other, now=1599.0) is True  # another key is another alert
    assert sender.send(DISK, now=1600.0) is True  # the window has passed: remind
    assert sender.send(DISK, now=1700.0) is False  # the window restarts at the reminder
    assert [p["blocks"][-1]["elements"][0]["text"] for p in state.posts] == [
        "key `disk:ch-1`", "key `disk:ch-2`", "key `disk:ch-1`"]


def test_escalation_is_sent_inside_the_window(webhook, make_sender):
    _, state = webhook
    sender = make_sender()
    warn = Alert("lag", "warning", "lag 10k", key="lag:intake")
    assert sender.send(warn, now=0.0) is True
    assert sender.send(Alert("lag", "critical", "lag 1M", key="lag:intake"), now=5.0) is True
    assert [p["text"][:30] for p in state.posts][1].startswith(":rotating_light: [CRITICAL]")


def test_resolve_sends_once_and_only_for_firing_keys(webhook, make_sender):
    _, state = webhook
    sender = make_sender()
    assert sender.resolve("disk:ch-1", now=0.0) is False  # never fired: nothing to say
    assert sender.send(DISK, now=100.0) is True
    assert sender.firing() == ["disk:ch-1"]
    assert sender.resolve("disk:ch-1", now=850.0) is True
    assert sender.resolve("disk:ch-1", now=860.0) is False
    assert sender.firing() == [] and len(state.posts) == 2
    resolved = state.posts[1]
    assert resolved["text"].startswith(":white_check_mark: [RESOLVED] ClickHouse disk")
    assert resolved["blocks"][1]["text"]["text"].startswith("Cleared after 12m 30s.")
    assert sender.send(DISK, now=870.0) is True  # after resolving, a new occurrence alerts at once


def test_failed_resolve_stays_pending(webhook, make_sender):
    _, state = webhook
    sender = make_sender(max_tries=1)
    assert sender.send(DISK, now=0.0) is True
    state.fail(1, status=500)
    assert sender.resolve("disk:ch-1", now=10.0) is False
    assert sender.firing() == ["disk:ch-1"]
    assert sender.resolve("disk:ch-1", now=20.0) is True and sender.firing() == []


def test_unreachable_url_gives_up_quietly(make_sender, sleeps, caplog):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sender = make_sender(url=f"http://127.0.0.1:{port}/hook", max_tries=3)
    with caplog.at_level(logging.ERROR, logger="leadstream.alerts"):
        assert sender.send(DISK, now=0.0) is False
    assert len(sleeps) == 2 and "ConnectError" in caplog.text
    assert sender.firing() == []


def test_no_url_sends_nothing(webhook, make_sender):
    _, state = webhook
    sender = make_sender(url="")
    assert sender.send(DISK, now=0.0) is False
    assert sender.resolve("disk:ch-1", now=1.0) is False
    assert state.attempts == 0
