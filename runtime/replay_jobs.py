"""The live jobs rebuilt from the jobs topic (part of `runtime.replay --redis`): each job's
latest event, posted or updated -> ls:jobs:{tenant}, expired -> removed. Without it the senders
would match leads against no jobs until each feed's next poll (up to its interval), and that
poll would post every job again.
"""
from __future__ import annotations

from typing import Callable

from domain.jobs import job_from_event
from projections.redis_jobs import JobStore
from runtime.replay_sent import decoded
from streams.topics import JOBS

CHUNK = 5000


def latest_jobs(events) -> dict[tuple[str, str], tuple[str, dict]]:
    """(tenant, job key) -> (name, event) of its latest event, in topic order."""
    out: dict[tuple[str, str], tuple[str, dict]] = {}
    for name, ev in events:
        out[(ev["tenant"], ev["job_key"])] = (name, ev)
    return out


async def rebuild_jobs(deps, read_topics: Callable, tick: Callable[[str, int, int], None]) -> dict:
    total, msgs = read_topics(deps, [deps.topic(JOBS)])
    bad = [0]
    latest = latest_jobs(ev for _, ev in decoded(deps, msgs, total, "jobs", tick, bad))
    changes = [(t, key, None if name == "job.expired" else job_from_event(ev)) for (t, key), (name, ev) in latest.items()]
    store = JobStore(deps.redis)
    for i in range(0, len(changes), CHUNK):
        await store.apply(changes[i:i + CHUNK])
    return {"jobs_live": sum(1 for _, _, j in changes if j is not None), "jobs_topic_undecodable": bad[0]}
