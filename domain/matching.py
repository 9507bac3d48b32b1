"""Which of a tenant's jobs to send a lead: an in-memory index and a deterministic ranking.

The index keeps postings per keyword and per category and a 1°x1° grid of job locations,
so ranking one lead scores only the jobs that match its interests near it, not every job.

Score (0..1) = 0.55 relevance + 0.20 proximity + 0.15 freshness + 0.10 pay, where
- relevance: share of the lead's keywords the job has, and whether its category is one of the
  lead's (averaged when the lead gave both); a lead with no interests gets 0 for everyone,
  so the other parts decide;
- proximity: 1 at the lead's door falling linearly to 0 at `max_km`; 0.5 (neutral) when the
  job or the lead has no location;
- freshness: 1 when posted now, falling linearly to 0 at 30 days; 0.5 when the date is unknown;
- pay: the click price up to $3.00 (the top of what partners pay), linearly.
Scores are rounded to 6 decimals and equal scores go to the smaller job key, so the same inputs
give the same list. The grid does not wrap at ±180° longitude (fine for the US mainland).

One entry per distinct job: postings with the same fingerprint (domain.jobs.fingerprint: title,
employer, place — the same job from two feeds, or listed twice with different links) form a
group, and only the group's preferred posting (better-paying, then fresher) is indexed and
ranked. A group counts as sent when any of its postings was, and as first seen when its
earliest posting was.
"""
from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from domain.feeds import keywords_of
from domain.geo import EARTH_RADIUS_KM, Point
from domain.jobs import Job, fingerprint, is_new, preferred

W_RELEVANCE = 0.55
W_PROXIMITY = 0.20
W_FRESHNESS = 0.15
W_PAY = 0.10
NEUTRAL = 0.5
FRESH_DAYS = 30
TOP_CPC_CENTS = 300
DAY_MS = 86_400_000
CELL_DEG = 1.0
KM_PER_DEG_LAT = EARTH_RADIUS_KM * math.pi / 180  # on the sphere haversine_km uses
Cell = tuple[int, int]


@dataclass(frozen=True)
class Match:
    """One job chosen for a lead, with its score and why it was chosen."""

    job: Job
    score: float
    distance_km: float | None
    reasons: tuple[str, ...]
    first_seen_ms: int = 0  # the earliest posting of this job on any feed (0: unknown)


class _Entry(NamedTuple):
    """What scoring needs of a job, worked out once when it is indexed."""

    terms: frozenset[str]
    category: str
    lat_rad: float | None
    lon_rad: float | None
    cos_lat: float
    posted_at_ms: int
    pay: float  # W_PAY * the pay part, which does not depend on the lead


class JobIndex:
    """One tenant's live jobs, indexed by keyword, category and grid cell."""

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.jobs: dict[str, Job] = {}
        self._entries: dict[str, _Entry] = {}
        self._terms: dict[str, set[str]] = {}
        self._categories: dict[str, set[str]] = {}
        self._cells: dict[Cell, set[str]] = {}
        self._unplaced: set[str] = set()  # jobs without coordinates: neutral on distance
        self._fingerprints: dict[str, str] = {}  # job key -> its fingerprint
        self._groups: dict[str, set[str]] = {}  # fingerprint -> keys of every posting of that job
        self._shown: dict[str, str] = {}  # fingerprint -> the key of the posting that is indexed
        self._indexed: set[str] = set()  # the shown keys: the only ones ranking ever considers
        self._first_seen: dict[str, int] = {}  # fingerprint -> earliest known posting time (0: unknown)

    def __len__(self) -> int:
        return len(self.jobs)

    def add(self, job: Job) -> None:
        """Index a job, replacing any earlier version with the same key; of several postings of
        the same job (same fingerprint) only the preferred one is indexed."""
        if job.tenant != self.tenant:
            raise ValueError(f"job {job.key} belongs to tenant {job.tenant!r}, not {self.tenant!r}")
        self.remove(job.key)
        fp = fingerprint(job)
        self.jobs[job.key] = job
        self._entries[job.key] = _entry(job)
        self._fingerprints[job.key] = fp
        self._groups.setdefault(fp, set()).add(job.key)
        self._first_seen[fp] = self._earliest(fp)
        shown = self._shown.get(fp)
        if shown is None:
            self._post(job.key)
        elif preferred(self.jobs[shown], job) is job:
            self._unpost(shown)
            self._post(job.key)

    def remove(self, key: str) -> None:
        """Forget a job (expired or replaced); unknown keys are ignored. When it was the posting
        shown for its group, the group's next preferred posting takes its place."""
        if key not in self.jobs:
            return
        fp = self._fingerprints[key]
        group = self._groups[fp]
        group.discard(key)
        if self._shown.get(fp) == key:
            self._unpost(key)
            if group:
                best = self.jobs[min(group)]
                for other in group:
                    best = preferred(best, self.jobs[other])
                self._post(best.key)
        del self.jobs[key], self._entries[key], self._fingerprints[key]
        if group:
            self._first_seen[fp] = self._earliest(fp)
        else:
            del self._groups[fp], self._first_seen[fp]

    def group_of(self, key: str) -> set[str]:
        """Keys of every posting of the same job as this one (itself included)."""
        fp = self._fingerprints.get(key)
        return set(self._groups.get(fp, ())) if fp is not None else set()

    def first_seen(self, key: str) -> int:
        """The earliest known posting time of this job over all its postings (0: unknown)."""
        fp = self._fingerprints.get(key)
        return self._first_seen.get(fp, 0) if fp is not None else 0

    def is_indexed(self, key: str) -> bool:
        """Whether this posting is the one shown for its job (the others are duplicates)."""
        return key in self._indexed

    def indexed(self) -> set[str]:
        """Keys of the postings shown, one per distinct job."""
        return set(self._indexed)

    def _earliest(self, fp: str) -> int:
        times = [self.jobs[k].posted_at_ms for k in self._groups[fp] if self.jobs[k].posted_at_ms > 0]
        return min(times) if times else 0

    def _post(self, key: str) -> None:
        """Make this posting the one indexed (searchable) for its job."""
        job, entry = self.jobs[key], self._entries[key]
        self._shown[self._fingerprints[key]] = key
        self._indexed.add(key)
        for term in entry.terms:
            self._terms.setdefault(term, set()).add(job.key)
        if entry.category:
            self._categories.setdefault(entry.category, set()).add(job.key)
        point = _job_point(job)
        if point is None:
            self._unplaced.add(job.key)
        else:
            self._cells.setdefault(_cell(point), set()).add(job.key)

    def _unpost(self, key: str) -> None:
        """Take this posting out of the postings, the grid and the shown set."""
        job, entry = self.jobs[key], self._entries[key]
        del self._shown[self._fingerprints[key]]
        self._indexed.discard(key)
        for term in entry.terms:
            _discard(self._terms, term, key)
        if entry.category:
            _discard(self._categories, entry.category, key)
        point = _job_point(job)
        if point is None:
            self._unplaced.discard(key)
        else:
            _discard(self._cells, _cell(point), key)

    def interested(self, terms: Iterable[str], categories: Iterable[str]) -> set[str]:
        """Keys of jobs sharing at least one term or category."""
        keys: set[str] = set()
        for term in terms:
            keys |= self._terms.get(term, set())
        for category in categories:
            keys |= self._categories.get(category, set())
        return keys

    def near(self, point: Point, max_km: float) -> set[str]:
        """Keys of placed jobs in the grid cells that a circle of max_km around point touches."""
        keys: set[str] = set()
        for cell in _cells_around(point, max_km):
            keys |= self._cells.get(cell, set())
        return keys

    def unplaced(self) -> set[str]:
        """Keys of jobs without coordinates."""
        return set(self._unplaced)


def candidate_keys(index: JobIndex, interests_keywords: Iterable[str],
                   interests_categories: Iterable[str], lead_point: Point | None,
                   max_km: float = 80) -> set[str]:
    """The jobs worth scoring for a lead: matching its interests, near it or without a place.

    Only a lead with neither interests nor a location falls back to every job.
    """
    return _candidates(index, _lead_terms(interests_keywords),
                       _lead_categories(interests_categories), lead_point, max_km)


def _candidates(index: JobIndex, terms: frozenset[str], categories: frozenset[str],
                lead_point: Point | None, max_km: float) -> set[str]:
    """candidate_keys for interests already normalised."""
    if terms or categories:
        keys = index.interested(terms, categories)
        if lead_point is None:
            return keys
        return (keys & index.near(lead_point, max_km)) | (keys & index._unplaced)
    if lead_point is not None:
        return index.near(lead_point, max_km) | index.unplaced()
    return index.indexed()


def rank(index: JobIndex, interests_keywords: Iterable[str], interests_categories: Iterable[str],
         lead_point: Point | None, now_ms: int, exclude_job_keys: Collection[str],
         k: int = 5, max_km: float = 80, new_since_ms: int | None = None) -> list[Match]:
    """The k best distinct jobs for a lead, best first, never one past max_km nor one of which
    any posting is in exclude_job_keys; with new_since_ms, only jobs first seen after it."""
    terms, categories = _lead_terms(interests_keywords), _lead_categories(interests_categories)
    keys = _candidates(index, terms, categories, lead_point, max_km)
    return _top(index, keys, terms, categories, lead_point, now_ms, exclude_job_keys, k, max_km,
                new_since_ms)


def _top(index: JobIndex, keys: Iterable[str], terms: frozenset[str], categories: frozenset[str],
         lead_point: Point | None, now_ms: int, exclude: Collection[str], k: int,
         max_km: float, new_since_ms: int | None = None) -> list[Match]:
    """Score the given jobs (duplicate postings left out) and describe the k best.

    This is the hot path, so it is plain arithmetic on precomputed entries, and a job whose
    score could not reach the k-th best even at the lead's door skips the distance maths.
    """
    if k <= 0:
        return []
    if not isinstance(exclude, (set, frozenset)):
        exclude = set(exclude)
    scored: list[tuple[float, str, float | None]] = []
    best_scores: list[float] = []  # min-heap of the k best scores so far: [0] is the bar to pass
    wants = bool(terms or categories)
    lat_r = lon_r = cos_lat = None
    if lead_point is not None:
        lat_r, lon_r = math.radians(lead_point[0]), math.radians(lead_point[1])
        cos_lat = math.cos(lat_r)
    entries, shown, fingerprints, groups = index._entries, index._indexed, index._fingerprints, index._groups
    for key in keys:
        if key not in shown:
            continue  # a duplicate posting: its job is ranked through the posting shown for it
        if exclude:
            group = groups[fingerprints[key]]
            if key in exclude or (len(group) > 1 and not exclude.isdisjoint(group)):
                continue
        if new_since_ms is not None and not is_new(index._first_seen[fingerprints[key]], new_since_ms):
            continue
        e = entries[key]
        relevance = _relevance(terms, categories, e) if wants else 0.0
        if wants and relevance == 0.0:
            continue
        if e.posted_at_ms <= 0:
            freshness = NEUTRAL
        else:
            age_days = (now_ms - e.posted_at_ms) / DAY_MS
            freshness = 1.0 if age_days <= 0 else max(0.0, 1.0 - age_days / FRESH_DAYS)
        partial = W_RELEVANCE * relevance + W_FRESHNESS * freshness + e.pay
        if lat_r is None or e.lat_rad is None:
            distance = None
            score = partial + W_PROXIMITY * NEUTRAL
        else:
            # The margin keeps jobs that could tie the bar after rounding.
            if len(best_scores) == k and partial + W_PROXIMITY < best_scores[0] - 1e-6:
                continue
            distance = _haversine_rad(lat_r, lon_r, cos_lat, e.lat_rad, e.lon_rad, e.cos_lat)
            if distance > max_km:
                continue
            score = partial + W_PROXIMITY * (1.0 - distance / max_km)
        score = round(score, 6)
        if len(best_scores) < k:
            heapq.heappush(best_scores, score)
        elif score > best_scores[0]:
            heapq.heapreplace(best_scores, score)
        scored.append((-score, key, distance))
    best = heapq.nsmallest(k, scored)
    return [_match(index.jobs[key], -neg, distance, terms, categories, now_ms, index.first_seen(key))
            for neg, key, distance in best]


def _relevance(terms: frozenset[str], categories: frozenset[str], e: _Entry) -> float:
    """Keyword share and category hit, averaged over the kinds of interest the lead gave."""
    if terms and categories:
        return (len(terms & e.terms) / len(terms) + (e.category in categories)) / 2
    if terms:
        return len(terms & e.terms) / len(terms)
    return 1.0 if e.category in categories else 0.0


def _haversine_rad(lat1: float, lon1: float, cos1: float, lat2: float, lon2: float,
                   cos2: float) -> float:
    """haversine_km on radians with the cosines precomputed (the same formula, fewer calls)."""
    h = math.sin((lat2 - lat1) / 2) ** 2 + cos1 * cos2 * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def _match(job: Job, score: float, distance: float | None, terms: frozenset[str],
           categories: frozenset[str], now_ms: int, first_seen_ms: int = 0) -> Match:
    """A chosen job with its reasons."""
    matched_terms = sorted(terms & set(_job_terms(job)))
    category_hit = _category(job.category) in categories
    age_days = max(0.0, (now_ms - job.posted_at_ms) / DAY_MS) if job.posted_at_ms > 0 else None
    reasons = _reasons(matched_terms, category_hit, job, distance, age_days)
    return Match(job=job, score=score, distance_km=_round_km(distance), reasons=reasons,
                 first_seen_ms=first_seen_ms)


def _entry(job: Job) -> _Entry:
    """The precomputed scoring facts of a job."""
    point = _job_point(job)
    lat_r = math.radians(point[0]) if point else None
    lon_r = math.radians(point[1]) if point else None
    return _Entry(terms=frozenset(_job_terms(job)), category=_category(job.category),
                  lat_rad=lat_r, lon_rad=lon_r, cos_lat=math.cos(lat_r) if point else 0.0,
                  posted_at_ms=job.posted_at_ms,
                  pay=W_PAY * min(max(job.cpc_cents, 0), TOP_CPC_CENTS) / TOP_CPC_CENTS)


def _reasons(matched_terms: list[str], category_hit: bool, job: Job, distance: float | None,
             age_days: float | None) -> tuple[str, ...]:
    """Short human-readable reasons, for logs and for explaining an alert."""
    reasons = []
    if matched_terms:
        reasons.append("keywords: " + ", ".join(matched_terms))
    if category_hit:
        reasons.append(f"category: {job.category}")
    if distance is not None:
        reasons.append(f"{distance:.0f} km away")
    if age_days is not None:
        reasons.append(f"posted {age_days:.0f} days ago")
    if job.cpc_cents:
        reasons.append(f"cpc ${job.cpc_cents / 100:.2f}")
    return tuple(reasons)


def _round_km(distance: float | None) -> float | None:
    """Distances to 10 m; more would be false precision for ZIP centres."""
    return None if distance is None else round(distance, 2)


def _term(word: str) -> str:
    """A word in the index's form: lower case, a plain plural 's' dropped (nurses -> nurse)."""
    word = word.lower()
    if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _job_terms(job: Job) -> tuple[str, ...]:
    """The job's keywords as index terms (from title + category when the feed gave none)."""
    words = job.keywords or keywords_of(job.title, job.category)
    return tuple(dict.fromkeys(_term(w) for w in words))


def _lead_terms(keywords: Iterable[str]) -> frozenset[str]:
    """A lead's keywords split into words and normalised like the jobs' ("Forklift Driver")."""
    return frozenset(_term(w) for w in keywords_of(*keywords))


def _lead_categories(categories: Iterable[str]) -> frozenset[str]:
    """A lead's categories, normalised like the jobs'."""
    return frozenset(c for c in (_category(x) for x in categories) if c)


def _category(category: str) -> str:
    """Categories compare case- and space-insensitively."""
    return " ".join(category.lower().split())


def _job_point(job: Job) -> Point | None:
    """The job's coordinates when it has both."""
    return None if job.lat is None or job.lon is None else (job.lat, job.lon)


def _cell(point: Point) -> Cell:
    """The grid cell holding a point."""
    return math.floor(point[0] / CELL_DEG), math.floor(point[1] / CELL_DEG)


def _cells_around(point: Point, max_km: float) -> list[Cell]:
    """Every cell that a circle of max_km around the point can touch (its bounding box)."""
    lat, lon = point
    reach = max_km * 1.001  # a hair wider, so float error never drops a job on the very edge
    dlat = reach / KM_PER_DEG_LAT
    # A degree of longitude shrinks with cos(lat): size the box where the circle is nearest a pole.
    far_lat = min(89.0, abs(lat) + dlat)
    dlon = min(180.0, reach / (KM_PER_DEG_LAT * math.cos(math.radians(far_lat))))
    lats = range(math.floor((lat - dlat) / CELL_DEG), math.floor((lat + dlat) / CELL_DEG) + 1)
    lons = range(math.floor((lon - dlon) / CELL_DEG), math.floor((lon + dlon) / CELL_DEG) + 1)
    return [(a, b) for a in lats for b in lons]


def _discard(postings: dict, name: object, key: str) -> None:
    """Drop a key from one posting list, and the list itself once empty."""
    keys = postings.get(name)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del postings[name]
