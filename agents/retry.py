"""Retry agent: deferred send requests wait on sends.retry until their not_before, then go
back to the topic of their kind (priority or bulk). Waiting holds this agent's partition,
never a sender's: the senders keep working while deferred messages wait here."""
from __future__ import annotations

import asyncio
import time

from domain.sending import topic_for
from schemas.codec import DecodeError
from streams.batching import oldest_ms, run_batch
from streams.dead_letter import dead_letter
from streams.topics import SENDS_BULK, SENDS_PRIORITY, SENDS_RETRY

MAX_WAIT_S = 30.0  # re-read the clock at least this often while waiting
TOPICS = {"priority": SENDS_PRIORITY, "bulk": SENDS_BULK}


def register(app, deps) -> None:
    s = deps.settings
    topic = app.topic(deps.topic(SENDS_RETRY), value_serializer="raw", key_serializer="raw")

    @app.agent(topic, name="retry")
    async def retry(stream):
        async for events in stream.take_events(s.batch_size, within=s.batch_seconds):
            msgs = [(e.message.topic, e.message.partition, e.message.offset, e.message.key,
                     e.message.value) for e in events]
            await run_batch("retry", lambda: forward(deps, msgs), oldest_event_ms=oldest_ms(events))


async def forward(deps, msgs: list[tuple]) -> int:
    """Wait until the latest not_before of the batch, then put every request back."""
    now_ms = int(time.time() * 1000)
    records, latest = [], now_ms
    for topic, partition, offset, key, value in msgs:
        try:
            name, req = deps.codec.decode(value or b"")
        except DecodeError as exc:
            records.append(dead_letter(topic, partition, offset, key, value, f"undecodable: {exc}", "retry", now_ms))
            continue
        nb = req.get("not_before")
        if nb is not None:
            latest = max(latest, nb if isinstance(nb, int) else int(nb.timestamp() * 1000))
        records.append((deps.topic(TOPICS[topic_for(req)]), key, value, None))
    while (wait := latest - int(time.time() * 1000)) > 0:
        await asyncio.sleep(min(wait / 1000, MAX_WAIT_S))
    await deps.producer.send_many(records)
    return len(msgs)
