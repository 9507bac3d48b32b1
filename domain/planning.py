"""What the planner decides: which lists of a lead are scheduled when, which requests fall
due, and the welcome message. Pure: instants and ids come in as arguments.

A daily send's id is blake2b(tenant, lead, list, the lead's local date), and its event id is
derived from that id: the planner may emit the same request twice (a crash before it moved
the schedule on), and both copies are the same event, delivered once (the sender keeps the
id's in-flight / sent mark).

A lead's own preferences for a list (domain.preferences: its cadence, a pause, leaving it)
come before the list's: the schedule follows the lead's cadence, nothing falls due before a
pause ends, and a list the lead left is never scheduled again. A running experiment on a list
that varies the send time schedules each lead at its arm's (domain.experiments.list_for_lead).
"""
from __future__ import annotations

import hashlib
from functools import lru_cache

from domain.experiments import list_for_lead
from domain.geo import point_timezone, zip_timezone
from domain.identity import derived_event_id
from domain.intake import LeadState, source_partner
from domain.preferences import preference_of
from domain.schedule import local_date, next_due, send_id, welcome_at
from domain.schema_labels import schema_label
from domain.tenants import Tenant

MAX_LATE_MS = 6 * 3600 * 1000
WELCOME_MAX_AGE_MS = 24 * 3600 * 1000  # a daily alert missed by more than this is skipped, not sent late
SOURCE = "agent:planner"


def member(lead_id: str, list_name: str) -> str:
    """The schedule's member for one lead on one list."""
    return f"{lead_id}|{list_name}"


def split_member(m: str) -> tuple[str, str]:
    lead_id, _, list_name = m.partition("|")
    return lead_id, list_name


def lead_timezone(state: LeadState) -> str | None:
    """The lead's IANA zone: from its phone number, else its zip, else its coordinates
    (None: the list's default zone applies)."""
    if state.timezone:
        return state.timezone
    p = state.profile or {}
    if p.get("zip"):
        tz = zip_timezone(str(p["zip"])[:5])
        if tz:
            return tz
    if p.get("lat") is not None and p.get("lon") is not None:
        return point_timezone(p["lat"], p["lon"])
    return None


def schedule_for(state: LeadState, tenant: Tenant, after_ms: int) -> list[tuple[str, int]]:
    """(member, next due instant) of every list an accepted lead receives; [] otherwise.
    The lead's own cadence for a list replaces the list's, and a paused list's first instant
    comes after the pause."""
    if state.status != "accepted":
        return []
    out = []
    for name in state.lists:
        cfg = tenant.lists.get(name)
        if cfg is None or cfg.channel != state.channel:
            continue
        cfg = list_for_lead(tenant.experiments, name, cfg, state.lead_id)  # an arm's send time
        pref = preference_of(state, name)
        if pref.left:
            continue
        after = max(after_ms, pref.paused_until_ms - 1)  # next_due is strictly after: the pause's end may be due
        due = next_due(after, lead_timezone(state), cfg.send_time, pref.cadence or cfg.cadence,
                       default_tz=cfg.timezone)
        out.append((member(state.lead_id, name), due))
    return out


def unscheduled_members(state: LeadState, scheduled: list[tuple[str, int]]) -> list[str]:
    """The schedule's members of this lead that schedule_for no longer keeps (lists it left,
    lists of a lead no longer accepted): the planner drops them."""
    kept = {m for m, _ in scheduled}
    names = dict.fromkeys([*state.lists, *(state.preferences or {})])
    return [member(state.lead_id, n) for n in names if member(state.lead_id, n) not in kept]


def daily_request(state: LeadState | None, tenant: Tenant, list_name: str, due_ms: int,
                  now_ms: int) -> tuple[tuple[str, dict] | None, int | None]:
    """For one member that fell due: (send.requested, or send.skipped when reached too late
    (after downtime), or None when the lead no longer receives the list or paused it; the
    member's next due instant (after the pause, at the lead's own cadence), or None to drop it
    from the schedule)."""
    cfg = tenant.lists.get(list_name)
    if state is None or cfg is None or state.status != "accepted" or list_name not in state.lists:
        return None, None
    pref = preference_of(state, list_name)
    if pref.left:
        return None, None
    cfg = list_for_lead(tenant.experiments, list_name, cfg, state.lead_id)  # an arm's send time
    tz = lead_timezone(state)
    cadence = pref.cadence or cfg.cadence
    if pref.paused_at(due_ms):  # scheduled before the pause was asked for: nothing now, on after it
        return None, next_due(max(due_ms, pref.paused_until_ms - 1), tz, cfg.send_time, cadence,
                              default_tz=cfg.timezone)
    following, day = _following_and_day(due_ms, tz, cfg.send_time, cadence, cfg.timezone)
    sid = send_id(tenant.id, state.lead_id, list_name, day)
    if now_ms - due_ms > MAX_LATE_MS:
        return ("send.skipped", _skipped(tenant.id, state, list_name, sid, due_ms, "missed_window")), following
    ev = _request(tenant.id, state, list_name, sid, "daily", due_ms, day, None, f"plan:{day}")
    return ("send.requested", ev), following


@lru_cache(maxsize=8192)
def _following_and_day(due_ms: int, tz: str | None, send_time: str, cadence: str,
                       default_tz: str) -> tuple[int, str]:
    """The next instant and the local date of a due instant. Cached: a morning's members
    share a few dozen (instant, zone) pairs, and zoneinfo arithmetic is the planner's cost."""
    return (next_due(due_ms, tz, send_time, cadence, default_tz=default_tz),
            local_date(due_ms, tz, default_tz=default_tz))


def welcome_request(accepted: dict, tenant: Tenant, now_ms: int) -> tuple[str, dict] | None:
    """The welcome message for a lead just accepted, on the priority path; none for an
    acceptance older than a day (a replay or a new planner reading old events)."""
    cfg = tenant.lists.get(accepted["list"])
    occurred = _ms(accepted["occurred_at"])
    if cfg is None or not cfg.welcome or now_ms - occurred > WELCOME_MAX_AGE_MS:
        return None
    due = welcome_at(occurred, accepted["channel"], accepted.get("timezone"), cfg.effective_quiet_hours,
                     default_tz=cfg.timezone)
    day = local_date(due, accepted.get("timezone"), default_tz=cfg.timezone)
    sid = hashlib.blake2b(f"{tenant.id}\x1f{accepted['lead_id']}\x1fwelcome".encode(),
                          digest_size=12).hexdigest()
    state = LeadState(tenant.id, accepted["lead_id"], accepted["channel"], accepted["address"], "accepted",
                      partners=[accepted["partner"]] if accepted.get("partner") else [])
    ev = _request(tenant.id, state, accepted["list"], sid, "welcome", due, day,
                  due if due > occurred else None, accepted["event_id"])
    return "send.requested", ev


def _request(tenant: str, state: LeadState, list_name: str, sid: str, kind: str, due_ms: int,
             day: str, not_before: int | None, cause: str) -> dict:
    return {"event_id": derived_event_id(sid, "send.requested", due_ms), "tenant": tenant,
            "occurred_at": due_ms, "schema": schema_label("send.requested"), "causation_id": cause,
            "source": SOURCE, "lead_id": state.lead_id, "send_id": sid, "channel": state.channel,
            "list": list_name, "kind": kind, "due_at": due_ms, "local_date": day, "attempt": 0,
            "not_before": not_before, "trigger": None, "partner": source_partner(state)}


def _skipped(tenant: str, state: LeadState, list_name: str, sid: str, due_ms: int, reason: str) -> dict:
    return {"event_id": derived_event_id(sid, "send.skipped", due_ms), "tenant": tenant,
            "occurred_at": due_ms, "schema": schema_label("send.skipped"), "causation_id": None, "source": SOURCE,
            "lead_id": state.lead_id, "send_id": sid, "channel": state.channel, "list": list_name,
            "kind": "daily", "reason": reason, "partner": source_partner(state)}


def _ms(ts) -> int:
    return ts if isinstance(ts, int) else int(ts.timestamp() * 1000)
