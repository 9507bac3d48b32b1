"""Nothing written about an erased person after their erasure. An event about them that reaches
an agent after it (a click on an old message, a provider's late bounce, a product event or a
lead event that was still in an agent's backlog) stays on its topic (nothing is lost), but the
agents that decide, plan, follow or remember leave it out (counted in
leadstream_erased_events_left_out_total), and the analytics agent writes its row as the erasure
left their others: under the erasure's anonymous id, with no personal field (counted, not named).
Its rows written while an erasure ran (checked before it, stored after its scrub) or by a try
that died before its offsets were committed are scrubbed after the write (scrub_rows_of_erased).
"""
from __future__ import annotations

import os

from domain.erasure import anonymous_id
from projections.clickhouse_erasure import scrub_leads
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


async def scrub_rows_of_erased(deps, events: list[dict]) -> int:
    """After a batch's rows are written: the leads of these events erased by now keep no row
    under their own id (an erasure that scrubbed ClickHouse between the batch's look at the list
    and its insert left those rows as they came). Counted first, rewritten only where found;
    returns the rows rewritten."""
    by_tenant: dict[str, dict[str, str]] = {}
    for ev, anon in zip(events, await anonymous_ids(deps, events)):
        if anon is not None:
            by_tenant.setdefault(ev["tenant"], {})[ev["lead_id"]] = anon
    db = deps.settings.clickhouse_database
    return sum([await deps.on_clickhouse(scrub_leads, db, tenant, leads) for tenant, leads in by_tenant.items()])
