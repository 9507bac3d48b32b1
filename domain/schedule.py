"""Local-time scheduling: cadences, due instants across DST, catch-up, quiet hours, send ids.

All instants are UTC epoch milliseconds; wall-clock times are the lead's local time.
Time zones come from the stdlib `zoneinfo` with the pinned `tzdata` package.

DST rules (one send per local day, never two, never none):
- a send_time that does not exist that day (spring-forward gap, e.g. 02:30 in New York on the
  second Sunday of March) is sent at the first valid instant after it (03:00 local);
- a send_time that exists twice (fall-back hour) is sent once, at its first occurrence (fold=0).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Iterable, Iterator, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "America/New_York"
SMS_DEFAULT_QUIET_HOURS = "21:00-08:00"
MAX_LATE_MS = 6 * 3600 * 1000  # a daily alert delivered more than 6 h late lands at a silly hour

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NUMBERS = {**{n: i for i, n in enumerate(DAY_NAMES)}, **{n: i for i, n in enumerate(_FULL_DAY_NAMES)}}

# N sends a week, spread so the gaps are as even as possible, working days before weekends.
PER_WEEK_DAYS = {
    1: (2,),                   # Wed
    2: (1, 3),                 # Tue, Thu
    3: (0, 2, 4),              # Mon, Wed, Fri
    4: (0, 1, 3, 4),           # Mon, Tue, Thu, Fri
    5: (0, 1, 2, 3, 4),        # Mon-Fri
    6: (0, 1, 2, 3, 4, 5),     # Mon-Sat
    7: (0, 1, 2, 3, 4, 5, 6),  # every day
}

_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_PER_WEEK = re.compile(r"(\d+)_per_week")
_DAY = timedelta(days=1)
_CADENCE_FORMS = ('"daily", "weekdays", "weekly", "weekly:mon", "3_per_week" (1-7), '
                  'or a day list like "mon,wed,fri"')


# --- parsing -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cadence:
    """Which local weekdays (Mon=0) a list sends on; days=None is "weekly" not yet anchored."""

    spec: str
    days: frozenset[int] | None

    @property
    def anchored(self) -> bool:
        """False only for bare "weekly", whose weekday is that of the lead's first send."""
        return self.days is not None

    def allows(self, weekday: int) -> bool:
        """Whether a send may happen on this local weekday (any day for an unanchored first send)."""
        return self.days is None or weekday in self.days

    def anchor(self, weekday: int) -> "Cadence":
        """Bare "weekly" pinned to the weekday of the lead's first send; others unchanged."""
        if self.days is not None:
            return self
        return Cadence(f"weekly:{DAY_NAMES[weekday]}", frozenset((weekday,)))


@lru_cache(maxsize=4096)
def parse_cadence(text: str) -> Cadence:
    """A Cadence from its text form; ValueError naming the accepted forms otherwise."""
    s = " ".join(str(text).split()).lower()
    if s == "daily":
        return Cadence(s, frozenset(range(7)))
    if s == "weekdays":
        return Cadence(s, frozenset(range(5)))
    if s == "weekly":
        return Cadence(s, None)
    if s.startswith("weekly:"):
        day = _day_number(s[7:].strip(), text)
        return Cadence(f"weekly:{DAY_NAMES[day]}", frozenset((day,)))
    per_week = _PER_WEEK.fullmatch(s)
    if per_week:
        n = int(per_week.group(1))
        if n not in PER_WEEK_DAYS:
            raise ValueError(f"cadence {text!r}: N in N_per_week must be 1 to 7, got {n}")
        return Cadence(f"{n}_per_week", frozenset(PER_WEEK_DAYS[n]))
    if s and all(part.strip() in _DAY_NUMBERS for part in s.split(",")):
        days = sorted({_DAY_NUMBERS[part.strip()] for part in s.split(",")})
        return Cadence(",".join(DAY_NAMES[d] for d in days), frozenset(days))
    raise ValueError(f"cadence {text!r} is not understood: use {_CADENCE_FORMS}")


def _day_number(name: str, text: str) -> int:
    if name not in _DAY_NUMBERS:
        raise ValueError(f"cadence {text!r}: {name!r} is not a weekday (mon, tue, ... sun)")
    return _DAY_NUMBERS[name]


@lru_cache(maxsize=1024)
def parse_send_time(text: str) -> tuple[int, int]:
    """(hour, minute) from "HH:MM" on a 24-hour clock; ValueError otherwise."""
    m = _HHMM.fullmatch(str(text).strip())
    if not m:
        raise ValueError(f'"{text}" is not a time of day: HH:MM on a 24-hour clock (e.g. "09:00", "17:30")')
    return int(m.group(1)), int(m.group(2))


@lru_cache(maxsize=256)
def parse_quiet_hours(text: str) -> tuple[int, int]:
    """(start, end) minutes of day from "HH:MM-HH:MM"; the window may wrap midnight."""
    parts = str(text).split("-")
    if len(parts) != 2:
        raise ValueError(f'quiet hours {text!r} are not "HH:MM-HH:MM" (e.g. "21:00-08:00")')
    (sh, sm), (eh, em) = parse_send_time(parts[0]), parse_send_time(parts[1])
    start, end = sh * 60 + sm, eh * 60 + em
    if start == end:
        raise ValueError(f"quiet hours {text!r} start and end at the same time: leave them unset instead")
    return start, end


@lru_cache(maxsize=1024)
def resolve_timezone(name: str | None, default: str = DEFAULT_TIMEZONE) -> tuple[ZoneInfo, bool]:
    """(zone, used_default): the named IANA zone, or the default when the name is missing or unknown."""
    if name:
        try:
            return ZoneInfo(name), False
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name like "America"
            pass
    try:
        return ZoneInfo(default), True
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"default timezone {default!r} is not an IANA zone name "
                         f'(e.g. "America/New_York")') from None


def _zone(tz: str | ZoneInfo | None, default: str) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else resolve_timezone(tz, default)[0]


def _cadence(cadence: str | Cadence) -> Cadence:
    return cadence if isinstance(cadence, Cadence) else parse_cadence(cadence)


# --- wall clock <-> instants ---------------------------------------------------------------

def _local(at_ms: int, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(at_ms // 1000, zone)


def _ms(dt: datetime) -> int:
    return int(dt.timestamp()) * 1000  # wall times here are whole minutes: no rounding


def wall_to_ms(day: date, hour: int, minute: int, zone: ZoneInfo) -> int:
    """The instant the local clock shows day hour:minute: first occurrence if it shows it twice,
    the end of the gap if it skips it."""
    wall = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)  # fold=0: first
    at = _ms(wall)
    if _local(at, zone).replace(tzinfo=None) == wall.replace(tzinfo=None):
        return at
    return _gap_end(_ms(wall.replace(fold=1)), at, zone)


def _gap_end(lo_ms: int, hi_ms: int, zone: ZoneInfo) -> int:
    """The transition instant in (lo, hi]: zoneinfo has no public transition list, so bisect seconds."""
    lo, hi = min(lo_ms, hi_ms) // 1000, max(lo_ms, hi_ms) // 1000
    before = _local(lo * 1000, zone).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _local(mid * 1000, zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return hi * 1000


def local_date(at_ms: int, tz: str | ZoneInfo | None, *, default_tz: str = DEFAULT_TIMEZONE) -> str:
    """The lead's local calendar date (YYYY-MM-DD) at this instant."""
    return _local(at_ms, _zone(tz, default_tz)).date().isoformat()


def send_id(tenant: str, lead_id: str, list_name: str, local_day: str) -> str:
    """One id per (tenant, lead, list, local date): delivery is at most once per id."""
    key = f"{tenant}\x1f{lead_id}\x1f{list_name}\x1f{local_day}".encode()
    return hashlib.blake2b(key, digest_size=12).hexdigest()


# --- due instants --------------------------------------------------------------------------

@lru_cache(maxsize=8192)  # a rebuild asks for every lead at one instant: a few zones and send times
def next_due(after_ms: int, tz: str | ZoneInfo | None, send_time: str, cadence: str | Cadence,
             *, default_tz: str = DEFAULT_TIMEZONE) -> int:
    """The first instant strictly after after_ms when the local clock shows send_time on an
    allowed day."""
    zone, cad = _zone(tz, default_tz), _cadence(cadence)
    hour, minute = parse_send_time(send_time)
    # Start a day early: around a midnight fall-back the local date can step backwards.
    first = _local(after_ms, zone).date() - _DAY
    for offset in range(9):  # every weekday recurs within the 7 days after today
        day = first + offset * _DAY
        if cad.allows(day.weekday()):
            at = wall_to_ms(day, hour, minute, zone)
            if at > after_ms:
                return at
    raise AssertionError(f"no due day within a week for cadence {cad.spec!r}")  # parse forbids it


def due_between(from_ms: int, to_ms: int, tz: str | ZoneInfo | None, send_time: str,
                cadence: str | Cadence, *, default_tz: str = DEFAULT_TIMEZONE) -> list[int]:
    """Every due instant in (from_ms, to_ms], oldest first."""
    zone, cad = _zone(tz, default_tz), _cadence(cadence)
    out, at = [], from_ms
    while True:
        at = next_due(at, zone, send_time, cad)
        if at > to_ms:
            return out
        out.append(at)


@dataclass(frozen=True)
class Skipped:
    """A missed send that will not be delivered, and why."""

    due_ms: int
    reason: str  # "too_late" (missed by more than max_late_ms) or "superseded" (a newer one is sent)
    late_ms: int


@dataclass(frozen=True)
class CatchUp:
    """What to do about the sends missed while the scheduler was down."""

    send_ms: int | None  # the one missed due instant still worth sending now, if any
    skipped: tuple[Skipped, ...]


def catch_up(from_ms: int, now_ms: int, tz: str | ZoneInfo | None, send_time: str,
             cadence: str | Cadence, *, max_late_ms: int = MAX_LATE_MS,
             default_tz: str = DEFAULT_TIMEZONE) -> CatchUp:
    """After downtime (from_ms, now_ms]: send only the latest missed alert, and only if it is at
    most max_late_ms late; older ones are stale digests, so they are skipped, never piled up."""
    missed = due_between(from_ms, now_ms, tz, send_time, cadence, default_tz=default_tz)
    skipped = [Skipped(at, "too_late" if now_ms - at > max_late_ms else "superseded", now_ms - at)
               for at in missed[:-1]]
    if missed and now_ms - missed[-1] <= max_late_ms:
        return CatchUp(missed[-1], tuple(skipped))
    if missed:
        skipped.append(Skipped(missed[-1], "too_late", now_ms - missed[-1]))
    return CatchUp(None, tuple(skipped))


# --- quiet hours and welcome ---------------------------------------------------------------

def in_quiet_hours(at_ms: int, tz: str | ZoneInfo | None, quiet: str | None,
                   *, default_tz: str = DEFAULT_TIMEZONE) -> bool:
    """Whether the local clock at at_ms is inside the [start, end) quiet window."""
    if not quiet:
        return False
    local = _local(at_ms, _zone(tz, default_tz))
    return _minute_in_window(local.hour * 60 + local.minute, quiet)


def wall_time_in_quiet_hours(hhmm: str, quiet: str | None) -> bool:
    """Whether a local "HH:MM" falls inside the quiet window (config checks, no instant needed)."""
    hour, minute = parse_send_time(hhmm)
    return bool(quiet) and _minute_in_window(hour * 60 + minute, quiet)


def _minute_in_window(minute: int, quiet: str) -> bool:
    start, end = parse_quiet_hours(quiet)
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end  # the window wraps midnight


def after_quiet_hours(at_ms: int, tz: str | ZoneInfo | None, quiet: str | None,
                      *, default_tz: str = DEFAULT_TIMEZONE) -> int:
    """The first instant at or after at_ms outside the quiet window."""
    zone = _zone(tz, default_tz)
    if not in_quiet_hours(at_ms, zone, quiet):
        return at_ms
    end_h, end_m = divmod(parse_quiet_hours(quiet)[1], 60)
    today = _local(at_ms, zone).date()
    # The window ends today or tomorrow; in a repeated fall-back hour the end may exist twice.
    ends = []
    for day in (today, today + _DAY):
        wall = datetime(day.year, day.month, day.day, end_h, end_m, tzinfo=zone)
        ends += [wall_to_ms(day, end_h, end_m, zone), _ms(wall.replace(fold=1))]
    return min(t for t in ends if t >= at_ms and not in_quiet_hours(t, zone, quiet))


def welcome_at(accepted_ms: int, channel: str, tz: str | ZoneInfo | None, quiet: str | None = None,
               *, default_tz: str = DEFAULT_TIMEZONE) -> int:
    """When the welcome goes out: at once, except an SMS in quiet hours waits for their end."""
    if channel != "sms":
        return accepted_ms
    return after_quiet_hours(accepted_ms, tz, quiet or SMS_DEFAULT_QUIET_HOURS, default_tz=default_tz)


# --- planning a day in bulk ----------------------------------------------------------------

@lru_cache(maxsize=65536)
def _slots(zone_key: str, send_time: str, cadence: Cadence, start_ms: int, end_ms: int
           ) -> tuple[tuple[int, str], ...]:
    """(due_ms, local_date) for every due instant in [start_ms, end_ms): shared by every lead
    with this zone, time and cadence, so zoneinfo runs once per group, not once per lead."""
    zone = ZoneInfo(zone_key)
    return tuple((at, _local(at, zone).date().isoformat())
                 for at in due_between(start_ms - 1, end_ms - 1, zone, send_time, cadence))


def _list_slots(cfg, tz_name: str | None, start_ms: int, end_ms: int):
    zone, _ = resolve_timezone(tz_name, getattr(cfg, "timezone", DEFAULT_TIMEZONE))
    cadence = parse_cadence(cfg.cadence)
    if not cadence.anchored:
        return cadence  # bare "weekly": the weekday depends on each lead's first send
    return _slots(zone.key, cfg.send_time, cadence, start_ms, end_ms)


def iter_plan_day(leads: Iterable[tuple[str, str, str, str | None]], day_start_ms: int,
                  day_end_ms: int, lists: Mapping[str, Mapping[str, object]],
                  weekly_anchors: Mapping[tuple[str, str], int] | None = None
                  ) -> Iterator[tuple[str, str, int, str]]:
    """(lead_id, list_name, due_ms, send_id) for every send due in [day_start_ms, day_end_ms).

    leads: (lead_id, tenant, list_name, tz_name or None); lists: {tenant: {list_name: ListConfig}}.
    Leads on a list that is no longer configured are skipped. weekly_anchors maps
    (lead_id, list_name) to the weekday (Mon=0) of the lead's first send, for bare "weekly" lists;
    a lead without one has not had its first send yet, so it is due on the next send_time.
    """
    groups: dict = {}  # (tenant, list, tz) -> slots; a few hundred keys for a million leads
    anchors = weekly_anchors or {}
    for lead_id, tenant, list_name, tz_name in leads:
        key = (tenant, list_name, tz_name)
        slots = groups.get(key)
        if slots is None:
            cfg = lists.get(tenant, {}).get(list_name)
            slots = groups[key] = () if cfg is None else _list_slots(cfg, tz_name, day_start_ms, day_end_ms)
        if slots.__class__ is Cadence:  # rare path: per-lead weekday
            anchor = anchors.get((lead_id, list_name))
            cfg = lists[tenant][list_name]
            zone, _ = resolve_timezone(tz_name, getattr(cfg, "timezone", DEFAULT_TIMEZONE))
            cad = slots if anchor is None else slots.anchor(anchor)
            per_lead = _slots(zone.key, cfg.send_time, cad, day_start_ms, day_end_ms)
        else:
            per_lead = slots
        for due_ms, day in per_lead:
            yield lead_id, list_name, due_ms, send_id(tenant, lead_id, list_name, day)


def plan_day(leads: Iterable[tuple[str, str, str, str | None]], day_start_ms: int, day_end_ms: int,
             lists: Mapping[str, Mapping[str, object]],
             weekly_anchors: Mapping[tuple[str, str], int] | None = None
             ) -> list[tuple[str, str, int, str]]:
    """iter_plan_day as a list (prefer the iterator for millions of leads: it holds no plan in memory)."""
    return list(iter_plan_day(leads, day_start_ms, day_end_ms, lists, weekly_anchors))
