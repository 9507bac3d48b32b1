"""What each behaviour trigger and segment of a tenant did over a period of UTC days, from the
trigger engine's events and the sends they requested. Pure: the period's rules and the answer's
shape; projections/trigger_stats.py counts the events.

The engine says everything with an event (services/triggering/engine.py): a match whose
conditions held gets a send id and then trigger.scheduled (it waits on a timer), trigger.fired
(its send.requested went out, same send id), trigger.suppressed with a reason, or
trigger.deferred (quiet hours; judged again at their end, under the same send id). An event
that matches a trigger's `when` but not its conditions is not recorded (a metric only), and a
product event about an address that is no lead is suppressed as unknown_person before any
trigger is matched (its trigger is "").
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, timedelta
from typing import NamedTuple

from domain.accounting import PeriodError, period_of
from domain.partner_reports import Period
from domain.product_events import utc_iso

MAX_DAYS = 92
DEFAULT_DAYS = 7
FIRST_DAY = date(1970, 1, 1)  # nothing is recorded before (ClickHouse's DateTime starts there)
TRIGGER_EVENT_TYPES = ("trigger.scheduled", "trigger.fired", "trigger.suppressed", "trigger.deferred")
SEGMENT_EVENT_TYPES = ("segment.entered", "segment.exited")
SEND_EVENT_TYPES = ("send.requested", "send.dispatched", "send.delivered", "send.bounced", "send.failed",
                    "send.skipped")
TRIGGERED_SEND = "trigger:"  # send.requested's `trigger` for the engine's sends: "trigger:<trigger id>"
GOAL_REACHED = "goal_reached"
UNKNOWN_PERSON = "unknown_person"
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class TriggerCounts(NamedTuple):
    """One trigger's trigger.* events in the period (event ids counted once each)."""

    trigger: str
    matched: int  # distinct send ids: one per match whose conditions held
    scheduled: int
    deferred: int
    fired: int
    leads_fired: int
    last_fired_ms: int  # 0: never fired in the period


class SuppressedCount(NamedTuple):
    trigger: str
    reason: str
    count: int


class SendCounts(NamedTuple):
    """The sends one trigger requested in the period, and how many of them got each later step
    (at any time since)."""

    trigger: str
    requested: int
    dispatched: int
    delivered: int
    bounced: int
    failed: int
    skipped: int


class SegmentCounts(NamedTuple):
    segment: str
    entered: int
    exited: int


class StatsRows(NamedTuple):
    """What the period's events give, as the projection reads them."""

    triggers: list[TriggerCounts]
    suppressed: list[SuppressedCount]
    sends: list[SendCounts]
    segments: list[SegmentCounts]


def day_of(text: str, field: str) -> date:
    """A YYYY-MM-DD day, or PeriodError naming the field."""
    if _DAY.match(text or ""):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise PeriodError(field, f"{str(text)[:40]!r} is not a day: give YYYY-MM-DD (UTC)")


def stats_period(since: str | None, until: str | None, today: date) -> Period:
    """The days asked for, both inclusive: until defaults to today (UTC), since to the
    DEFAULT_DAYS ending on until; at most MAX_DAYS, not reversed, not after tomorrow, not
    before 1970. PeriodError names the field that is wrong."""
    last = day_of(until, "until") if until is not None else today
    first = day_of(since, "since") if since is not None else last - timedelta(days=DEFAULT_DAYS - 1)
    if first < FIRST_DAY:
        raise PeriodError("since", f"{first} is before {FIRST_DAY}: nothing is recorded before then")
    return period_of(first, last, today, MAX_DAYS)


def trigger_stats(period: Period, triggers: Iterable[str], segments: Iterable[str], rows: StatsRows) -> dict:
    """The answer: every configured trigger and segment (zeros when nothing happened) and any
    other seen in the events (removed since), each sorted by id."""
    configured, configured_segments = set(triggers), set(segments)
    counts = {r.trigger: r for r in rows.triggers if r.trigger}
    sends = {r.trigger: r for r in rows.sends if r.trigger}
    suppressed: dict[str, dict[str, int]] = {}
    for r in rows.suppressed:
        by_reason = suppressed.setdefault(r.trigger, {})
        by_reason[r.reason] = by_reason.get(r.reason, 0) + r.count
    unknown = sum(suppressed.pop("", {}).values())
    ids = sorted(configured | set(counts) | set(sends) | set(suppressed))
    seen_segments = {r.segment: r for r in rows.segments if r.segment}
    return {
        "since": period.since.isoformat(), "until": period.until.isoformat(),
        "triggers": [_trigger(tid, tid in configured, counts.get(tid), suppressed.get(tid, {}), sends.get(tid))
                     for tid in ids],
        "segments": [_segment(sid, sid in configured_segments, seen_segments.get(sid))
                     for sid in sorted(configured_segments | set(seen_segments))],
        "unknown_person_events": unknown,
    }


def _trigger(tid: str, configured: bool, c: TriggerCounts | None, suppressed: dict[str, int],
             s: SendCounts | None) -> dict:
    c = c or TriggerCounts(tid, 0, 0, 0, 0, 0, 0)
    s = s or SendCounts(tid, 0, 0, 0, 0, 0, 0)
    return {"trigger": tid, "configured": configured, "matched": c.matched, "scheduled": c.scheduled,
            "deferred": c.deferred, "fired": c.fired, "suppressed": dict(sorted(suppressed.items())),
            "goals_reached": suppressed.get(GOAL_REACHED, 0),
            "sends_requested": s.requested, "sends_dispatched": s.dispatched, "sends_delivered": s.delivered,
            "sends_bounced": s.bounced, "sends_failed": s.failed, "sends_skipped": s.skipped,
            "unique_leads_fired": c.leads_fired,
            "last_fired_at": utc_iso(c.last_fired_ms) if c.last_fired_ms else None}


def _segment(sid: str, configured: bool, c: SegmentCounts | None) -> dict:
    return {"segment": sid, "configured": configured, "entered": c.entered if c else 0,
            "left": c.exited if c else 0}
