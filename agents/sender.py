"""Sender agents: send.requested -> compose -> deliver -> send.dispatched / failed / deferred / skipped.

Two agents, one code: `sender_priority` reads sends.priority (welcome, triggered) and
`sender_bulk` reads sends.bulk (the daily alerts), each its own consumer group scaled on its
own lag, so a welcome never waits behind a morning's bulk. The batch work is the sending use
case (services/sending/batch.py, built by the composition root as deps.send_batch()); the
guarantee (at most once per send id) in domain/sending.py.
"""
from __future__ import annotations

import time

from schemas.codec import DecodeError
from streams.batching import oldest_ms, run_batch
from streams.dead_letter import dead_letter
from streams.topics import SEND_EVENTS, SENDS_BULK, SENDS_PRIORITY, SENDS_RETRY


def register_for(topic_name: str, agent_name: str):
    """A register(app, deps) for a sender on this topic."""
    def register(app, deps) -> None:
        s = deps.settings
        topic = app.topic(deps.topic(topic_name), value_serializer="raw", key_serializer="raw")
        # the priority path keeps one batch at a time: a person's messages (an SMS answer, then
        # the next) leave in the order they were asked for
        priority = topic_name == SENDS_PRIORITY
        concurrency = 1 if priority else s.bulk_send_concurrency
        first = deps.send_batch()
        free = [first] + [first.twin() for _ in range(concurrency - 1)]
        within = s.priority_batch_seconds if priority else s.batch_seconds

        @app.agent(topic, name=agent_name, concurrency=concurrency)
        async def sender(stream):
            batch = free.pop() if free else first.twin()  # one use case per actor: its own Unfinished
            async for events in stream.take_events(s.send_batch_size, within=within):
                msgs = [(e.message.topic, e.message.partition, e.message.offset, e.message.key,
                         e.message.value) for e in events]
                await run_batch(agent_name, lambda: send(deps, batch, agent_name, msgs),
                                oldest_event_ms=oldest_ms(events))
    return register


async def send(deps, batch, agent: str, msgs: list[tuple]) -> int:
    """Decode, dispatch, and produce what happened; returns how many were processed."""
    now_ms = int(time.time() * 1000)
    records, reqs = [], []
    for topic, partition, offset, key, value in msgs:
        try:
            name, ev = deps.codec.decode(value or b"")
            if name != "send.requested":
                raise DecodeError(f"unexpected event {name} on a send topic")
        except DecodeError as exc:
            records.append(dead_letter(topic, partition, offset, key, value, str(exc), agent, now_ms))
            continue
        reqs.append(ev)
    out = await batch.run(reqs, now_ms)
    for name, ev in out.events:
        records.append((deps.topic(SEND_EVENTS), ev["lead_id"].encode(), deps.codec.encode(name, ev), None))
    for req in out.retries:
        records.append((deps.topic(SENDS_RETRY), req["lead_id"].encode(),
                        deps.codec.encode("send.requested", req), None))
    await deps.producer.send_many(records)
    return len(msgs)


register_priority = register_for(SENDS_PRIORITY, "sender_priority")
register_bulk = register_for(SENDS_BULK, "sender_bulk")
