"""Behaviour triggers and segments: what they are and every decision about them, pure.

A trigger (per tenant): when an event (a product event by name, or a platform event such as
`lead.accepted`, `email.clicked`, `sms.replied`, `lead.unsubscribed`) whose properties match
`where`, if every condition holds, do the action: send template X on channel C, now, after a
delay, or at the lead's next local time of day. While it waits, a goal event ends it ("exit");
an `absent` condition waits for its window to close and does nothing if the awaited event came.

Conditions: `count` (at least N events in a window, with property filters), `absent`,
`score` (engagement score at least / at most), `segment` (in / not in), `attribute` (a lead
attribute equals / is one of / at least), `history` (trigger T was, or was not, sent within a
window). Guards at firing: cooldown per lead and trigger, the tenant's cap on triggered
messages per lead per day and per week, quiet hours in the lead's own zone.

The engine (agents/triggers.py, services/triggering.py) gathers the facts and does the I/O.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.schedule import after_quiet_hours, in_quiet_hours, parse_quiet_hours, parse_send_time, resolve_timezone

_DURATION = re.compile(r"^(\d{1,6})\s*(ms|s|m|h|d|w)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
EVENT_NAME = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")
PROPERTY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
PLATFORM_EVENTS = ("lead.accepted", "lead.unsubscribed", "email.opened", "email.clicked", "sms.clicked",
                   "sms.replied")
MAX_WINDOW_MS = 90 * 86_400_000  # the longest window a condition may look back
STALE_MS = 60 * 60_000  # an event older than this when it is read (a replay, a backfill) changes state but fires nothing
Scalar = str | int | float | bool


def duration_ms(text: str) -> int:
    """"90s", "30m", "2h", "7d", "1w" in milliseconds; ValueError for anything else."""
    m = _DURATION.match(str(text).strip())
    if not m:
        raise ValueError(f"{text!r} is not a duration: a number and a unit (ms, s, m, h, d, w), e.g. 2h")
    return int(m[1]) * _UNIT_MS[m[2]]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True)


def _check_duration(v: str | None, most_ms: int = MAX_WINDOW_MS) -> str | None:
    if v is None:
        return v
    if duration_ms(v) > most_ms:
        raise ValueError(f"{v!r} is longer than {most_ms // 86_400_000} days")
    return v


def _check_where(v: dict) -> dict:
    for k in v:
        if not PROPERTY_NAME.match(k):
            raise ValueError(f"{k!r} is not a property name (letters, digits, _)")
    return v


def _check_event(v: str) -> str:
    if not EVENT_NAME.match(v):
        raise ValueError(f"{v!r} is not an event name (lower-case letters, digits, _ . : -, at most 64)")
    return v


class Count(_Model):
    event: str
    where: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)
    at_least: int = Field(1, ge=1, le=10_000)
    within: str

    _event = field_validator("event")(classmethod(lambda cls, v: _check_event(v)))
    _within = field_validator("within")(classmethod(lambda cls, v: _check_duration(v)))
    _where = field_validator("where")(classmethod(lambda cls, v: _check_where(v)))


class Absent(_Model):
    event: str
    within: str
    same: list[str] = Field(default_factory=list)  # properties the awaited event must share with the trigger's

    _event = field_validator("event")(classmethod(lambda cls, v: _check_event(v)))
    _within = field_validator("within")(classmethod(lambda cls, v: _check_duration(v)))


class Score(_Model):
    at_least: float | None = None
    at_most: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> "Score":
        if self.at_least is None and self.at_most is None:
            raise ValueError("a score condition needs at_least or at_most")
        return self


class SegmentCond(_Model):
    in_: str | None = Field(None, alias="in")
    not_in: str | None = None

    @model_validator(mode="after")
    def _one(self) -> "SegmentCond":
        if (self.in_ is None) == (self.not_in is None):
            raise ValueError("a segment condition is either in: SEGMENT or not_in: SEGMENT")
        return self


class Attribute(_Model):
    field: str
    equals: Scalar | None = None
    in_: list[Scalar] | None = Field(None, alias="in")
    at_least: float | None = None
    present: bool | None = None

    @model_validator(mode="after")
    def _one_test(self) -> "Attribute":
        tests = [x for x in (self.equals, self.in_, self.at_least, self.present) if x is not None]
        if len(tests) != 1:
            raise ValueError("an attribute condition has exactly one of equals, in, at_least, present")
        return self


class History(_Model):
    trigger: str
    within: str
    sent: bool = False  # False: fire only if T was NOT sent within the window

    _within = field_validator("within")(classmethod(lambda cls, v: _check_duration(v)))


class Condition(_Model):
    """Exactly one kind of condition."""

    count: Count | None = None
    absent: Absent | None = None
    score: Score | None = None
    segment: SegmentCond | None = None
    attribute: Attribute | None = None
    history: History | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "Condition":
        kinds = [k for k in ("count", "absent", "score", "segment", "attribute", "history") if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError("a condition is exactly one of count, absent, score, segment, attribute, history")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("count", "absent", "score", "segment", "attribute", "history") if getattr(self, k))


class When(_Model):
    event: str
    where: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)

    _event = field_validator("event")(classmethod(lambda cls, v: _check_event(v)))
    _where = field_validator("where")(classmethod(lambda cls, v: _check_where(v)))


class Action(_Model):
    template: str = Field(min_length=1, max_length=64)
    channel: Literal["email", "sms"] = "email"
    list: str = ""  # the list whose consent and unsubscribe it goes under; empty: the lead's list on the channel
    delay: str | None = None  # after the event (and after an absent window)
    at_local_time: str | None = None  # the lead's next local HH:MM (after any delay)

    _delay = field_validator("delay")(classmethod(lambda cls, v: _check_duration(v, 30 * 86_400_000)))

    @field_validator("at_local_time")
    @classmethod
    def _hhmm(cls, v: str | None) -> str | None:
        if v is not None:
            parse_send_time(v)
        return v


class Goal(_Model):
    event: str
    same: list[str] = Field(default_factory=list)

    _event = field_validator("event")(classmethod(lambda cls, v: _check_event(v)))


class TriggerConfig(_Model):
    """A trigger entity's data."""

    when: When  # (not "on": YAML reads a bare on: as true)
    conditions: list[Condition] = Field(default_factory=list, max_length=10)
    action: Action
    goal: Goal | None = None
    cooldown: str = "24h"
    enabled: bool = True
    description: str = Field("", max_length=300)

    _cooldown = field_validator("cooldown")(classmethod(lambda cls, v: _check_duration(v)))

    @model_validator(mode="after")
    def _one_absent(self) -> "TriggerConfig":
        if sum(1 for c in self.conditions if c.absent) > 1:
            raise ValueError("a trigger has at most one absent condition")
        return self


class SegmentConfig(_Model):
    """A segment entity's data: rules kept incrementally, or a ClickHouse query refreshed."""

    rules: list[Condition] = Field(default_factory=list, max_length=10)
    query: str | None = Field(None, max_length=4000)
    refresh: str = "5m"
    description: str = Field("", max_length=300)

    _refresh = field_validator("refresh")(classmethod(lambda cls, v: _check_duration(v, 86_400_000)))

    @model_validator(mode="after")
    def _rules_or_query(self) -> "SegmentConfig":
        if bool(self.rules) == bool(self.query):
            raise ValueError("a segment has either rules: (kept as events happen) or query: (a ClickHouse query)")
        if any(c.absent or c.history for c in self.rules):
            raise ValueError("segment rules are count, score, segment, attribute conditions (not absent or history)")
        if self.query is not None:
            check_segment_query(self.query)
        return self


class TriggerPolicy(_Model):
    """A tenant's triggered-message settings."""

    unknown_person: Literal["reject", "record"] = "reject"  # an event for a person we do not know
    per_day: int = Field(3, ge=0, le=100)  # triggered messages per lead per local day ...
    per_week: int = Field(10, ge=0, le=500)  # ... and per 7 days
    quiet_hours: str | None = "21:00-08:00"  # the lead's local time; None: none (SMS keeps its default)
    max_property_bytes: int = Field(4096, ge=256, le=65536)
    # product events' properties analysts read clear (a category, a job id); every other
    # property's value is sealed with the person's data key, and gone with an erasure
    clear_properties: list[str] = Field(default_factory=list, max_length=100)

    @field_validator("clear_properties")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        bad = [n for n in v if not PROPERTY_NAME.fullmatch(n)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a property name (a letter or _, then letters, digits, _; at most 64)")
        return sorted(set(v))

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, v: str | None) -> str | None:
        if v is not None:
            parse_quiet_hours(v)
        return v


_QUERY_FORBIDDEN = re.compile(r";|\b(insert|alter|drop|truncate|create|rename|attach|detach|optimize|system|kill|grant|"
                              r"revoke|set|delete|update)\b", re.IGNORECASE)


def check_segment_query(query: str) -> None:
    """A segment query is one SELECT returning lead ids, with {tenant} where the tenant goes."""
    q = query.strip()
    if not q.lower().startswith("select"):
        raise ValueError("a segment query is a SELECT returning lead_id")
    if _QUERY_FORBIDDEN.search(q):
        raise ValueError("a segment query is a single SELECT: no ';' and no statement that changes anything")
    if "{tenant}" not in q:
        raise ValueError("a segment query names its tenant as {tenant} (the platform puts the quoted tenant id there)")


# --- matching ---------------------------------------------------------------------------

def _matches(value: Any, want: Any) -> bool:
    if isinstance(want, list):
        return any(_matches(value, w) for w in want)
    if isinstance(value, str) and isinstance(want, str):
        return value.casefold() == want.casefold()
    return value == want


def where_holds(where: dict, props: dict) -> bool:
    """Every filter matches (a list filter: any of its values); case-insensitive for text."""
    return all(k in props and _matches(props[k], v) for k, v in where.items())


def triggers_on(triggers: dict[str, TriggerConfig], name: str, props: dict) -> list[str]:
    """The enabled triggers this event starts, sorted by id."""
    return sorted(tid for tid, t in triggers.items() if t.enabled and t.when.event == name and where_holds(t.when.where, props))


def same_holds(same: list[str], cause: dict, other: dict) -> bool:
    """The other event shares these properties with the cause (an empty list: always)."""
    return all(k in cause and k in other and cause[k] == other[k] for k in same)


# --- facts and conditions ---------------------------------------------------------------

@dataclass(frozen=True)
class Facts:
    """What the engine read about one lead to decide."""

    now_ms: int
    events: dict[str, list[tuple[int, dict]]] = field(default_factory=dict)  # name -> [(at, props)], newest last
    score: float = 0.0
    segments: frozenset[str] = frozenset()
    attributes: dict = field(default_factory=dict)
    fired: dict[str, int] = field(default_factory=dict)  # trigger -> when last sent


def count_in(facts: Facts, c: Count) -> int:
    since = facts.now_ms - duration_ms(c.within)
    return sum(1 for at, props in facts.events.get(c.event, ()) if since <= at <= facts.now_ms and where_holds(c.where, props))


def condition_holds(c: Condition, facts: Facts) -> bool:
    """Whether an immediate condition holds now (absent is decided at its deadline: True here)."""
    if c.count:
        return count_in(facts, c.count) >= c.count.at_least
    if c.score:
        s = c.score
        return (s.at_least is None or facts.score >= s.at_least) and (s.at_most is None or facts.score <= s.at_most)
    if c.segment:
        return (c.segment.in_ in facts.segments) if c.segment.in_ else (c.segment.not_in not in facts.segments)
    if c.attribute:
        return attribute_holds(c.attribute, facts.attributes)
    if c.history:
        last = facts.fired.get(c.history.trigger)
        recent = last is not None and facts.now_ms - last <= duration_ms(c.history.within)
        return recent if c.history.sent else not recent
    return True


def attribute_holds(a: Attribute, attrs: dict) -> bool:
    value = attrs.get(a.field)
    if a.present is not None:
        return (value not in (None, "", [])) == a.present
    if value is None:
        return False
    if a.equals is not None:
        return any(_matches(v, a.equals) for v in value) if isinstance(value, list) else _matches(value, a.equals)
    if a.in_ is not None:
        values = value if isinstance(value, list) else [value]
        return any(_matches(v, a.in_) for v in values)
    try:
        return float(value) >= float(a.at_least)
    except (TypeError, ValueError):
        return False


def unmet(conditions: list[Condition], facts: Facts) -> str | None:
    """The kind of the first condition that does not hold now, or None."""
    for c in conditions:
        if not condition_holds(c, facts):
            return c.kind
    return None


def events_needed(conditions: list[Condition], goal: Goal | None = None) -> set[str]:
    """The event names whose history the conditions (and goal) read."""
    names = {c.count.event for c in conditions if c.count} | {c.absent.event for c in conditions if c.absent}
    return names | ({goal.event} if goal else set())


def longest_window_ms(conditions: list[Condition]) -> int:
    return max([duration_ms(c.count.within) for c in conditions if c.count] +
               [duration_ms(c.absent.within) for c in conditions if c.absent] + [0])


# --- timing -----------------------------------------------------------------------------

def fire_at(t: TriggerConfig, event_ms: int, tz: str | None) -> int:
    """When the action goes: after the absent window and the delay, then at the lead's next
    local time of day when one is set."""
    at = event_ms
    absent = next((c.absent for c in t.conditions if c.absent), None)
    if absent:
        at += duration_ms(absent.within)
    if t.action.delay:
        at += duration_ms(t.action.delay)
    if t.action.at_local_time:
        at = next_local_time(at, t.action.at_local_time, tz)
    return at


def next_local_time(after_ms: int, hhmm: str, tz: str | None) -> int:
    """The first instant at or after after_ms when the lead's clock shows hhmm."""
    zone, _ = resolve_timezone(tz)
    hour, minute = parse_send_time(hhmm)
    local = datetime.fromtimestamp(after_ms / 1000, tz=timezone.utc).astimezone(zone)
    for days in range(0, 3):
        day = (local + timedelta(days=days)).date()
        candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
        ms = int(candidate.astimezone(timezone.utc).timestamp() * 1000)
        if ms >= after_ms:
            return ms
    raise AssertionError("unreachable: a local time comes within three days")


def quiet_until(now_ms: int, tz: str | None, quiet: str | None) -> int | None:
    """When a message that would go now may go instead (the end of the lead's quiet hours), or None."""
    if quiet and in_quiet_hours(now_ms, tz, quiet):
        return after_quiet_hours(now_ms, tz, quiet)
    return None


def is_stale(event_ms: int, now_ms: int) -> bool:
    """An event read long after it happened (a replay or backfill): it updates state, fires nothing."""
    return now_ms - event_ms > STALE_MS


# --- ids --------------------------------------------------------------------------------

def trigger_send_id(tenant: str, trigger: str, lead_id: str, cause_event_id: str) -> str:
    """One message at most per (trigger, lead, triggering event): a redelivered or replayed event
    gets the same id, and the sender delivers an id once."""
    return hashlib.blake2b(f"{tenant}\x1f{trigger}\x1f{lead_id}\x1f{cause_event_id}".encode(),
                           digest_size=12).hexdigest()


def local_day(ms: int, tz: str | None) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).astimezone(resolve_timezone(tz)[0]).strftime("%Y-%m-%d")


def week_days(ms: int, tz: str | None) -> list[str]:
    """The lead's local day of ms and the six before it (the week a per-week cap counts)."""
    return [local_day(ms - n * 86_400_000, tz) for n in range(7)]


def attributes_of(state) -> dict:
    """What attribute conditions and merge tags may read of a lead (never its address)."""
    if state is None:
        return {}
    profile = {k: v for k, v in (state.profile or {}).items() if k not in ("email", "phone", "address")}
    return {**profile, "channel": state.channel, "status": state.status, "lists": list(state.lists),
            "partners": list(state.partners), "timezone": state.timezone or "", "region": state.region or "",
            "first_name": state.first_name or ""}


def cap_reason(today: int, week: int, policy: TriggerPolicy) -> str | None:
    """Why one more triggered message would pass the tenant's caps (counts without it), or None."""
    if today >= policy.per_day:
        return "capped_day"
    if week >= policy.per_week:
        return "capped_week"
    return None


def cooldown_holds(last_ms: int | None, now_ms: int, cooldown: str) -> bool:
    """True while the lead is in this trigger's cooldown."""
    return last_ms is not None and now_ms - last_ms < duration_ms(cooldown)


def bound_segment_query(query: str, tenant: str) -> str:
    """The query with the tenant in place of {tenant}: tenant ids are [a-z0-9_-], quoted as a literal."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", tenant):
        raise ValueError(f"{tenant!r} is not a tenant id")
    return query.replace("{tenant}", f"'{tenant}'")
