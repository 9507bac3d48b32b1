"""A job from a partner's feed, as every part of the platform sees it. Pure data."""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Job:
    """One job ad. Money is in cents (cpc_cents: what a click on it pays)."""

    tenant: str
    job_id: str  # the feed's own id (referencenumber), unique within tenant + source
    source: str  # the feed's name in the tenant file
    title: str
    company: str
    url: str  # the destination a tracked click redirects to
    city: str = ""
    state: str = ""
    zip: str = ""
    country: str = "US"
    lat: float | None = None
    lon: float | None = None
    description: str = ""
    category: str = ""
    keywords: tuple[str, ...] = field(default_factory=tuple)  # lower-case words of title + category
    posted_at_ms: int = 0
    cpc_cents: int = 0

    @property
    def key(self) -> str:
        """The jobs topic's key: one compacted record per job."""
        return f"{self.tenant}:{self.source}:{self.job_id}"


JOB_FIELDS = ("title", "company", "url", "city", "state", "zip", "country", "lat", "lon",
              "description", "category", "posted_at_ms", "cpc_cents")


def job_event(kind: str, job: Job, event_id: str, now_ms: int, source: str) -> dict:
    """The job.posted / job.updated / job.expired event for a job."""
    ev = {"event_id": event_id, "tenant": job.tenant, "occurred_at": now_ms, "schema": f"{kind}@1",
          "causation_id": None, "source": source, "job_key": job.key, "feed": job.source,
          "job_id": job.job_id}
    if kind != "job.expired":
        ev.update({f: getattr(job, f) for f in JOB_FIELDS}, keywords=list(job.keywords))
    return ev


def job_from_event(ev: dict) -> Job:
    """The Job a job.posted / job.updated event carries."""
    return Job(tenant=ev["tenant"], job_id=ev["job_id"], source=ev["feed"],
               keywords=tuple(ev.get("keywords") or ()), **{f: ev[f] for f in JOB_FIELDS})


def job_to_dict(job: Job) -> dict:
    """A plain dict of a Job (for a projection), read back with job_from_dict."""
    return {"tenant": job.tenant, "job_id": job.job_id, "source": job.source,
            "keywords": list(job.keywords), **{f: getattr(job, f) for f in JOB_FIELDS}}


def job_from_dict(d: dict) -> Job:
    return Job(**{**d, "keywords": tuple(d.get("keywords") or ())})


# -- the same job from several feeds -------------------------------------------------------

# Legal-form words an employer's name may or may not carry ("Acme Co." = "Acme" = "ACME, Inc").
LEGAL_SUFFIXES = frozenset({
    "inc", "incorporated", "llc", "l l c", "llp", "lp", "ltd", "limited", "co", "company", "corp",
    "corporation", "plc", "gmbh", "ag", "sa", "sarl", "srl", "bv", "nv", "pty", "pc", "pllc",
    "l l p", "l p", "p c", "s a", "b v", "n v",
})
_NOT_WORD = re.compile(r"[^\w]+")


def _words(text: str) -> list[str]:
    """Lower-case words without accents or punctuation ("Café–Bar, Inc." -> ["cafe", "bar", "inc"])."""
    plain = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    return [w for w in _NOT_WORD.sub(" ", plain.replace("_", " ")).split() if w]


def _employer(company: str) -> str:
    """The employer's name without its legal form (trailing Inc/LLC/Co/Ltd..., and "The")."""
    words = _words(company.replace("&", " and "))
    trimmed = True
    while trimmed:  # "Acme Holdings Co., Ltd." -> "acme holdings"; "L.L.C." is "l l c"
        trimmed = False
        for n in (3, 2, 1):
            if len(words) > n and " ".join(words[-n:]) in LEGAL_SUFFIXES:
                words, trimmed = words[:-n], True
                break
    if words[:1] == ["the"]:
        words = words[1:]
    return " ".join(words)


def _place(job: Job) -> str:
    """Where the job is, coarse enough that two feeds describing it agree: city + state, else
    the ZIP code, else the coordinates to ~1 km."""
    if job.city or job.state:
        return " ".join(_words(job.city)) + "|" + " ".join(_words(job.state))
    if job.zip:
        return "zip " + job.zip.strip()[:5]
    if job.lat is not None and job.lon is not None:
        return f"at {job.lat:.2f},{job.lon:.2f}"
    return ""


def fingerprint(job: Job) -> str:
    """What makes two postings the same job, whatever feed or link they came with: the title,
    the employer (without legal form) and the place, case-, accent- and punctuation-blind.
    Jobs of different tenants never share a fingerprint."""
    title = " ".join(_words(job.title.replace("&", " and ")))
    return "\x1f".join((job.tenant, title, _employer(job.company), _place(job)))


def preferred(a: Job, b: Job) -> Job:
    """Of two postings of the same job, the one to show: the better-paying (cpc_cents), on a
    tie the fresher posting, on a tie the smaller key (so the choice never depends on order)."""
    rank_a = (-a.cpc_cents, -a.posted_at_ms, a.key)
    rank_b = (-b.cpc_cents, -b.posted_at_ms, b.key)
    return a if rank_a <= rank_b else b


def distinct_jobs(jobs: Iterable[Job]) -> list[Job]:
    """One posting per fingerprint (the preferred one), in the order each job first appears."""
    chosen: dict[str, Job] = {}
    for job in jobs:
        fp = fingerprint(job)
        chosen[fp] = preferred(chosen[fp], job) if fp in chosen else job
    return list(chosen.values())


# -- what is new to a lead -------------------------------------------------------------------

FIRST_ALERT_WINDOW_MS = 7 * 86_400_000  # with no earlier alert on the list: "new" is this week's


def new_since(previous_alert_ms: int | None, now_ms: int) -> int:
    """The instant after which a job counts as new for a lead's alert on one list: the lead's
    previous alert on that list, else (its first alert, or the history is gone) a week ago."""
    if previous_alert_ms:
        return previous_alert_ms
    return now_ms - FIRST_ALERT_WINDOW_MS


def is_new(first_seen_ms: int, since_ms: int) -> bool:
    """Whether a job first posted (or, undated, first seen) at first_seen_ms is new after
    since_ms. An unknown date (0) is never new."""
    return first_seen_ms > 0 and first_seen_ms > since_ms
