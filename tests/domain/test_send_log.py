"""domain/send_log.py: a send's status is its furthest event, the cursor, the log's rows."""
from __future__ import annotations

import pytest

from domain.send_log import (LogProblem, SendRow, latest_payload, log_entry, next_cursor, parse_before,
                             reasons_in_order, send_row)
from domain.timeline import EventRow


def ev(event_type: str, at_ms: int, **payload) -> EventRow:
    return EventRow(f"{event_type}@{at_ms}", event_type, at_ms, "email", "daily", "", "", [], "",
                    {"lead_id": "L1", "kind": "daily", **payload})


def test_the_furthest_event_is_the_status_even_when_an_earlier_one_is_newer():
    # a planned request carries its due time, later than the sender's answer
    events = [ev("send.requested", 9_000), ev("send.skipped", 1_000, reason="no_new_jobs")]
    row = send_row("s1", events)
    assert (row.status, row.reason, row.first_ms, row.last_ms) == ("skipped", "no_new_jobs", 1_000, 9_000)


def test_a_retried_send_that_went_out_is_dispatched_with_every_reason_in_order():
    events = [ev("send.requested", 1), ev("send.deferred", 2, reason="rate_limited"),
              ev("send.requested", 3, attempt=1), ev("send.dispatched", 4, provider="smtp"),
              ev("send.bounced", 9, provider="sendgrid", reason="550 user unknown")]
    row = send_row("s1", events)
    assert (row.status, row.provider) == ("bounced", "sendgrid")
    assert reasons_in_order(row.reasons) == ["rate_limited", "550 user unknown"]
    assert latest_payload(events, "send.requested")["attempt"] == 1


def test_a_log_row_names_the_template_the_sender_composes_with():
    row = SendRow("s1", "dispatched", "L1", "email", "daily", "smtp", "welcome", "", "", "", [], 0, 1)
    assert log_entry(row, "daily-template", "a@example.com")["template"] == "welcome"
    alert = row._replace(kind="daily")
    assert log_entry(alert, "daily-template", None)["template"] == "daily-template"
    triggered = row._replace(kind="triggered", template="saved-job-reminder")
    assert log_entry(triggered, "daily-template", None)["template"] == "saved-job-reminder"


def test_the_cursor_is_an_instant_and_a_send_id():
    assert parse_before("1970-01-01T00:00:01.5Z") == 1500
    assert parse_before("1970-01-01T01:00:00+01:00") == 0
    assert parse_before("1970-01-01T00:00:02") == 2000  # no zone: UTC
    with pytest.raises(LogProblem) as bad:
        parse_before("yesterday")
    assert bad.value.field == "before"
    rows = [SendRow(f"s{i}", "requested", "L", "email", "daily", "", "daily", "", "", "", [], 1000 - i, 1000)
            for i in range(3)]
    assert next_cursor(rows, 3) == {"before": "1970-01-01T00:00:00.998000Z", "before_send": "s2"}
    assert next_cursor(rows, 4) is None
