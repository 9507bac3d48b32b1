"""The trigger engine's Redis state rebuilt from the topics (part of `runtime.replay --redis`).

Histories from product.events, leads.events and engagement.events; segment membership,
cooldowns, caps and pending timers from triggers.events (services/triggering/rebuild.py says
how). What was there is deleted first: run it with the workers stopped, as `./dev replay` does.
"""
from __future__ import annotations

import time
from typing import Callable

from domain.product_events import TRIGGER_SOURCES
from projections.redis_segments import SegmentStore
from projections.redis_triggers import CAP_TTL_S, TIMERS, TriggerStore, cap_key, fired_key
from runtime.replay_forget import forget
from schemas.codec import DecodeError
from services.triggering.rebuild import TriggerLog, by_address, history_item, seen_of
from streams.topics import ENGAGEMENT_EVENTS, LEAD_EVENTS, PRODUCT_EVENTS, TRIGGER_EVENTS

PREFIXES = ("ls:tev:", "ls:tfired:", "ls:tcap:", "ls:seg:", "ls:segm:", "ls:timer:")
CHUNK = 5000
LOOKBACK_MS = 90 * 86_400_000


async def rebuild_triggers(deps, states: dict, read_topics: Callable, tick: Callable[[str, int, int], None],
                           opened: Callable[[str, dict], dict] = lambda name, ev: ev, forgotten: bool = False) -> dict:
    """Delete the engine's state, fold it again, write it; counts of what was written.
    opened(name, event): the event with its sealed fields opened (a product event's properties).
    forgotten: the caller already deleted the engine's state (runtime.replay_forget)."""
    r, now_ms = deps.redis, int(time.time() * 1000)
    if not forgotten:
        await forget(r, PREFIXES)
    await r.delete(TIMERS)

    log, bad = TriggerLog(), 0
    total, msgs = read_topics(deps, [deps.topic(TRIGGER_EVENTS)])
    for _, _, _, value in msgs:
        tick("triggers.events", 1, total)
        try:
            log.add(*deps.codec.decode(value or b""))
        except (DecodeError, KeyError):
            bad += 1

    store, book, wanted, causes = TriggerStore(r), deps.tenants, log.causes(), {}
    items, remembered = [], 0
    total, msgs = read_topics(deps, [deps.topic(t) for t in (PRODUCT_EVENTS, LEAD_EVENTS, ENGAGEMENT_EVENTS)])
    for _, _, _, value in msgs:
        tick("trigger histories", 1, total)
        try:
            decoded = deps.codec.decode_if(value or b"", TRIGGER_SOURCES)  # most of leads.events is not one
        except DecodeError:
            bad += 1
            continue
        if decoded is None:
            continue
        name, ev = decoded
        if name == "product.tracked":
            ev = opened(name, ev)
        s = seen_of(name, ev, book.tenants.get(ev.get("tenant", "")), deps.lead_ids)
        if s is None or now_ms - s.at > LOOKBACK_MS or (by_address(name, ev) and (s.tenant, s.lead) not in states):
            continue
        if s.event_id in wanted:
            causes[s.event_id] = s
        items.append(history_item(s))
        if len(items) >= CHUNK:
            await store.remember(items)
            remembered, items = remembered + len(items), []
    await store.remember(items)
    remembered += len(items)

    timezones = {k: st.timezone for k, st in states.items()}
    await SegmentStore(r).apply(log.members())
    pipe = r.pipeline(transaction=False)
    for (tenant, lead), fired in log.fired.items():
        pipe.hset(fired_key(tenant, lead), mapping={t: f"{ms}|{sid}" for t, (ms, sid) in fired.items()})
    for tenant, lead, day, sid in log.caps(timezones, now_ms):
        pipe.sadd(cap_key(tenant, lead, day), sid)
        pipe.expire(cap_key(tenant, lead, day), CAP_TTL_S)
    await pipe.execute()
    timers, lost = log.timers(causes, book, timezones)
    await store.schedule(timers)
    return {"trigger_events": remembered, "segment_members": len(log.members()), "timers": len(timers),
            "timers_without_cause": len(lost), "undecodable_trigger_events": bad}
