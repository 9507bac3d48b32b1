"""Retry agent: deferred send requests wait until their not_before, then go back to the topic of
their kind (priority or bulk).

A request already due goes straight back. One due later is held in a durable Redis delay queue
(projections/redis_delays.py) and the offset moves on, so a request deferred until tomorrow
morning never holds up the ones behind it on its partition (a START confirmation waited hours
behind a welcome deferred by quiet hours when this agent slept on the batch). Every worker
looks for due requests every trigger_tick_s; a claim is atomic, and a worker that dies after
claiming lets the request come back after the lease: a request may go back twice, and the
sender's send-id marks make that harmless.
"""
from __future__ import annotations

import logging
import time

from domain.sending import topic_for
from projections.redis_delays import DelayQueue
from schemas.codec import DecodeError
from streams.batching import oldest_ms, run_batch
from streams.dead_letter import dead_letter
from streams.topics import SENDS_BULK, SENDS_PRIORITY, SENDS_RETRY

TOPICS = {"priority": SENDS_PRIORITY, "bulk": SENDS_BULK}
QUEUE, PREFIX, TTL_S = "ls:retryq", "ls:retry:", 8 * 86_400
log = logging.getLogger("leadstream.retry")
LEASE_MS = 30_000
EARLY_MS = 50  # due this soon: forwarded now


def register(app, deps) -> None:
    s = deps.settings
    topic = app.topic(deps.topic(SENDS_RETRY), value_serializer="raw", key_serializer="raw")
    queue = DelayQueue(deps.redis, QUEUE, PREFIX, TTL_S)

    @app.agent(topic, name="retry")
    async def retry(stream):
        async for events in stream.take_events(s.batch_size, within=s.batch_seconds):
            msgs = [(e.message.topic, e.message.partition, e.message.offset, e.message.key,
                     e.message.value) for e in events]
            await run_batch("retry", lambda: hold(deps, queue, msgs), oldest_event_ms=oldest_ms(events))

    @app.timer(interval=s.trigger_tick_s)
    async def due() -> None:
        await run_batch("retry_due", lambda: release_due(deps, queue))


async def hold(deps, queue: DelayQueue, msgs: list[tuple]) -> int:
    """Forward what is due now; keep the rest in the delay queue (durably, before the offsets move)."""
    now_ms = int(time.time() * 1000)
    records, later = [], []
    for topic, partition, offset, key, value in msgs:
        try:
            name, req = deps.codec.decode(value or b"")
        except DecodeError as exc:
            records.append(dead_letter(topic, partition, offset, key, value, f"undecodable: {exc}", "retry", now_ms))
            continue
        role = topic_for(req)
        nb = req.get("not_before")
        due = now_ms if nb is None else (nb if isinstance(nb, int) else int(nb.timestamp() * 1000))
        if due <= now_ms + EARLY_MS:
            records.append((deps.topic(TOPICS[role]), key, value, None))
        else:
            later.append((req["event_id"], due, role.encode() + b"\n" + (key or b"") + b"\n" + value))
    await queue.schedule(later)
    if records:
        await deps.producer.send_many(records)
    return len(msgs)


async def release_due(deps, queue: DelayQueue) -> int:
    """The held requests that are due, back to their topics."""
    claimed = await queue.claim_due(int(time.time() * 1000), LEASE_MS)
    records, done = [], []
    for ident, payload in claimed:
        done.append(ident)
        if payload is None:  # held past TTL_S (8 days): said loudly, there is nothing left to forward
            log.error("deferred request %s: its payload expired in the delay queue; not forwarded", ident)
            continue
        role, key, value = payload.split(b"\n", 2)
        records.append((deps.topic(TOPICS[role.decode()]), key or None, value, None))
    if records:
        await deps.producer.send_many(records)
    await queue.settle(done)
    return len(done)
