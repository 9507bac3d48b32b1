"""A job from a partner's feed, as every part of the platform sees it. Pure data."""
from __future__ import annotations

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
