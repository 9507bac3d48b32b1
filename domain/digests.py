"""Activity digests, pure: what a digest definition says, when a member's digest is due, which
items it carries, and the ids that make it happen at most once.

A digest run is one (tenant, digest, time zone, period): every member whose time zone it is
gets at most one digest for that period, at their local send time. Items are kept per group in
hourly buckets, each holding only its top K (the top K of a window is always inside the union of
its buckets' top Ks), so neither a bucket nor a member's pending digest grows with the window.
"""
from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Iterable, List, Literal  # List: the field "list" shadows the builtin in the model
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.identity import derived_event_id
from domain.schema_labels import schema_label
from domain.schedule import parse_send_time, resolve_timezone, wall_to_ms

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS
MAX_TOP_K = 50  # what a bucket keeps: no definition may ask for more
BUCKET_TTL_MS = 9 * DAY_MS  # a weekly window and a day of catching up
GROUP_KINDS = ("community", "saved_search", "employer", "feed")
PATHS = ("priority", "standard")
# why a member got no digest this period
SKIP_INACTIVE, SKIP_NOTHING_NEW = "inactive", "nothing_new"


class DigestConfig(BaseModel):
    """A digest entity's data (control plane)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    list: str = Field(min_length=1, max_length=64)  # whose subscribers get it: its consent and unsubscribe
    cadence: Literal["daily", "weekly"] = "daily"
    send_time: str = "08:00"  # the member's local time
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"  # weekly digests only
    group_kinds: List[Literal["community", "saved_search", "employer", "feed"]] = Field(
        default_factory=lambda: list(GROUP_KINDS), min_length=1)
    segment: str | None = Field(None, max_length=64)  # only members in this segment (else every member)
    top_k: int = Field(5, ge=1, le=MAX_TOP_K)
    template: str = Field("digest", min_length=1, max_length=64)
    inactive_days: int = Field(90, ge=1, le=3650)  # members not seen for this long...
    large_run_members: int = Field(10_000, ge=1)  # ...are left out of runs at least this large
    priority_active_days: int = Field(7, ge=1, le=365)  # members seen this recently go first
    catch_up_hours: int = Field(6, ge=0, le=48)  # a run found this late is still made; older ones are missed
    enabled: bool = True
    description: str = Field("", max_length=300)

    @field_validator("send_time")
    @classmethod
    def _send_time(cls, v: str) -> str:
        parse_send_time(v)
        return v


@dataclass(frozen=True)
class Period:
    """One period of a digest in one time zone: its key, when it is sent, the window it covers."""

    key: str  # 2026-12-06 (daily) or 2026-W49 (weekly)
    send_at_ms: int
    window_start_ms: int

    @property
    def window_end_ms(self) -> int:
        return self.send_at_ms


@dataclass(frozen=True)
class Item:
    """One activity item as a digest shows it."""

    item_id: str
    group_id: str
    score: float
    posted_at_ms: int
    title: str = ""
    url: str = ""
    author: str = ""  # a lead id, or "" when not a member


_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


def latest_period(cfg: DigestConfig, tz: str, now_ms: int) -> Period:
    """The most recent period of this digest whose send time (in tz) is at or before now."""
    zone, _ = resolve_timezone(tz)
    hour, minute = parse_send_time(cfg.send_time)
    day = datetime.fromtimestamp(now_ms // 1000, zone).date()
    step = 1 if cfg.cadence == "daily" else 7
    if cfg.cadence == "weekly":
        day -= timedelta(days=(day.weekday() - _WEEKDAYS[cfg.weekday]) % 7)
    at = wall_to_ms(day, hour, minute, zone)
    if at > now_ms:
        day -= timedelta(days=step)
        at = wall_to_ms(day, hour, minute, zone)
    start = wall_to_ms(day - timedelta(days=step), hour, minute, zone)
    return Period(_period_key(cfg, day), at, start)


def _period_key(cfg: DigestConfig, day: date) -> str:
    if cfg.cadence == "daily":
        return day.isoformat()
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def due(cfg: DigestConfig, period: Period, now_ms: int) -> bool:
    """Whether a run of this period should be made now (not later than the catch-up allows)."""
    return cfg.enabled and period.send_at_ms <= now_ms <= period.send_at_ms + cfg.catch_up_hours * HOUR_MS


def hour_buckets(window_start_ms: int, window_end_ms: int) -> list[int]:
    """The hours (numbers since the epoch) a period's window covers: whole hours, from the one
    holding its start up to (not including) the one holding its send time. A period's window
    starts where the previous one's ended, so every item falls in exactly one period."""
    return list(range(window_start_ms // HOUR_MS, window_end_ms // HOUR_MS))


def _rank(it: Item) -> tuple:
    """Best first is highest (score, id): Redis's order in a sorted set read from the top, so
    what a bucket keeps and what a worker ranks agree even on equal scores."""
    return (it.score, it.item_id)


def group_top(items: Iterable[Item], k: int) -> list[Item]:
    """A group's best k of the window (highest score first), duplicates removed."""
    unique = {it.item_id: it for it in items}
    return heapq.nlargest(k, unique.values(), key=_rank)


def run_id(tenant: str, digest: str, tz: str, period_key: str) -> str:
    """One id per run: every worker planning the same run names it the same."""
    return _hash(f"run\x1f{tenant}\x1f{digest}\x1f{tz}\x1f{period_key}", 10)


def digest_send_id(tenant: str, digest: str, lead_id: str, period_key: str) -> str:
    """One send id per (member, digest, period): the sender delivers each at most once."""
    return _hash(f"digest\x1f{tenant}\x1f{digest}\x1f{lead_id}\x1f{period_key}", 12)


def _hash(text: str, size: int) -> str:
    return hashlib.blake2b(text.encode(), digest_size=size).hexdigest()


@dataclass(frozen=True)
class Chunk:
    """A slice of a run's members (ranks in one path's snapshot), the unit a worker takes."""

    path: str
    index: int
    start: int
    stop: int  # exclusive


def chunks_of(path: str, members: int, size: int, first_index: int = 0) -> list[Chunk]:
    """A path's members cut into chunks of at most `size` ranks."""
    return [Chunk(path, first_index + n, start, min(start + size, members))
            for n, start in enumerate(range(0, members, size))]


@dataclass(frozen=True)
class Cutoffs:
    """Scores (last seen, ms) that split a run's members into priority, standard and left out."""

    priority_from_ms: int
    active_from_ms: int | None  # None: nobody is left out (the run is not large)


def cutoffs(cfg: DigestConfig, members: int, now_ms: int) -> Cutoffs:
    """Members seen since priority_from go first; in a large run those not seen since active_from are left out."""
    active = now_ms - cfg.inactive_days * DAY_MS if members >= cfg.large_run_members else None
    return Cutoffs(now_ms - cfg.priority_active_days * DAY_MS, active)


def top_items(candidates: Iterable[Item], k: int, member: str, joined_ms: dict[str, int]) -> list[Item]:
    """The member's top k of their groups' best (each group's group_top): highest score first,
    leaving out their own items and items posted in a group before they joined it. Everyone in
    a group sees the period's best of it, less what was theirs or came before them."""
    seen: set[str] = set()
    kept = []
    for it in candidates:
        if it.item_id in seen or it.author == member or it.posted_at_ms < joined_ms.get(it.group_id, 0):
            continue
        seen.add(it.item_id)
        kept.append(it)
    return heapq.nlargest(k, kept, key=_rank)


def digest_context(digest: str, period: Period, items: list[Item]) -> dict:
    """What the template sees under `digest`: the period and the items, best first."""
    return {"digest": {"id": digest, "period": period.key, "count": len(items),
                       "items": [{"title": it.title, "url": it.url, "group": it.group_id, "score": it.score,
                                  "posted_at": it.posted_at_ms} for it in items]}}


def send_request(tenant: str, digest: str, cfg: DigestConfig, lead_id: str, partner: str, period: Period,
                 items: list[Item], run: str, local_day: str, now_ms: int, context_json: str) -> dict:
    """The send.requested of one member's digest (its id and event id fixed by member and period)."""
    sid = digest_send_id(tenant, digest, lead_id, period.key)
    return {"event_id": derived_event_id(sid, "send.requested", period.send_at_ms), "tenant": tenant,
            "occurred_at": now_ms, "schema": schema_label("send.requested"), "causation_id": run, "source": "agent:digests",
            "lead_id": lead_id, "send_id": sid, "channel": "email", "list": cfg.list, "kind": "digest",
            "due_at": period.send_at_ms, "local_date": local_day, "attempt": 0, "not_before": None,
            "trigger": f"digest:{digest}", "partner": partner, "template": cfg.template, "context": context_json}


def local_day_of(at_ms: int, tz: str) -> str:
    zone: ZoneInfo = resolve_timezone(tz)[0]
    return datetime.fromtimestamp(at_ms // 1000, zone).date().isoformat()
