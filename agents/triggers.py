"""Trigger agent: product and platform events -> segments kept, triggered messages requested.

product.events, leads.events, engagement.events -> services/triggering (the engine) ->
  triggers.events   trigger.scheduled / fired / suppressed / deferred, segment.entered / exited
  sends.priority    send.requested for each triggered message (never behind bulk alerts)

Every worker also looks for due timers every trigger_tick_s and fires them (claims are atomic:
one worker fires each). Records are produced and acknowledged before offsets are committed or
timers settled; firing is idempotent per send id, so a redelivery or a re-claim never sends twice.
"""
from __future__ import annotations

import time

from agents.clock import agent_now_ms
from schemas.codec import DecodeError
from services.privacy.erased import without_erased
from services.product_intake import clear_kept
from streams.batching import oldest_ms, run_batch
from streams.dead_letter import dead_letter
from streams.metrics import TRIGGER_OUTCOMES
from streams.topics import ENGAGEMENT_EVENTS, LEAD_EVENTS, PRODUCT_EVENTS, SENDS_PRIORITY, TRIGGER_EVENTS

TOPICS = (PRODUCT_EVENTS, LEAD_EVENTS, ENGAGEMENT_EVENTS)
ROLE_TOPIC = {"triggers": TRIGGER_EVENTS, "priority": SENDS_PRIORITY}
# conversions (engagement.converted, attributed to people's clicks) go with the other engagement facts
WANTED = ("product.tracked", "lead.accepted", "lead.unsubscribed", "engagement.opened", "engagement.clicked",
          "engagement.replied")


def register(app, deps) -> None:
    s = deps.settings
    topic = app.topic(*[deps.topic(t) for t in TOPICS], value_serializer="raw", key_serializer="raw")
    engine = deps.trigger_engine()
    conversions = deps.conversions()

    @app.agent(topic, name="triggers")
    async def triggers(stream):
        async for events in stream.take_events(s.batch_size, within=s.priority_batch_seconds):
            msgs = [(e.message.topic, e.message.partition, e.message.offset, e.message.key,
                     e.message.value) for e in events]
            await run_batch("triggers", lambda: on_events(deps, engine, msgs, conversions),
                            oldest_event_ms=oldest_ms(events))

    @app.timer(interval=s.trigger_tick_s)
    async def due_timers() -> None:
        await run_batch("triggers_timers", lambda: fire_due(deps, engine))

    @app.timer(interval=5.0)
    async def query_segments() -> None:
        await run_batch("triggers_segments", lambda: refresh_segments(deps, engine))


async def on_events(deps, engine, msgs: list[tuple], conversions=None) -> int:
    now_ms = int(time.time() * 1000)
    records, batch = [], []
    for topic, partition, offset, key, value in msgs:
        try:
            name, ev = deps.codec.decode(value or b"")
        except DecodeError as exc:
            if topic.endswith(PRODUCT_EVENTS):  # the other topics have their own consumers' dead letters
                records.append(dead_letter(topic, partition, offset, key, value, f"triggers: {exc}", "triggers", now_ms))
            continue
        if name in WANTED:
            batch.append((name, ev))
    batch = await opened_products(deps, await without_erased(deps, batch, "triggers"))
    out = await engine.on_events(batch, now_ms)
    if conversions is not None:
        records += [(deps.topic(ENGAGEMENT_EVENTS), ev["lead_id"].encode(), deps.codec.encode(name, ev), None)
                    for name, ev in await conversions.on_events(batch)]
    await _produce(deps, engine, records, out)
    return len(msgs)


async def opened_products(deps, batch: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """The batch with product events' sealed properties opened (the conditions and templates
    read them); the platform's own events as they came (nothing of theirs the engine reads is sealed)."""
    products = [i for i, (name, _) in enumerate(batch) if name == "product.tracked"]
    if not products:
        return batch
    out = list(batch)
    for i, pair in zip(products, await deps.sealer().open([batch[i] for i in products])):
        out[i] = pair
    return out


async def fire_due(deps, engine) -> int:
    now_ms = await agent_now_ms(deps)
    out = await engine.fire_due(now_ms)
    await _produce(deps, engine, [], out)
    return sum(out.counts.values())


async def refresh_segments(deps, engine) -> int:
    out = await engine.refresh_segments(int(time.time() * 1000))
    await _produce(deps, engine, [], out)
    return sum(out.counts.values())


async def _produce(deps, engine, records: list, out) -> None:
    """The records acknowledged, then what depends on them (memberships, settled timers). A
    triggered message's request carries its cause's properties: sealed again with the lead's key."""
    sealed = await deps.sealer().seal([(name, ev) for _, _, name, ev in out.records], int(time.time() * 1000),
                                      lambda tenant: clear_kept(deps, tenant))
    records = records + [(deps.topic(ROLE_TOPIC[role]), lead.encode(), deps.codec.encode(name, ev), None)
                         for (role, lead, name, _), ev in zip(out.records, sealed)]
    if records:
        await deps.producer.send_many(records)
    await engine.after_produce(out)
    for what, n in out.counts.items():
        TRIGGER_OUTCOMES.labels(what).inc(n)

