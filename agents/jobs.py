"""Jobs agent: polls the tenants' job feeds and projects the jobs topic into Redis.

Every 10 s it polls the feeds whose interval has passed (one poller per feed at a time,
across workers): fetch, parse, diff against the jobs known for that feed, and produce
job.posted / updated / expired to the compacted jobs topic. A feed that is down or
malformed is reported (ls:feed:{tenant}:{name}, the log, a metric) and retried on the next
interval; it never expires the jobs already known. The topic is projected into
ls:jobs:{tenant}, which the senders match leads against.
"""
from __future__ import annotations

import logging
import os
import time

from channels.job_feeds import FeedFetcher, FeedFetchError
from domain.feeds import FeedError, diff_feed, parse_feed
from domain.identity import derived_event_id
from domain.jobs import job_event, job_from_event
from projections.redis_jobs import JobStore
from schemas.codec import DecodeError
from streams.batching import oldest_ms, run_batch
from streams.dead_letter import dead_letter
from streams.topics import JOBS

log = logging.getLogger("leadstream.jobs")
SOURCE = "agent:jobs"
POLL_EVERY_S = 10.0


def register(app, deps) -> None:
    s = deps.settings
    topic = app.topic(deps.topic(JOBS), value_serializer="raw", key_serializer="raw")
    fetcher = FeedFetcher(timeout_s=30.0)

    @app.agent(topic, name="jobs")
    async def jobs(stream):
        async for events in stream.take_events(s.batch_size, within=s.batch_seconds):
            msgs = [(e.message.topic, e.message.partition, e.message.offset, e.message.key,
                     e.message.value) for e in events]
            await run_batch("jobs", lambda: project(deps, msgs), oldest_event_ms=oldest_ms(events))

    @app.timer(interval=POLL_EVERY_S)
    async def poll() -> None:
        await poll_feeds(deps, fetcher, int(time.time() * 1000))


async def project(deps, msgs: list[tuple]) -> int:
    """job events -> ls:jobs:{tenant}."""
    now_ms, changes, dead = int(time.time() * 1000), [], []
    for topic, partition, offset, key, value in msgs:
        try:
            name, ev = deps.codec.decode(value or b"")
        except DecodeError as exc:
            dead.append(dead_letter(topic, partition, offset, key, value, f"undecodable: {exc}", "jobs", now_ms))
            continue
        job = None if name == "job.expired" else job_from_event(ev)
        changes.append((ev["tenant"], ev["job_key"], job))
    await deps.producer.send_many(dead)
    await JobStore(deps.redis).apply(changes)
    return len(msgs)


async def poll_feeds(deps, fetcher: FeedFetcher, now_ms: int, force: bool = False) -> dict[str, str]:
    """Poll every feed that is due (or all, with force); returns feed -> what happened."""
    store, out = JobStore(deps.redis), {}
    for tenant in deps.tenants.tenants.values():
        for feed in tenant.feeds:
            locked = await store.lock_feed(tenant.id, feed.name, f"{os.getpid()}", feed.every_s * 1000)
            if not locked and not force:
                continue  # polled within its interval, here or by another worker
            out[f"{tenant.id}/{feed.name}"] = await poll_one(deps, store, fetcher, tenant.id, feed, now_ms)
    return out


async def poll_one(deps, store: JobStore, fetcher: FeedFetcher, tenant: str, feed, now_ms: int) -> str:
    """Fetch, parse and diff one feed; produce its changes. Never raises for a bad feed."""
    try:
        body = await fetcher.fetch(feed.url)
        if body is None:
            await store.set_feed_status(tenant, feed.name, status="not_modified", at_ms=now_ms)
            return "not modified"
        parsed = parse_feed(body, feed.format, tenant, feed.name)
    except (FeedFetchError, FeedError) as exc:
        fetcher.forget(feed.url)  # fetch it whole next time
        log.warning("feed %s/%s: %s (known jobs kept)", tenant, feed.name, exc)
        await store.set_feed_status(tenant, feed.name, status="error", error=str(exc)[:500], at_ms=now_ms)
        return f"error: {exc}"
    known = {k: j for k, j in (await store.load(tenant)).items() if j.source == feed.name}
    changes = diff_feed(known, parsed.jobs, now_ms)
    records = [(deps.topic(JOBS), job.key.encode(),
                deps.codec.encode(kind, job_event(kind, job, derived_event_id(job.key, kind, now_ms),
                                                  now_ms, SOURCE)), None) for kind, job in changes]
    try:
        await deps.producer.send_many(records)
    except Exception as exc:  # Kafka down: fetch the feed whole on the next poll, not a 304
        fetcher.forget(feed.url)
        await store.set_feed_status(tenant, feed.name, status="error", error=f"producing: {exc}"[:500],
                                    at_ms=now_ms)
        log.warning("feed %s/%s: could not produce its changes: %s", tenant, feed.name, exc)
        return f"error: producing: {exc}"
    await store.set_feed_status(tenant, feed.name, status="ok", at_ms=now_ms, jobs=len(parsed.jobs),
                                problems=len(parsed.problems), changes=len(changes), error="")
    return f"ok: {len(parsed.jobs)} jobs, {len(changes)} changes, {len(parsed.problems)} skipped"
