"""Analytics agent: every event of the lead, send and engagement topics -> ClickHouse, in
columnar batches.

The writer inserts only the events ClickHouse does not hold yet (by event id, and revision),
so a redelivered batch or a replay adds nothing and the rollups fed by materialized views are
plain sums (projections/clickhouse.py).
"""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

from domain.erasure import anonymised_event
from projections.clickhouse import EventsWriter
from projections.event_rows import event_row
from schemas.codec import DecodeError
from services.privacy.erased import anonymous_ids, scrub_rows_of_erased
from streams.batching import oldest_ms, run_batch
from streams.dead_letter import dead_letter
from streams.topics import (ACTIVITY_EVENTS, CONSENT_EVENTS, ENGAGEMENT_EVENTS, LEAD_EVENTS, PRODUCT_EVENTS, SEND_EVENTS, SENDS_BULK,
                           SENDS_PRIORITY, SUBMITTED, TRIGGER_EVENTS)

TOPICS = (SUBMITTED, LEAD_EVENTS, SENDS_PRIORITY, SENDS_BULK, SEND_EVENTS, ENGAGEMENT_EVENTS, PRODUCT_EVENTS,
          TRIGGER_EVENTS, CONSENT_EVENTS, ACTIVITY_EVENTS)


def register(app, deps) -> None:
    s = deps.settings
    topics = app.topic(*[deps.topic(t) for t in TOPICS], value_serializer="raw", key_serializer="raw")
    writer = EventsWriter(deps.clickhouse(), s.clickhouse_database)

    @app.agent(topics, name="analytics")
    async def analytics(stream):
        async for events in stream.take_events(s.batch_size * 2, within=max(s.batch_seconds, 0.5)):
            msgs = [(e.message.topic, e.message.partition, e.message.offset, e.message.key,
                     e.message.value) for e in events]
            await run_batch("analytics", lambda: project(deps, writer, msgs),
                            oldest_event_ms=oldest_ms(events))

    looks = deps.experiment_looks()

    @app.timer(interval=s.experiment_look_interval_s)
    async def experiment_looks() -> None:
        await run_batch("experiment_looks", lambda: look_at_experiments(deps, looks))

    training = deps.recommender_training()

    # ticks each minute (at most); each brand is trained once per interval (the claim decides)
    @app.timer(interval=min(60.0, s.recommend_train_interval_s))
    async def recommender_training() -> None:
        await run_batch("recommender_training", lambda: train_recommenders(deps, training))


async def look_at_experiments(deps, looks) -> int:
    """Record a look at every running experiment whose last look is an interval old (one worker
    of the agent takes each look: a Redis key held for the interval)."""
    interval_s = max(1, int(deps.settings.experiment_look_interval_s))

    def key(tenant: str, experiment: str) -> str:
        return f"ls:experiment-look:{tenant}:{experiment}"

    async def due(tenant: str, experiment: str) -> bool:
        return bool(await deps.redis.set(key(tenant, experiment), 1, nx=True, ex=interval_s))

    async def release(tenant: str, experiment: str) -> None:
        await deps.redis.delete(key(tenant, experiment))
    return await looks.record_running(int(time.time() * 1000), due, release)


async def train_recommenders(deps, training) -> int:
    """Train each brand's recommender once per interval (one worker of the agent trains each:
    a Redis key held for the interval, given back when the training fails)."""
    interval_s = max(1, int(deps.settings.recommend_train_interval_s))
    now_ms = int(time.time() * 1000)

    def key(tenant: str) -> str:
        return f"ls:reco-training:{tenant}"

    async def due(tenant: str) -> bool:
        return bool(await deps.redis.set(key(tenant), now_ms, nx=True, ex=interval_s))
    try:
        return await training.train_due(now_ms, due)
    except Exception:
        for tenant in deps.tenants.tenants:  # a claim whose value is this round's is given back
            if await deps.redis.get(key(tenant)) == str(now_ms).encode():
                await deps.redis.delete(key(tenant))
        raise


async def project(deps, writer: EventsWriter, msgs: list[tuple]) -> int:
    """Write a batch of raw events to ClickHouse; bad ones go to the dead-letter topic. Events
    about a person erased before they came are written anonymised (services/privacy/erased.py)."""
    decoded, dead = decode_all(deps, msgs)
    if dead:
        await deps.producer.send_many(dead)
    anonymous = await anonymous_ids(deps, [ev for _, ev, _ in decoded])
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    writer.rows = []  # replacing any rows left from a failed try
    for (name, ev, (topic, partition, offset)), anon in zip(decoded, anonymous):
        writer.submit(event_row(name, ev if anon is None else anonymised_event(ev, anon), topic, partition, offset, now))
    await asyncio.to_thread(writer.flush)
    await scrub_rows_of_erased(deps, [ev for _, ev, _ in decoded])
    return len(msgs)


def decode_all(deps, msgs: list[tuple]) -> tuple[list[tuple], list[tuple]]:
    """(name, event, (topic, partition, offset)) of each decodable message, and the dead-letter
    records of the rest."""
    decoded, dead = [], []
    for topic, partition, offset, key, value in msgs:
        try:
            name, ev = deps.codec.decode(value or b"")
        except DecodeError as exc:
            dead.append(dead_letter(topic, partition, offset, key, value, f"undecodable: {exc}",
                                    "analytics", int(time.time() * 1000)))
            continue
        decoded.append((name, ev, (topic, partition, offset)))
    return decoded, dead
