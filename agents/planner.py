"""Planner agent: keeps each lead's schedule, sends the welcome, and emits the daily requests.

leads.events -> the schedule (ls:due:{tenant}) and, on acceptance, a welcome send.requested
on sends.priority; a lead's changed preferences (its cadence, a pause, a list it left) move
its members to where the preference puts them, earlier or later. Every few seconds (and on demand: `python -m runtime.plan_once --at ISO`)
the due members become send.requested on sends.bulk, and move on to their next instant.
"""
from __future__ import annotations

import os
import time

from domain.planning import (daily_request, member, schedule_for, split_member, unscheduled_members,
                             welcome_request)
from projections.redis_schedule import Schedule
from schemas.codec import DecodeError
from services.privacy.erased import without_erased
from streams.batching import NotYetProjected, oldest_ms, run_batch
from streams.dead_letter import dead_letter
from streams.topics import LEAD_EVENTS, SEND_EVENTS, SENDS_BULK, SENDS_PRIORITY

WATCHED = ("lead.accepted", "lead.resubmitted", "lead.unsubscribed", "lead.resubscribed", "lead.preferences_changed")
PLAN_LIMIT = 5000


def register(app, deps) -> None:
    s = deps.settings
    topic = app.topic(deps.topic(LEAD_EVENTS), value_serializer="raw", key_serializer="raw")

    @app.agent(topic, name="planner")
    async def planner(stream):
        async for events in stream.take_events(s.batch_size, within=s.batch_seconds):
            msgs = [(e.message.topic, e.message.partition, e.message.offset, e.message.key,
                     e.message.value) for e in events]
            await run_batch("planner", lambda: on_lead_events(deps, msgs), oldest_event_ms=oldest_ms(events))

    @app.timer(interval=s.plan_interval_s)
    async def plan_tick() -> None:
        await run_batch("plan", lambda: plan_due(deps, int(time.time() * 1000)))


async def on_lead_events(deps, msgs: list[tuple]) -> int:
    """Schedule the lists of accepted leads, drop unsubscribed ones, request welcomes."""
    now_ms = int(time.time() * 1000)
    out, todo = [], []
    for topic, partition, offset, key, value in msgs:
        try:
            name, ev = deps.codec.decode(value or b"")
        except DecodeError as exc:
            out.append(dead_letter(topic, partition, offset, key, value, f"undecodable: {exc}", "planner", now_ms))
            continue
        if name in WATCHED and ev["tenant"] in deps.tenants.tenants:
            todo.append((name, ev))
    # an erased person's read model is gone for good: their events left in the backlog plan nothing
    todo = await without_erased(deps, todo, "planner")
    states = await deps.leads.get_many([(ev["tenant"], ev["lead_id"]) for _, ev in todo])
    entries, resets = [], []
    for (name, ev), state in zip(todo, states):
        if state is None or not _projected(state, ev):
            raise NotYetProjected(f"the read model of {ev['lead_id']} trails {name} {ev['event_id']}")
        tenant = deps.tenants.tenants[ev["tenant"]]
        keep = schedule_for(state, tenant, now_ms)
        drop = unscheduled_members(state, keep)
        if name == "lead.preferences_changed":
            # the changed list's next instant may come sooner (weekly -> daily): set as it is;
            # the lead's other lists are only ever moved on, as always
            changed = member(state.lead_id, ev["list"])
            resets.append((tenant.id, [e for e in keep if e[0] == changed], drop))
            keep = [e for e in keep if e[0] != changed]
            drop = []
        entries.append((tenant.id, keep, drop))
        if name == "lead.accepted":
            welcome = welcome_request(ev, tenant, now_ms)
            if welcome:
                out.append((deps.topic(SENDS_PRIORITY), ev["lead_id"].encode(),
                            deps.codec.encode(*welcome), None))
    await deps.producer.send_many(out)
    await Schedule(deps.redis).set_entries(entries)
    await Schedule(deps.redis).set_entries(resets, only_later=False)
    return len(msgs)


def _projected(state, ev: dict) -> bool:
    """Has the intake saved the state this event produced?"""
    occurred = ev["occurred_at"]
    occurred_ms = occurred if isinstance(occurred, int) else int(occurred.timestamp() * 1000)
    return ev.get("causation_id") in state.applied or state.updated_ms > occurred_ms


async def plan_due(deps, now_ms: int) -> int:
    """Emit the requests due at now_ms for every tenant; returns how many were requested."""
    schedule, owner, total = Schedule(deps.redis), f"{os.getpid()}@{now_ms}", 0
    for tenant in deps.tenants.tenants.values():
        if not await schedule.lock(tenant.id, owner):
            continue  # another planner worker is on it
        try:
            while True:
                due = await schedule.due(tenant.id, now_ms, PLAN_LIMIT)
                if not due:
                    break
                total += await _plan_batch(deps, schedule, tenant, due, now_ms)
                if len(due) < PLAN_LIMIT:
                    break
        finally:
            await schedule.unlock(tenant.id, owner)
    return total


async def _plan_batch(deps, schedule: Schedule, tenant, due: list[tuple[str, int]], now_ms: int) -> int:
    members = [split_member(m) for m, _ in due]
    states = await deps.leads.get_many([(tenant.id, lid) for lid, _ in members])
    out, following, drop, requested = [], [], [], 0
    for (m, due_ms), (lead_id, list_name), state in zip(due, members, states):
        event, nxt = daily_request(state, tenant, list_name, due_ms, now_ms)
        if event:
            requested += event[0] == "send.requested"
            topic = SENDS_BULK if event[0] == "send.requested" else SEND_EVENTS
            out.append((deps.topic(topic), lead_id.encode(), deps.codec.encode(*event), None))
        if nxt:
            following.append((m, nxt))
        else:
            drop.append(m)
    await deps.producer.send_many(out)
    await schedule.move_on(tenant.id, following, drop)
    return requested
