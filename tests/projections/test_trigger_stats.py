"""The Triggers page's counts from the real ClickHouse: a known history of trigger, segment and
send events in a fresh database, with a row held twice (as before the table's merge), events
just outside the period, another tenant's and sends no trigger asked for; each count is of
the distinct events in the period and of the tenant."""
from __future__ import annotations

import os
from datetime import date, datetime, timedelta, timezone

import pytest

from domain.identity import derived_event_id
from domain.partner_reports import Period
from domain.trigger_stats import SegmentCounts, SendCounts, SuppressedCount, TriggerCounts
from projections.clickhouse import EVENT_COLUMNS, connect, migrate
from projections.event_rows import event_row
from projections.trigger_stats import trigger_stats_rows
from streams.settings import get_settings

DB = f"ts_test_trigger_stats_{os.getpid()}"
PERIOD = Period(date(2025, 12, 1), date(2025, 12, 3))
DAY = datetime(2025, 12, 2, 9, 30, tzinfo=timezone.utc)
SEQ = iter(range(10_000))


def ev(name: str, at: datetime, tenant: str = "t1", lead: str = "L1", **fields) -> tuple[str, dict]:
    """An event as the analytics agent decodes it (occurred_at a datetime, so the payload keeps ms)."""
    ms = int(at.timestamp() * 1000)
    return name, {"event_id": derived_event_id(f"e{next(SEQ)}", name, ms), "tenant": tenant, "occurred_at": at,
                  "schema": f"{name}@1", "causation_id": None, "source": "agent:triggers", "lead_id": lead, **fields}


def fired(sid: str, lead: str, at: datetime, trigger: str = "a", **kw):
    return ev("trigger.fired", at, lead=lead, trigger=trigger, send_id=sid, channel="email", template="x",
              cause_at=at, **kw)


def outcome(name: str, sid: str, lead: str, at: datetime, trigger: str = "a", **fields):
    return ev(name, at, lead=lead, trigger=trigger, send_id=sid, **fields)


def send(step: str, sid: str, at: datetime, trigger: str | None = None):
    fields = {"send_id": sid, "channel": "email", "list": "nurses"}
    if step == "requested":
        fields.update(kind="triggered" if trigger else "daily", trigger=trigger,
                      context='{"trigger": "decoy", "event": {"name": "job_viewed"}}')
    return ev(f"send.{step}", at, lead="L1", **fields)


LAST_FIRED = DAY + timedelta(hours=5, milliseconds=250)
HISTORY = [
    outcome("trigger.scheduled", "s1", "L1", DAY, fire_at=DAY),
    fired("s1", "L1", DAY + timedelta(hours=1)),                      # the timer's match, fired: one match
    fired("s2", "L2", LAST_FIRED),                                    # held twice below
    outcome("trigger.suppressed", "s3", "L2", DAY + timedelta(hours=6), reason="cooldown"),
    outcome("trigger.deferred", "s4", "L3", DAY, reason="quiet_hours", until=DAY + timedelta(hours=8)),
    outcome("trigger.suppressed", "s4", "L3", DAY + timedelta(hours=8), reason="goal_reached"),
    outcome("trigger.suppressed", "", "L9", DAY, trigger="", reason="unknown_person"),
    fired("s5", "L5", DAY, trigger="b"),
    fired("x1", "L1", datetime(2025, 11, 30, 23, 59, 59, tzinfo=timezone.utc)),  # the day before
    fired("x2", "L1", datetime(2025, 12, 4, tzinfo=timezone.utc)),               # the day after
    ev("trigger.fired", DAY, tenant="t2", lead="L1", trigger="a", send_id="y1", channel="email", template="x",
       cause_at=DAY),                                                            # another tenant's
    send("requested", "s1", DAY + timedelta(hours=1), "trigger:a"),
    send("dispatched", "s1", DAY + timedelta(hours=1, seconds=2)),
    send("delivered", "s1", datetime(2025, 12, 5, tzinfo=timezone.utc)),  # after the period: of a send in it
    send("requested", "s2", LAST_FIRED, "trigger:a"),
    send("skipped", "s2", LAST_FIRED + timedelta(seconds=1)),
    send("requested", "s5", DAY, "trigger:b"),
    send("requested", "x1", datetime(2025, 11, 30, 23, 59, 59, tzinfo=timezone.utc), "trigger:a"),
    send("dispatched", "x1", DAY),                                    # requested before the period
    send("requested", "d1", DAY),                                     # a daily alert
    send("dispatched", "d1", DAY),
    send("requested", "r1", DAY, "reply:stop"),                       # a reply's confirmation
    ev("segment.entered", DAY, lead="L1", segment="seg1"),              # held twice below
    ev("segment.entered", DAY, lead="L2", segment="seg1"),
    ev("segment.exited", DAY + timedelta(hours=2), lead="L1", segment="seg1"),
    ev("segment.entered", datetime(2025, 12, 4, 0, 0, 1, tzinfo=timezone.utc), lead="L3", segment="seg2"),
]
TWICE = (2, 22)  # the second firing and the first segment entry


@pytest.fixture(scope="module")
def client():
    s = get_settings()
    c = connect(s.clickhouse_host, s.clickhouse_port)
    c.execute(f"DROP DATABASE IF EXISTS {DB}")
    migrate(c, DB)
    now = datetime(2025, 12, 6)
    rows = [event_row(name, e, "t", 0, i, now) for i, (name, e) in enumerate(HISTORY)]
    rows += [rows[i] for i in TWICE]
    c.execute(f"INSERT INTO {DB}.events ({', '.join(EVENT_COLUMNS)}) VALUES", list(zip(*rows)), columnar=True)
    yield c
    c.execute(f"DROP DATABASE IF EXISTS {DB}")
    c.disconnect()


def test_each_trigger_counts_its_distinct_matches_firings_and_leads_in_the_period(client):
    got = sorted(trigger_stats_rows(client, DB, "t1", PERIOD).triggers)
    last_ms = int(LAST_FIRED.timestamp() * 1000)
    assert got == [TriggerCounts("", 0, 0, 0, 0, 0, 0), TriggerCounts("a", 4, 1, 1, 2, 2, last_ms),
                   TriggerCounts("b", 1, 0, 0, 1, 1, int(DAY.timestamp() * 1000))]


def test_suppressions_are_counted_by_trigger_and_reason(client):
    assert sorted(trigger_stats_rows(client, DB, "t1", PERIOD).suppressed) == [
        SuppressedCount("", "unknown_person", 1), SuppressedCount("a", "cooldown", 1),
        SuppressedCount("a", "goal_reached", 1)]


def test_sends_are_those_a_trigger_requested_in_the_period_with_every_step_they_reached(client):
    assert sorted(trigger_stats_rows(client, DB, "t1", PERIOD).sends) == [
        SendCounts("a", 2, 1, 1, 0, 0, 1), SendCounts("b", 1, 0, 0, 0, 0, 0)]


def test_segments_count_distinct_entries_and_exits(client):
    assert trigger_stats_rows(client, DB, "t1", PERIOD).segments == [SegmentCounts("seg1", 2, 1)]


def test_the_period_edges_are_utc_midnights(client):
    rows = trigger_stats_rows(client, DB, "t1", Period(date(2025, 11, 30), date(2025, 11, 30)))
    assert [(r.trigger, r.fired) for r in rows.triggers] == [("a", 1)]
    rows = trigger_stats_rows(client, DB, "t1", Period(date(2025, 12, 4), date(2025, 12, 4)))
    assert [(r.trigger, r.fired) for r in rows.triggers] == [("a", 1)]
    assert rows.segments == [SegmentCounts("seg2", 1, 0)]


def test_another_tenant_sees_only_its_own(client):
    rows = trigger_stats_rows(client, DB, "t2", PERIOD)
    assert [(r.trigger, r.fired) for r in rows.triggers] == [("a", 1)]
    assert rows.sends == rows.suppressed == rows.segments == []
