"""Nothing written about an erased person after their erasure. An event about them that reaches
an agent after it (a click on an old message, a provider's late bounce, a product event or a
lead event that was still in an agent's backlog) stays on its topic (nothing is lost), but the
agents that decide, plan, follow or remember leave it out (counted in
leadstream_erased_events_left_out_total), and the analytics agent writes its row as the erasure
left their others: under the erasure's anonymous id, with no personal field (counted, not named).
"""
from __future__ import annotations

import os

from domain.erasure import anonymous_id
from streams import metrics


async def erased_flags(deps, events: list[dict]) -> list[bool]:
    """Whether each event is about an erased lead (one SMISMEMBER per tenant); an event without
    a lead id never is."""
    keyed = [i for i, ev in enumerate(events) if ev.get("lead_id")]
    found = await deps.do_not_contact().erased([(events[i]["tenant"], events[i]["lead_id"]) for i in keyed])
    out = [False] * len(events)
    for i, erased in zip(keyed, found):
        out[i] = erased
    return out


async def without_erased(deps, items: list[tuple], agent: str) -> list[tuple]:
    """(name, event, ...) items without those about an erased lead."""
    flags = await erased_flags(deps, [item[1] for item in items])
    left_out = sum(flags)
    if left_out:
        metrics.ERASED_LEFT_OUT.labels(agent).inc(left_out)
    return [item for item, erased in zip(items, flags) if not erased]


async def anonymous_ids(deps, events: list[dict]) -> list[str | None]:
    """For each event: None when it is not about an erased lead, else the anonymous id their
    rows carry (the erasure's; one made up per lead for an erasure that kept none)."""
    keyed = [i for i, ev in enumerate(events) if ev.get("lead_id")]
    found = await deps.do_not_contact().erased_as([(events[i]["tenant"], events[i]["lead_id"]) for i in keyed])
    out: list[str | None] = [None] * len(events)
    made: dict[tuple[str, str], str] = {}
    for i, anon in zip(keyed, found):
        if anon == "":
            anon = made.setdefault((events[i]["tenant"], events[i]["lead_id"]), anonymous_id(os.urandom(12)))
        out[i] = anon
    return out
