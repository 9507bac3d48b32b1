"""Intake agent: owns each lead's state.

lead.submitted -> validate, dedupe -> lead.accepted / rejected / resubmitted
lead.unsubscribe_requested -> lead.unsubscribed (and the tenant's opt-out set)
lead.resubscribe_requested -> lead.resubscribed (out of the opt-out set again)
lead.preferences_requested -> lead.preferences_changed (one list: cadence, pause, left), or
                              lead.unsubscribed for "leave everything" (domain.preferences)

Per batch: decode, check (CPU), one Redis round trip for state and suppression, decide in
order (a duplicate inside the batch sees the first one's state), seal the events' personal
fields with each lead's data key (made, and durable on privacy.keys, before first use),
produce the events and wait for Kafka, then save the states atomically. Offsets are
acknowledged after that.
"""
from __future__ import annotations

import time

from domain.identity import legacy_id_of
from domain.intake import (LeadState, check_submission, decide, decide_resubscribe, decide_unsubscribe, evolve,
                           refuse_erased, source_cap_key)
from domain.preferences import decide_preferences
from domain.validation import suppression_entries, suppression_keys
from projections.redis_leads import BLOCK
from schemas.codec import DecodeError
from streams.batching import oldest_ms, run_batch
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
            await run_batch("intake", lambda: process(deps, msgs),
                            oldest_event_ms=oldest_ms(events))


class BlocklistSync:
    """Keeps the suppression set equal to the configuration's blocklist: a change made through
    the control plane reaches Redis with the next batch (idempotent: any worker may do it), and
    so does the whole set after Redis lost it (a wipe: the senders would see no blocklist)."""

    def __init__(self):
        self.version: int | None = None
        self.entries: list[str] | None = None

    async def ensure(self, deps, book) -> None:
        if self.version == book.version and (not self.entries or await deps.redis.exists(BLOCK)):
            return
        entries = suppression_entries(book.blocklist)
        if entries != self.entries or self.version == book.version:
            await deps.leads.sync_blocklist(entries)
        self.version, self.entries = book.version, entries


_blocklists: dict[str, BlocklistSync] = {}


async def process(deps, msgs: list[tuple]) -> int:
    """Decide a batch of raw input messages; returns how many were processed."""
    now_ms = int(time.time() * 1000)
    await _blocklists.setdefault(deps.settings.topic_prefix, BlocklistSync()).ensure(deps, deps.tenants)
    out, decoded = [], []
    for msg in msgs:
        name, ev, err = _decode(deps, msg[4])
        if err:
            out.append(dead_letter(*msg, err, "intake", now_ms))
        else:
            decoded.append((msg, name, ev))
    opened = await deps.sealer().open([(name, ev) for _, name, ev in decoded])  # the lead's data key
    events_topic = deps.topic(LEAD_EVENTS)
    todo = await _refuse_erased(deps, [(name, ev, deps.tenants.tenants[ev["tenant"]], msg)
                                       for (msg, _, _), (name, ev) in zip(decoded, opened)], out, events_topic)
    checked = []
    for name, ev, tenant, msg in todo:
        if name == "lead.submitted" and ev["address"] is None:  # sealed, and does not open: not ours to guess
            out.append(dead_letter(*msg, "its sealed personal fields do not open (no data key)", "intake", now_ms))
        else:
            checked.append((name, ev, tenant, check_submission(ev, tenant) if name == "lead.submitted" else None))
    todo = checked
    found = await deps.leads.lookup([
        (ev["tenant"], ev["lead_id"], suppression_keys(c, ev["channel"]) if c else [ev["lead_id"]])
        for _, ev, _, c in todo])
    caps = {k: None for name, ev, tenant, _ in todo if name == "lead.submitted"
            for k in [source_cap_key(ev, tenant)] if k is not None}
    counts = dict(zip(caps, await deps.leads.source_counts(list(caps))))
    counted: dict[tuple, int] = {}
    states: dict[tuple[str, str], LeadState | None] = {}
    optouts: list[tuple[str, str]] = []
    optins: list[tuple[str, str]] = []
    emitted: list[tuple[str, dict]] = []
    for (name, ev, tenant, checked), look in zip(todo, found):
        k = (ev["tenant"], ev["lead_id"])
        state = states[k] if k in states else look.state
        if name == "lead.submitted":
            suppressed = "blocklisted" if look.blocklisted else ("opted_out" if look.opted_out else None)
            cap = source_cap_key(ev, tenant)
            decided = decide(ev, checked, suppressed, state, tenant, SOURCE,
                             counts.get(cap, 0) + counted.get(cap, 0))
            if cap is not None and any(n == "lead.accepted" for n, _ in decided):
                counted[cap] = counted.get(cap, 0) + 1
        elif name == "lead.resubscribe_requested":
            decided = decide_resubscribe(ev, state, SOURCE)
        elif name == "lead.preferences_requested":
            cfg = tenant.lists.get(ev["list"])
            decided = decide_preferences(ev, state, cfg.cadence if cfg else None, SOURCE)
        else:
            decided = decide_unsubscribe(ev, state, SOURCE)
        for out_name, out_ev in decided:
            emitted.append((out_name, out_ev))
            state = evolve(state, out_name, out_ev)
            if out_name == "lead.unsubscribed":
                optouts.append((out_ev["tenant"], out_ev["address"]))
            elif out_name == "lead.resubscribed":
                optins.append((out_ev["tenant"], out_ev["address"]))
        states[k] = state
    sealed = await deps.sealer().seal(emitted, now_ms)  # personal fields: the lead's own data key
    out += [(events_topic, ev["lead_id"].encode(), deps.codec.encode(name, ev), None)
            for (name, _), ev in zip(emitted, sealed)]
    await deps.producer.send_many(out)
    await deps.leads.save([st for st in states.values() if st is not None], optouts, optins, counted)
    return len(msgs)


async def _refuse_erased(deps, todo: list[tuple], out: list, events_topic: str) -> list[tuple]:
    """Submissions of erased people (the do-not-contact list) refused without their address
    (one SMISMEMBER per tenant); the others, to decide."""
    subs = [(i, ev["tenant"], ev["lead_id"]) for i, (name, ev, _, _) in enumerate(todo) if name == "lead.submitted"]
    # and under the lead's unkeyed id: an erasure from before the migration to keyed ids
    legacy = [(i, ev["tenant"], legacy_id_of(ev["channel"], ev["tenant"], ev["address"],
                                             brand.validation.default_region))
              for i, (name, ev, brand, _) in enumerate(todo) if name == "lead.submitted"]
    asked = subs + [item for item in legacy if item[2]]
    listed = await deps.do_not_contact().erased([(t, lead) for _, t, lead in asked])
    refused = {i for (i, _, _), hit in zip(asked, listed) if hit}
    for i in sorted(refused):
        name, ev = refuse_erased(todo[i][1], SOURCE)
        out.append((events_topic, ev["lead_id"].encode(), deps.codec.encode(name, ev), None))
    return [item for i, item in enumerate(todo) if i not in refused] if refused else todo


INPUTS = ("lead.submitted", "lead.unsubscribe_requested", "lead.resubscribe_requested", "lead.preferences_requested")


def _decode(deps, value: bytes | None) -> tuple[str, dict, str | None]:
    """(event name, event, None) or (.., .., the reason it goes to the dead-letter topic)."""
    if value is None:
        return "", {}, "empty message (tombstone) on the intake topic"
    try:
        name, ev = deps.codec.decode(value)
    except DecodeError as exc:
        return "", {}, f"undecodable: {exc}"
    if name not in INPUTS:
        return name, ev, f"unexpected event {name} on the intake topic"
    if ev["tenant"] not in deps.tenants.tenants:
        return name, ev, f"unknown tenant {ev['tenant']!r}"
    return name, ev, None
