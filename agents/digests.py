"""Digest agents: activity kept, due runs planned, chunks of members digested.

activity   activity.events, engagement.events, product.events -> items and memberships in Redis;
           every digest_tick_s it plans the runs that are due (digests.priority / .standard,
           digest.planned on digests.events)
digests_priority / digests_standard
           one chunk of a run's members at a time -> send.requested (sends.bulk) for each member
           with something new, digest.chunk_done (and digest.run_finished after the last chunk)

Records are acknowledged before offsets are committed, and chunks settled only after their
records: a worker killed mid-chunk leaves it to be digested again, under the same send ids.
"""
from __future__ import annotations

import time

from agents.clock import agent_now_ms
from domain.activity_input import queued_problem
from schemas.codec import DecodeError
from services.digests import ActivityKeeper, DigestComposer, DigestPlanner, ms_of
from services.privacy.erased import without_erased
from streams import metrics
from streams.batching import oldest_ms, run_batch
from streams.dead_letter import dead_letter
from streams.topics import (ACTIVITY_EVENTS, DIGEST_EVENTS, DIGESTS_PRIORITY, DIGESTS_STANDARD, ENGAGEMENT_EVENTS,
                            PRODUCT_EVENTS, SENDS_BULK)

ACTIVITY = ("activity.posted", "activity.joined", "activity.left")
SEEN = ("engagement.opened", "engagement.clicked", "product.tracked")  # a member was seen
ROLE_TOPIC = {"priority": DIGESTS_PRIORITY, "standard": DIGESTS_STANDARD, "events": DIGEST_EVENTS, "sends": SENDS_BULK}


def register_activity(app, deps) -> None:
    s = deps.settings
    topic = app.topic(*[deps.topic(t) for t in (ACTIVITY_EVENTS, ENGAGEMENT_EVENTS, PRODUCT_EVENTS)],
                      value_serializer="raw", key_serializer="raw")
    store = deps.digest_store()

    async def lead_timezones(keys):
        return [st.timezone if st else None for st in await deps.leads.get_many(keys)]

    keeper = ActivityKeeper(store, lead_timezones)
    planner = DigestPlanner(store, s.digest_chunk_size)

    @app.agent(topic, name="activity")
    async def activity(stream):
        async for events in stream.take_events(s.batch_size, within=s.batch_seconds):
            msgs = [(e.message.topic, e.message.partition, e.message.offset, e.message.key, e.message.value)
                    for e in events]
            await run_batch("activity", lambda: keep(deps, keeper, msgs), oldest_event_ms=oldest_ms(events))

    @app.timer(interval=s.digest_tick_s)
    async def plan_runs() -> None:
        await run_batch("digest_planner", lambda: plan_due(deps, planner))


async def keep(deps, keeper: ActivityKeeper, msgs: list[tuple]) -> int:
    now_ms = int(time.time() * 1000)
    book = deps.tenants
    dead, batch = [], []
    for topic, partition, offset, key, value in msgs:
        mine = topic.endswith(ACTIVITY_EVENTS)
        try:
            name, ev = deps.codec.decode(value or b"")
        except DecodeError as exc:
            if mine:  # the other topics have their own consumers' dead letters
                dead.append(dead_letter(topic, partition, offset, key, value, f"activity: {exc}", "activity", now_ms))
            continue
        problem = (f"tenant {ev.get('tenant')!r} is not configured" if ev.get("tenant") not in book.tenants
                   else queued_problem(name, ev) if name in ACTIVITY else None)
        if mine and problem:
            dead.append(dead_letter(topic, partition, offset, key, value, f"activity: {problem}", "activity", now_ms))
        elif name in ACTIVITY or (name in SEEN and not problem):
            batch.append((name, ev))
    if dead:
        await deps.producer.send_many(dead)
    await keeper.keep(await without_erased(deps, batch, "activity"), book)
    return len(msgs)


async def plan_due(deps, planner: DigestPlanner) -> int:
    now_ms = await agent_now_ms(deps)
    book = deps.tenants
    out = await planner.plan_due(book, now_ms)
    await _produce(deps, out)
    await planner.after_produce(out, now_ms)
    watched = await planner.watch(book, now_ms)
    for tenant, digest, cadence, late_s, last_s in watched:
        metrics.DIGEST_RUN_UNFINISHED_SECONDS.labels(tenant, digest).set(late_s)
        metrics.DIGEST_RUN_LAST_FINISHED.labels(tenant, digest, cadence).set(last_s)
    _forget_unwatched({(t, d, c) for t, d, c, _, _ in watched})
    return len(out.runs)


_WATCHED: set[tuple[str, str, str]] = set()


def _forget_unwatched(now_watched: set[tuple[str, str, str]]) -> None:
    """A digest disabled, deleted or moved to another cadence leaves the gauges (its alert
    would otherwise read a frozen value and fire a day later)."""
    for tenant, digest, cadence in _WATCHED - now_watched:
        metrics.DIGEST_RUN_LAST_FINISHED.remove(tenant, digest, cadence)
        if not any(t == tenant and d == digest for t, d, _ in now_watched):
            metrics.DIGEST_RUN_UNFINISHED_SECONDS.remove(tenant, digest)
    _WATCHED.clear()
    _WATCHED.update(now_watched)


def register_priority(app, deps) -> None:
    _register_path(app, deps, "priority", DIGESTS_PRIORITY)


def register_standard(app, deps) -> None:
    _register_path(app, deps, "standard", DIGESTS_STANDARD)


def _register_path(app, deps, path: str, topic_name: str) -> None:
    topic = app.topic(deps.topic(topic_name), value_serializer="raw", key_serializer="raw")
    from projections.redis_segments import SegmentStore
    composer = DigestComposer(deps.digest_store(), SegmentStore(deps.redis).of_leads)

    @app.agent(topic, name=f"digests_{path}")
    async def digests(stream):
        async for event in stream.events():  # one chunk at a time: a chunk is a thousand members
            m = event.message
            await run_batch(f"digests_{path}", lambda: digest_one(deps, composer, path, m),
                            oldest_event_ms=int(m.timestamp * 1000))


async def digest_one(deps, composer: DigestComposer, path: str, m) -> int:
    now_ms = await agent_now_ms(deps)
    try:
        name, req = deps.codec.decode(m.value or b"")
    except DecodeError as exc:
        await deps.producer.send_many([dead_letter(m.topic, m.partition, m.offset, m.key, m.value,
                                                   f"digests: {exc}", f"digests_{path}", now_ms)])
        return 1
    if name != "digest.chunk_requested":
        return 1
    if path == "standard":
        await composer.wait_for_priority(req["run"])
        now_ms = await agent_now_ms(deps)
    out = await composer.digest_chunk(req, deps.tenants, now_ms)
    await _produce(deps, out)
    if out.settle is not None:
        metrics.DIGEST_LATENESS_SECONDS.labels(path).observe(max(now_ms - ms_of(req["send_at"]), 0) / 1000)
    done = await composer.settle(out, await agent_now_ms(deps))
    await _produce(deps, done)
    await composer.after_produce(done, now_ms)
    return 1


async def _produce(deps, out) -> None:
    records = [(deps.topic(ROLE_TOPIC[role]), key.encode(), deps.codec.encode(name, ev), None)
               for role, key, name, ev in out.records]
    if records:
        await deps.producer.send_many(records)
    for what, n in out.counts.items():
        metrics.DIGEST_OUTCOMES.labels(what).inc(n)

