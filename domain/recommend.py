"""Which jobs to recommend a lead in a job alert: a hybrid of content, co-clicks and popularity.

Pure: `train` turns jobs and a click log into a `Model` (given `now_ms` and a version string);
`add_jobs` folds jobs that arrived after training into it; `recommend` ranks jobs for one lead.
No clock, no I/O, no randomness: the same inputs give the same model and the same list.

The model holds three views of the jobs, one row per job key (matrices are scipy.sparse):
- content: TF-IDF of each job's title (x2), category (x2, as a whole and word by word),
  feed keywords, employer and description, words as `domain.feeds.keywords_of` finds them
  with a plain plural folded (nurses -> nurse); rows L2-normalised. The vocabulary and idf
  are fitted on the training jobs; `add_jobs` vectorises a new job with them, giving a word
  no training job had the idf of a word seen nowhere, so a new job is recommendable as soon
  as it is added, without retraining;
- co-clicks: item-item cosine over the lead x job click matrix (a lead clicking a job twice
  counts once), shrunk towards 0 when few leads clicked both (co / (co + SHRINK)), keeping
  each job's `neighbours` most similar jobs;
- popularity: distinct leads' clicks decayed by age (half-life `half_life_days`), log-scaled
  to 0..1. A job nobody clicked yet (new, or unpopular) gets the mean popularity of the jobs
  in its category instead: its prior.

`recommend` scores candidate jobs for a `LeadProfile` (declared interests, location, clicked
and applied jobs):
- content: the idf-weighted share of the lead's declared interests (keywords x2, categories
  whole x2 and word by word) that the job has, averaged with the cosine between the job and
  the mean vector of the jobs the lead clicked (applied counts double); divided by the best
  candidate's so it spans 0..1. The share, not a cosine, for the interests: a cosine would
  rank equally relevant jobs by the length of their descriptions;
- collaborative: the job's co-click similarity to the lead's clicked jobs (their weighted
  mean, 0..1), not rescaled, so a chance co-click between two jobs stays a weak signal;
- popularity: as above (the prior for jobs without clicks).
Weights: WARM for a lead with clicks whose jobs have co-click neighbours, COLD otherwise
(content and popularity only). A job without clicks (new, or never clicked) has no co-clicks:
it gets the clicked candidates' mean collaborative score, a neutral value as matching's for
an unknown distance, and its category's popularity, so it ranks on its content among jobs of
its kind, neither favoured nor buried for being new. Jobs past `max_km` from the lead are
cut; nearer ones are scaled by 1 - GEO_WEIGHT * distance / max_km and, given `now_ms`, by
1 - FRESH_WEIGHT * age / 30 days (the neutral half of either when the place or the date is
unknown, as in `domain.matching`). Scores are rounded to 6 decimals and ties go to the
smaller job key. `why` names the largest weighted term the job earned ("content",
"collaborative" or "popular"; never an imputed one), so a template can say why.

Model versions and storage are the caller's: `train` records the version it is given.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import sparse

from domain.feeds import keywords_of
from domain.geo import EARTH_RADIUS_KM, Point
from domain.jobs import Job

DAY_MS = 86_400_000
HALF_LIFE_DAYS = 7.0
NEIGHBOURS = 50  # co-click neighbours kept per job
SHRINK = 2.0  # co-click counts below this shrink the similarity noticeably
BLOCK = 2048  # jobs per block when the co-click similarity is computed
TITLE_WEIGHT = 2.0
CATEGORY_WEIGHT = 2.0
APPLY_WEIGHT = 2.0  # an application says more than a click
MAX_KM = 80.0
GEO_WEIGHT = 0.2
FRESH_WEIGHT = 0.2
FRESH_DAYS = 30  # a job this old has no freshness left, as in domain.matching
NEUTRAL = 0.5


class Weights(NamedTuple):
    """How much each term counts; they add up to 1."""

    content: float
    collaborative: float
    popular: float


WARM = Weights(content=0.40, collaborative=0.45, popular=0.15)
COLD = Weights(content=0.75, collaborative=0.0, popular=0.25)
WHY = ("content", "collaborative", "popular")


@dataclass(frozen=True)
class LeadProfile:
    """What the recommender may know of a lead: what it declared and what it did."""

    keywords: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    point: Point | None = None  # (lat, lon) of its home, e.g. domain.geo.zip_point(zip)
    clicked: tuple[str, ...] = ()  # job keys it clicked
    applied: tuple[str, ...] = ()  # job keys it applied to


class Recommendation(NamedTuple):
    """One recommended job: its key, its score (0..1) and the term that weighed most."""

    job_key: str
    score: float
    why: str


@dataclass(frozen=True, eq=False)
class Model:
    """A trained recommender. Arrays are indexed by row (`row_of[job_key]`); treat as read-only.

    Rows cover every job given to `train` or `add_jobs` (has_content True) and every job key
    that only appears in the clicks (an expired job: it links co-clicks, but is never
    recommended unless passed as a candidate, and then only on its co-clicks and popularity).
    """

    version: str
    trained_at_ms: int
    job_keys: tuple[str, ...]
    row_of: Mapping[str, int]
    vocabulary: Mapping[str, int]  # term -> column of `content` and `idf`
    idf: np.ndarray  # (terms,) smoothed inverse document frequency
    unseen_idf: float  # the idf a word that no training job had gets
    content: sparse.csr_matrix  # (jobs, terms) TF-IDF rows, L2-normalised (0 without content)
    presence: sparse.csr_matrix  # (jobs, terms) 1 where the job has the term
    has_content: np.ndarray  # (jobs,) bool: a job we know the text of
    categories: tuple[str, ...]  # per row, normalised ("" unknown)
    lat_rad: np.ndarray  # (jobs,) NaN when unknown
    lon_rad: np.ndarray
    posted_at_ms: np.ndarray  # (jobs,) int64, 0 when unknown
    co_clicks: sparse.csr_matrix  # (jobs, jobs) shrunk cosine, each row its top neighbours
    clickers: np.ndarray  # (jobs,) distinct leads who clicked it in the training log
    popularity: np.ndarray  # (jobs,) decayed, log-scaled clicks, 0..1; 0 without clicks
    category_popularity: Mapping[str, float]  # mean popularity of a category's jobs ("" all)
    prior: np.ndarray  # (jobs,) popularity, or for a job without clicks its category's mean
    half_life_days: float

    def __post_init__(self) -> None:
        for value in vars(self).values():  # shared by every lead's call: nobody may write
            if isinstance(value, np.ndarray):
                value.flags.writeable = False

    def __len__(self) -> int:
        return len(self.job_keys)


Click = tuple[str, str, int]  # (lead_id, job_key, at_ms)


def train(jobs: Iterable[Job], clicks: Iterable[Click], now_ms: int, version: str, *,
          half_life_days: float = HALF_LIFE_DAYS, neighbours: int = NEIGHBOURS,
          shrink: float = SHRINK) -> Model:
    """A model of these jobs and the clicks made up to now_ms (later clicks are ignored).

    The result does not depend on the order of jobs or clicks; a job key given twice keeps
    its last version.
    """
    by_key = {job.key: job for job in jobs}
    kept = [(lead, key, at) for lead, key, at in clicks if at <= now_ms]
    keys = sorted(set(by_key) | {key for _, key, _ in kept})
    row_of = {key: i for i, key in enumerate(keys)}
    known = [by_key.get(key) for key in keys]

    docs = [_job_terms(job) if job else {} for job in known]
    vocabulary, idf, unseen_idf = _fit_idf([d for d, job in zip(docs, known) if job])
    content = _tfidf(docs, vocabulary, idf)
    lat_rad, lon_rad = _radians(known)
    posted_at_ms = np.array([job.posted_at_ms if job else 0 for job in known], dtype=np.int64)

    latest: dict[tuple[str, str], int] = {}  # (lead, job) -> its latest click
    for lead, key, at in kept:
        if at > latest.get((lead, key), -1):
            latest[(lead, key)] = at
    leads = {lead: i for i, lead in enumerate(sorted({lead for lead, _ in latest}))}
    pairs = sorted(latest.items())
    lead_rows = np.fromiter((leads[lead] for (lead, _), _ in pairs), np.int64, len(pairs))
    job_rows = np.fromiter((row_of[key] for (_, key), _ in pairs), np.int64, len(pairs))
    ages = np.fromiter((now_ms - at for _, at in pairs), np.float64, len(pairs))
    clicked = sparse.csr_matrix((np.ones(len(pairs)), (lead_rows, job_rows)),
                                shape=(len(leads), len(keys)))
    clickers = np.bincount(job_rows, minlength=len(keys)).astype(np.int64)
    decayed = np.bincount(job_rows, weights=0.5 ** (ages / (half_life_days * DAY_MS)),
                          minlength=len(keys))
    popularity = np.log1p(decayed) / math.log1p(decayed.max()) if len(pairs) else decayed

    categories = tuple(_category(job.category) if job else "" for job in known)
    has_content = np.array([job is not None for job in known], dtype=bool)
    category_popularity = _category_means(categories, popularity, has_content)
    prior = _prior(popularity, clickers, categories, category_popularity)
    return Model(version=version, trained_at_ms=now_ms, job_keys=tuple(keys), row_of=row_of,
                 vocabulary=vocabulary, idf=idf, unseen_idf=unseen_idf, content=content,
                 presence=_presence(content), has_content=has_content, categories=categories,
                 lat_rad=lat_rad, lon_rad=lon_rad, posted_at_ms=posted_at_ms,
                 co_clicks=_co_click_similarity(clicked, neighbours, shrink), clickers=clickers,
                 popularity=popularity, category_popularity=category_popularity, prior=prior,
                 half_life_days=half_life_days)


def add_jobs(model: Model, jobs: Iterable[Job]) -> Model:
    """The model with these jobs added (or, for a known key, their text and place replaced),
    vectorised with the trained vocabulary and idf: no retraining, no change to other jobs.

    A new job has no clicks, so it ranks on content and its category's popularity until the
    next training. Costs about the size of the model's content matrix (milliseconds).
    """
    fresh = list({job.key: job for job in jobs}.values())
    if not fresh:
        return model
    docs = [_job_terms(job) for job in fresh]
    vocabulary, idf = dict(model.vocabulary), model.idf
    unseen = sorted({t for doc in docs for t in doc if t not in vocabulary})
    if unseen:
        first = len(vocabulary)
        vocabulary.update((t, first + i) for i, t in enumerate(unseen))
        idf = np.concatenate([idf, np.full(len(unseen), model.unseen_idf)])
    terms = len(vocabulary)
    new_rows = _tfidf(docs, vocabulary, idf)

    row_of = dict(model.row_of)
    job_keys = list(model.job_keys)
    appended = [job for job in fresh if job.key not in row_of]
    for job in appended:
        row_of[job.key] = len(job_keys)
        job_keys.append(job.key)
    n_old, n = len(model.job_keys), len(job_keys)

    # Every row of the new matrix is a row of [old; new]: the new version where there is one.
    order = np.arange(n, dtype=np.int64)
    for i, job in enumerate(fresh):
        order[row_of[job.key]] = n_old + i
    old = model.content
    old = sparse.csr_matrix((old.data, old.indices, old.indptr), shape=(n_old, terms))
    content = sparse.vstack([old, new_rows], format="csr")[order]

    rows = np.fromiter((row_of[job.key] for job in fresh), np.int64, len(fresh))
    grow = n - n_old
    lat_rad = np.concatenate([model.lat_rad, np.full(grow, np.nan)])
    lon_rad = np.concatenate([model.lon_rad, np.full(grow, np.nan)])
    lat_rad[rows], lon_rad[rows] = _radians(fresh)
    posted_at_ms = np.concatenate([model.posted_at_ms, np.zeros(grow, dtype=np.int64)])
    posted_at_ms[rows] = [job.posted_at_ms for job in fresh]
    has_content = np.concatenate([model.has_content, np.zeros(grow, dtype=bool)])
    has_content[rows] = True
    categories = list(model.categories) + [""] * grow
    for job in fresh:
        categories[row_of[job.key]] = _category(job.category)
    clickers = np.concatenate([model.clickers, np.zeros(grow, dtype=np.int64)])
    popularity = np.concatenate([model.popularity, np.zeros(grow)])
    prior = np.concatenate([model.prior, np.zeros(grow)])
    prior[rows] = _prior(popularity[rows], clickers[rows], [categories[r] for r in rows],
                         model.category_popularity)
    co = model.co_clicks
    indptr = np.concatenate([co.indptr, np.full(grow, co.indptr[-1], dtype=co.indptr.dtype)])
    co_clicks = sparse.csr_matrix((co.data, co.indices, indptr), shape=(n, n))
    return Model(version=model.version, trained_at_ms=model.trained_at_ms,
                 job_keys=tuple(job_keys), row_of=row_of, vocabulary=vocabulary, idf=idf,
                 unseen_idf=model.unseen_idf, content=content, presence=_presence(content),
                 has_content=has_content, categories=tuple(categories), lat_rad=lat_rad,
                 lon_rad=lon_rad, posted_at_ms=posted_at_ms, co_clicks=co_clicks,
                 clickers=clickers, popularity=popularity,
                 category_popularity=model.category_popularity, prior=prior,
                 half_life_days=model.half_life_days)


@dataclass(frozen=True, eq=False)
class CandidatePool:
    """Candidate jobs resolved to rows of a model once, to recommend among them for many
    leads without looking every job up per lead. Use with its own model:
    `recommend(pool.model, lead, pool)`."""

    model: Model  # the model given, with any job it did not know folded in
    rows: np.ndarray  # distinct rows of the candidates, ascending


def candidate_pool(model: Model, candidates: Iterable[Job]) -> CandidatePool:
    """The candidates as rows of the model, folding in (as add_jobs does) those it lacks."""
    candidates = list(candidates)
    keys = [job.key for job in candidates]
    unknown = [job for job, key in zip(candidates, keys) if key not in model.row_of]
    if unknown:
        model = add_jobs(model, unknown)
    rows = np.unique(np.fromiter((model.row_of[key] for key in keys), np.int64, len(keys)))
    return CandidatePool(model=model, rows=rows)


def recommend(model: Model, lead: LeadProfile,
              candidates: Sequence[Job] | CandidatePool | None = None, k: int = 10,
              exclude: Iterable[str] = frozenset(), max_km: float = MAX_KM,
              now_ms: int | None = None) -> list[Recommendation]:
    """The k best jobs for the lead, best first, among the candidates (None: every job the
    model knows the text of). Never one in `exclude`, nor one the lead clicked or applied to,
    nor one farther than max_km from the lead; with now_ms, fresher jobs score higher. A
    candidate the model does not know is folded in first (as `add_jobs` does), so it can be
    recommended on its content. To rank the same candidates for many leads, resolve them once
    with `candidate_pool`."""
    if k <= 0:
        return []
    if candidates is None:
        rows = np.flatnonzero(model.has_content)
    elif isinstance(candidates, CandidatePool):
        if candidates.model is not model:
            raise ValueError("this candidate pool was built for another model: "
                             "call recommend(pool.model, lead, pool)")
        rows = candidates.rows
    else:
        pool = candidate_pool(model, candidates)
        model, rows = pool.model, pool.rows
    history = _history_rows(model, lead)
    banned = {model.row_of[key] for key in (*exclude, *lead.clicked, *lead.applied)
              if key in model.row_of}
    if banned:
        rows = rows[~np.isin(rows, np.fromiter(banned, np.int64, len(banned)))]
    proximity = np.full(len(rows), NEUTRAL)
    if lead.point is not None and len(rows):
        distance = _distances_km(model, rows, lead.point)
        placed = ~np.isnan(distance)
        near = ~placed | (distance <= max_km)
        rows, distance, placed = rows[near], distance[near], placed[near]
        proximity = np.where(placed, 1.0 - np.where(placed, distance, 0.0) / max_km, NEUTRAL)
    if not len(rows):
        return []

    content = _scaled(_content_scores(model, lead, history, rows))
    collaborative = _collaborative_scores(model, history, rows)
    popular = model.prior[rows]
    weights = WARM if collaborative.max() > 0 else COLD
    clicked_jobs = model.clickers[rows] > 0
    if weights.collaborative and clicked_jobs.any() and not clicked_jobs.all():
        # A job nobody clicked yet has no co-clicks to go by: it gets the clicked candidates'
        # mean, neutral as matching's unknown distance, so it neither wins nor loses for it.
        collaborative = np.where(clicked_jobs, collaborative, collaborative[clicked_jobs].mean())
    terms = np.vstack([weights.content * content, weights.collaborative * collaborative,
                       weights.popular * popular])
    evidence = terms.copy()
    evidence[1, ~clicked_jobs] = 0.0  # an imputed co-click score is no reason to name
    geo = 1.0 - GEO_WEIGHT + GEO_WEIGHT * proximity
    fresh = 1.0 - FRESH_WEIGHT + FRESH_WEIGHT * _freshness(model, rows, now_ms)
    scores = np.round(terms.sum(axis=0) * geo * fresh, 6)
    return [Recommendation(model.job_keys[rows[i]], float(scores[i]),
                           WHY[int(np.argmax(evidence[:, i]))])
            for i in _top(scores, rows, model.job_keys, k)]


# -- text ----------------------------------------------------------------------------------

def _fold(word: str) -> str:
    """A word in its indexed form: a plain plural 's' dropped (nurses -> nurse), as matching does."""
    if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _words(*texts: str) -> list[str]:
    """The texts' distinct words in indexed form."""
    return list(dict.fromkeys(_fold(w) for w in keywords_of(*texts)))


def _category(category: str) -> str:
    """Categories compare case- and space-insensitively."""
    return " ".join(category.lower().split())


def _add(doc: dict[str, float], terms: Iterable[str], weight: float) -> None:
    """Add weight to each term of the doc."""
    for term in terms:
        doc[term] = doc.get(term, 0.0) + weight


def _job_terms(job: Job) -> dict[str, float]:
    """A job's weighted terms: title and category count double; the category and the employer
    also count as whole tokens, so 'Retail' the category differs from 'retail' in a title."""
    doc: dict[str, float] = {}
    _add(doc, _words(job.title), TITLE_WEIGHT)
    category = _category(job.category)
    if category:
        _add(doc, ["category=" + category], CATEGORY_WEIGHT)
        _add(doc, _words(category), 1.0)
    _add(doc, _words(*job.keywords), 1.0)
    employer = " ".join(job.company.lower().split())
    if employer:
        _add(doc, ["employer=" + employer], 1.0)
    _add(doc, _words(job.description), 1.0)
    return doc


def _interest_terms(lead: LeadProfile) -> dict[str, float]:
    """A lead's declared interests as weighted terms, in the jobs' vocabulary."""
    doc: dict[str, float] = {}
    _add(doc, _words(*lead.keywords), TITLE_WEIGHT)
    for category in lead.categories:
        name = _category(category)
        if name:
            _add(doc, ["category=" + name], CATEGORY_WEIGHT)
            _add(doc, _words(name), 1.0)
    return doc


def _fit_idf(docs: list[dict[str, float]]) -> tuple[dict[str, int], np.ndarray, float]:
    """Vocabulary (sorted, so independent of order) and smoothed idf: ln((1+n)/(1+df)) + 1."""
    df: dict[str, int] = {}
    for doc in docs:
        for term in doc:
            df[term] = df.get(term, 0) + 1
    terms = sorted(df)
    n = len(docs)
    idf = np.array([math.log((1 + n) / (1 + df[t])) + 1 for t in terms])
    return {t: i for i, t in enumerate(terms)}, idf, math.log(1 + n) + 1


def _tfidf(docs: list[dict[str, float]], vocabulary: Mapping[str, int],
           idf: np.ndarray) -> sparse.csr_matrix:
    """L2-normalised TF-IDF rows of the docs (terms outside the vocabulary are left out)."""
    indptr, indices, data = [0], [], []
    for doc in docs:
        items = sorted((vocabulary[t], w) for t, w in doc.items() if t in vocabulary)
        if items:
            cols = [c for c, _ in items]
            values = np.array([w for _, w in items]) * idf[cols]
            indices.extend(cols)
            data.extend((values / np.linalg.norm(values)).tolist())
        indptr.append(len(indices))
    return sparse.csr_matrix((np.array(data, dtype=np.float64), np.array(indices, dtype=np.int32),
                              np.array(indptr, dtype=np.int64)), shape=(len(docs), len(vocabulary)))


def _presence(content: sparse.csr_matrix) -> sparse.csr_matrix:
    """1 where a job has a term: the content matrix's pattern."""
    return sparse.csr_matrix((np.ones_like(content.data), content.indices, content.indptr),
                             shape=content.shape)


# -- clicks --------------------------------------------------------------------------------

def _co_click_similarity(clicked: sparse.csr_matrix, neighbours: int,
                         shrink: float) -> sparse.csr_matrix:
    """Item-item shrunk cosine, each job's `neighbours` best kept (ties to the smaller row).
    Sparse throughout and done BLOCK jobs at a time, so the cost follows the co-clicked pairs,
    not jobs squared."""
    n = clicked.shape[1]
    by_job = clicked.T.tocsr()  # (jobs, leads)
    by_lead = clicked.tocsc()  # the same, ready to multiply by
    norms = np.sqrt(np.asarray(by_job.sum(axis=1)).ravel())
    rows, cols, vals = [], [], []
    for start in range(0, n if neighbours > 0 else 0, BLOCK):
        co = (by_job[start:start + BLOCK] @ by_lead).tocoo()  # co-click counts
        row, col, count = co.row.astype(np.int64) + start, co.col.astype(np.int64), co.data
        off_diagonal = row != col
        row, col, count = row[off_diagonal], col[off_diagonal], count[off_diagonal]
        sim = count / (norms[row] * norms[col]) * (count / (count + shrink))
        order = np.lexsort((col, -sim, row))
        row, col, sim = row[order], col[order], sim[order]
        rank = np.arange(len(row)) - np.searchsorted(row, row, side="left")
        best = rank < neighbours
        rows.append(row[best])
        cols.append(col[best])
        vals.append(sim[best])
    if not rows:
        return sparse.csr_matrix((n, n))
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(n, n))


def _category_means(categories: Sequence[str], popularity: np.ndarray,
                    has_content: np.ndarray) -> dict[str, float]:
    """Mean popularity of the known jobs of each category; "" holds the mean of all."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for category, value, known in zip(categories, popularity.tolist(), has_content.tolist()):
        if known:
            for name in {category, ""}:
                sums[name] = sums.get(name, 0.0) + value
                counts[name] = counts.get(name, 0) + 1
    return {name: sums[name] / counts[name] for name in sorted(sums)}


def _prior(popularity: np.ndarray, clickers: np.ndarray, categories: Sequence[str],
           category_popularity: Mapping[str, float]) -> np.ndarray:
    """Popularity where a job has clicks, else the mean of its category (else of all jobs)."""
    fallback = category_popularity.get("", 0.0)
    guess = np.array([category_popularity.get(c, fallback) for c in categories], dtype=np.float64)
    return np.where(clickers > 0, popularity, guess)


# -- scoring -------------------------------------------------------------------------------

def _history_rows(model: Model, lead: LeadProfile) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the jobs the lead clicked or applied to that the model knows, and their weights."""
    weight: dict[int, float] = {}
    for key in lead.clicked:
        if key in model.row_of:
            weight[model.row_of[key]] = max(weight.get(model.row_of[key], 0.0), 1.0)
    for key in lead.applied:
        if key in model.row_of:
            weight[model.row_of[key]] = APPLY_WEIGHT
    rows = np.array(sorted(weight), dtype=np.int64)
    return rows, np.array([weight[r] for r in rows.tolist()], dtype=np.float64)


def _content_scores(model: Model, lead: LeadProfile, history: tuple[np.ndarray, np.ndarray],
                    rows: np.ndarray) -> np.ndarray:
    """How well each candidate matches the lead's text, 0..1: the idf-weighted share of its
    declared interests the job has (so a long description does not dilute a match), and the
    cosine with the mean vector of the jobs it clicked; averaged over the parts the lead has."""
    parts = []
    interests = _interest_terms(lead)
    known = [t for t in interests if t in model.vocabulary]
    if known:
        cols = np.array([model.vocabulary[t] for t in known])
        values = np.array([interests[t] for t in known]) * model.idf[cols]
        share = np.zeros(len(model.vocabulary))
        share[cols] = values / values.sum()
        parts.append(model.presence @ share)
    history_rows, history_weights = history
    if len(history_rows):
        mean = np.asarray(model.content[history_rows].T @ history_weights).ravel()
        norm = np.linalg.norm(mean)
        if norm > 0:
            parts.append(model.content @ (mean / norm))
    if not parts:
        return np.zeros(len(rows))
    return (sum(parts) / len(parts))[rows]


def _collaborative_scores(model: Model, history: tuple[np.ndarray, np.ndarray],
                          rows: np.ndarray) -> np.ndarray:
    """Each candidate's co-click similarity to the lead's history (weighted mean, 0..1). Not
    rescaled to the best candidate: a single chance co-click must stay a weak signal."""
    history_rows, history_weights = history
    if not len(history_rows):
        return np.zeros(len(rows))
    summed = np.asarray(model.co_clicks[history_rows].T @ history_weights).ravel()
    return np.minimum(1.0, summed[rows] / history_weights.sum())


def _scaled(values: np.ndarray) -> np.ndarray:
    """Values divided by the largest, so the best candidate scores 1 (all 0 stay 0)."""
    top = values.max() if len(values) else 0.0
    return values / top if top > 0 else np.zeros_like(values)


def _distances_km(model: Model, rows: np.ndarray, point: Point) -> np.ndarray:
    """Great-circle distance from the point to each job (NaN where the job has no place)."""
    lat1, lon1 = math.radians(point[0]), math.radians(point[1])
    lat2, lon2 = model.lat_rad[rows], model.lon_rad[rows]
    h = (np.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(h)))


def _freshness(model: Model, rows: np.ndarray, now_ms: int | None) -> np.ndarray:
    """1 for a job posted now (or later), falling to 0 at FRESH_DAYS; neutral when the date or
    now is unknown."""
    posted = model.posted_at_ms[rows]
    if now_ms is None:
        return np.full(len(rows), NEUTRAL)
    age_days = (now_ms - posted) / DAY_MS
    return np.where(posted > 0, np.clip(1.0 - age_days / FRESH_DAYS, 0.0, 1.0), NEUTRAL)


def _radians(jobs: Sequence[Job | None]) -> tuple[np.ndarray, np.ndarray]:
    """Latitudes and longitudes of the jobs in radians, NaN where unknown."""
    lat = np.array([job.lat if job and job.lat is not None and job.lon is not None else np.nan
                    for job in jobs], dtype=np.float64)
    lon = np.array([job.lon if job and job.lat is not None and job.lon is not None else np.nan
                    for job in jobs], dtype=np.float64)
    return np.radians(lat), np.radians(lon)


def _top(scores: np.ndarray, rows: np.ndarray, job_keys: Sequence[str], k: int) -> list[int]:
    """Positions of the k best scores, ties to the smaller job key; only scores that can make
    the list (at least the k-th best) are sorted in Python."""
    if len(scores) > k:
        bar = np.partition(scores, len(scores) - k)[len(scores) - k]
        contenders = np.flatnonzero(scores >= bar).tolist()
    else:
        contenders = list(range(len(scores)))
    return sorted(contenders, key=lambda i: (-scores[i], job_keys[rows[i]]))[:k]
