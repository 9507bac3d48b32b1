"""Sender agents: send.requested -> compose -> deliver -> send.dispatched / failed / deferred / skipped.

Two agents, one code: `sender_priority` reads sends.priority (welcome, triggered) and
`sender_bulk` reads sends.bulk (the daily alerts), each its own consumer group scaled on its
own lag, so a welcome never waits behind a morning's bulk. The batch work is the sending use
case (services/sending/batch.py, built by the composition root as deps.send_batch()); the
guarantee (at most once per send id) in domain/sending.py.
"""
from __future__ import annotations

import asyncio
import time

from domain.sealing import has_sealed
from schemas.codec import DecodeError
from streams.batching import oldest_ms, run_batch
from streams.dead_letter import dead_letter
from streams.topics import SEND_EVENTS, SENDS_BULK, SENDS_PRIORITY, SENDS_RETRY


def register_for(topic_name: str, agent_name: str):
    """A register(app, deps) for a sender on this topic."""
    def register(app, deps) -> None:
        s = deps.settings
        topic = app.topic(deps.topic(topic_name), value_serializer="raw", key_serializer="raw")
        # One actor, one batch at a time: a batch's offsets are acknowledged only once all of it
        # is done. (Two Faust actors on one partition acknowledge out of order, and Faust then
        # commits past a message still being sent when the only one not acknowledged is the
        # next to commit: a worker killed then loses it. CI saw one send of 1,500 never settled.)
        # The bulk path works on each batch in parts split by lead, at once: one part composes
        # while another waits on the SMTP server, Redis or Kafka. The priority path keeps one
        # piece: a person's messages (an SMS answer, then the next) leave in the order asked.
        priority = topic_name == SENDS_PRIORITY
        parts = [deps.send_batch()]  # one use case per part: its own Unfinished
        parts += [parts[0].twin() for _ in range(0 if priority else max(0, s.bulk_send_concurrency - 1))]
        within = s.priority_batch_seconds if priority else s.batch_seconds

        @app.agent(topic, name=agent_name, concurrency=1)
        async def sender(stream):
            async for events in stream.take_events(s.send_batch_size, within=within):
                msgs = [(e.message.topic, e.message.partition, e.message.offset, e.message.key,
                         e.message.value) for e in events]
                await run_batch(agent_name, lambda: send_in_parts(deps, parts, agent_name, msgs),
                                oldest_event_ms=oldest_ms(events))
    return register


def parts_by_lead(msgs: list[tuple], n: int) -> list[list[tuple]]:
    """The messages in n parts by their key (the lead id): a lead's messages all in one part, in
    their order. The same batch splits the same way on a retry, so each part's use case finds
    what its own earlier attempt claimed."""
    if n == 1:
        return [msgs]
    out: list[list[tuple]] = [[] for _ in range(n)]
    place: dict[bytes, int] = {}  # each lead to the part with the fewest messages when first seen
    for m in msgs:
        key = m[3] or b""
        if key not in place:
            place[key] = min(range(n), key=lambda p: len(out[p]))
        out[place[key]].append(m)
    return out


async def send_in_parts(deps, batches: list, agent: str, msgs: list[tuple]) -> int:
    """send() each part with its own use case, at once; every part finishes before a failure
    is raised (run_batch retries the whole batch, and no part may still be running then)."""
    parts = parts_by_lead(msgs, len(batches))
    done = await asyncio.gather(*(send(deps, b, agent, part) for b, part in zip(batches, parts) if part),
                                return_exceptions=True)
    for result in done:
        if isinstance(result, BaseException):
            raise result
    return sum(done)


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
    # a triggered message's context holds its cause's properties sealed: opened to compose,
    # and a retry carries them sealed as they came
    sealed = {r["send_id"]: r["context"] for r in reqs if has_sealed("send.requested", r)}
    if sealed:
        reqs = [ev for _, ev in await deps.sealer().open([("send.requested", r) for r in reqs])]
    out = await batch.run(reqs, now_ms)
    for name, ev in out.events:
        records.append((deps.topic(SEND_EVENTS), ev["lead_id"].encode(), deps.codec.encode(name, ev), None))
    for req in out.retries:
        if req["send_id"] in sealed:
            req = {**req, "context": sealed[req["send_id"]]}
        records.append((deps.topic(SENDS_RETRY), req["lead_id"].encode(),
                        deps.codec.encode("send.requested", req), None))
    await deps.producer.send_many(records)
    return len(msgs)


register_priority = register_for(SENDS_PRIORITY, "sender_priority")
register_bulk = register_for(SENDS_BULK, "sender_bulk")
