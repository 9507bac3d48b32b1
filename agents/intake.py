"""Intake agent: lead.submitted -> validate, dedupe -> lead.accepted / rejected / resubmitted.

Per batch: decode, check (CPU), one Redis round trip for state and suppression, decide in
order (a duplicate inside the batch sees the first one's state), produce the events and
wait for Kafka, then save the states atomically. Offsets are acknowledged after that.
"""
from __future__ import annotations

import time

from domain.intake import LeadState, check_submission, decide, evolve
from domain.validation import suppression_keys
from schemas.codec import DecodeError
from streams.batching import run_batch
from streams.dead_letter import dead_letter
from streams.topics import LEAD_EVENTS, SUBMITTED

SOURCE = "agent:intake"


def register(app, deps) -> None:
    s = deps.settings
    topic = app.topic(deps.topic(SUBMITTED), value_serializer="raw", key_serializer="raw")

    @app.agent(topic, name="intake")
    async def intake(stream):
        async for events in stream.take_events(s.batch_size, within=s.batch_seconds):
            msgs = [(e.message.topic, e.message.partition, e.message.offset, e.message.key,
                     e.message.value) for e in events]
            await run_batch("intake", lambda: process(deps, msgs))


async def process(deps, msgs: list[tuple]) -> int:
    """Decide a batch of raw lead.submitted messages; returns how many were processed."""
    now_ms = int(time.time() * 1000)
    out, todo = [], []
    for topic, partition, offset, key, value in msgs:
        sub, err = _decode(deps, value)
        if err:
            out.append(dead_letter(topic, partition, offset, key, value, err, "intake", now_ms))
            continue
        tenant = deps.tenants.tenants[sub["tenant"]]
        checked = check_submission(sub, tenant)
        todo.append((sub, tenant, checked))
    found = await deps.leads.lookup(
        [(sub["tenant"], sub["lead_id"], suppression_keys(c, sub["channel"])) for sub, _, c in todo])
    states: dict[tuple[str, str], LeadState | None] = {}
    events_topic = deps.topic(LEAD_EVENTS)
    for (sub, tenant, checked), look in zip(todo, found):
        k = (sub["tenant"], sub["lead_id"])
        state = states[k] if k in states else look.state
        suppressed = "blocklisted" if look.blocklisted else ("opted_out" if look.opted_out else None)
        for name, ev in decide(sub, checked, suppressed, state, tenant, now_ms, SOURCE):
            out.append((events_topic, sub["lead_id"].encode(), deps.codec.encode(name, ev), None))
            state = evolve(state, name, ev)
        states[k] = state
    await deps.producer.send_many(out)
    await deps.leads.save([st for st in states.values() if st is not None])
    return len(msgs)


def _decode(deps, value: bytes | None) -> tuple[dict | None, str | None]:
    if value is None:
        return None, "empty message (tombstone) on lead.submitted"
    try:
        name, sub = deps.codec.decode(value)
    except DecodeError as exc:
        return None, f"undecodable: {exc}"
    if name != "lead.submitted":
        return None, f"unexpected event {name} on the submitted topic"
    if sub["tenant"] not in deps.tenants.tenants:
        return None, f"unknown tenant {sub['tenant']!r}"
    return sub, None
