"""Product events from the queue path: a brand's JSON on product.intake.json, taken as the
events API takes them (services shared with api/events.py).

A message is {"tenant": "...", "event": {...the API's event body...}}. Each is checked, its
person resolved to the brand's lead id, and written to product.events as a product.tracked
with its properties sealed with the person's data key (those the brand keeps clear excepted).
There is nobody to answer, so what the API would refuse goes to the dead-letter topic with the
reason (malformed, unknown tenant, invalid, a person the brand does not know under policy
"reject"); an erased person's event is counted and never written, not even as a dead letter.
While Redis is being rebuilt a person not found may be known: the batch waits (NotYetProjected).
"""
from __future__ import annotations

from dataclasses import dataclass

from domain.identity import derived_event_id
from domain.input_checks import queue_message
from domain.product_events import EventError, EventIn, person_lead_id, product_event_id, tracked
from domain.sealing import kept_properties
from projections.redis_keys import INTACT
from streams import metrics
from streams.batching import NotYetProjected

SOURCE = "queue"


@dataclass
class Queued:
    position: str  # topic/partition/offset
    ts_ms: int
    value: bytes | None


@dataclass
class Taken:
    events: list[tuple[int, dict]]  # (index in the input, product.tracked sealed)
    refused: list[tuple[int, str]]  # (index, reason): dead letters


async def sealed_products(deps, docs: list[dict], keep, now_ms: int) -> list[dict]:
    """The events with every property outside keep(tenant) sealed with the person's data key;
    an event about nobody the brand knows keeps only those (no key seals the rest, nobody could
    erase them)."""
    docs = [d if d["resolved"] else kept_properties("product.tracked", d, keep(d["tenant"])) for d in docs]
    return await deps.sealer().seal([("product.tracked", d) for d in docs], now_ms, keep)


def clear_kept(deps, tenant: str) -> frozenset[str]:
    """The properties the brand keeps clear (triggering.clear_properties)."""
    brand = deps.tenants.tenants.get(tenant)
    return frozenset(brand.triggering.clear_properties) if brand else frozenset()


async def take_queued(deps, items: list[Queued], now_ms: int) -> Taken:
    parsed, refused = [], []
    for i, item in enumerate(items):
        try:
            tenant, ev = queue_message(item.value, "event", EventIn, deps.tenants.tenants)
            parsed.append((i, tenant, ev, person_lead_id(ev, tenant.id, tenant.validation.default_region,
                                                         deps.lead_ids)))
        except EventError as exc:
            refused.append((i, f"invalid event: {exc.field}: {exc}"))
        except ValueError as exc:
            refused.append((i, str(exc)))
    known = await deps.leads.get_many([(t.id, lead) for _, t, _, lead in parsed])
    unknown = [p for p, state in zip(parsed, known) if state is None]
    if unknown and not await deps.redis.exists(INTACT):
        raise NotYetProjected("Redis is being rebuilt: whether these people are known cannot be told yet")
    gone = await deps.do_not_contact().erased([(t.id, lead) for _, t, _, lead in unknown])
    erased = {p[0] for p, g in zip(unknown, gone) if g}
    strangers = {p[0] for p in unknown} - erased
    docs = []
    for i, tenant, ev, lead in parsed:
        if i in erased:  # counted, never written
            metrics.PRODUCT_EVENTS_REFUSED.labels(tenant.id, "do_not_contact").inc()
            continue
        if i in strangers and tenant.triggering.unknown_person == "reject":
            refused.append((i, "unknown person: no lead of this tenant is the person named (the tenant may record "
                               "such events instead: triggering.unknown_person)"))
            continue
        item = items[i]
        event_id = product_event_id(tenant.id, ev.idempotency_key,
                                    derived_event_id(item.position, "product.tracked", item.ts_ms))
        try:
            doc = tracked(ev, tenant.id, lead, i not in strangers, event_id, item.ts_ms,
                          tenant.triggering.max_property_bytes, SOURCE)
        except EventError as exc:
            refused.append((i, f"invalid event: {exc.field}: {exc}"))
            continue
        docs.append((i, doc))
    sealed = await sealed_products(deps, [d for _, d in docs], lambda t: clear_kept(deps, t), now_ms)
    return Taken([(i, d) for (i, _), d in zip(docs, sealed)], sorted(refused))

