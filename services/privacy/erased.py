"""Nothing written about an erased person after their erasure: the agents that decide what
people did (a click on an old message, a provider's late bounce) leave their observations
undecided. The observation stays on its topic (nothing is lost); no event, read model or row
about the person is made from it (counted in leadstream_erased_events_left_out_total)."""
from __future__ import annotations

from streams import metrics


async def left_unerased(deps, items: list[tuple], agent: str) -> list[tuple]:
    """(name, event, tenant) items without those about an erased lead (one SMISMEMBER per tenant)."""
    keyed = [i for i, (_, ev, _) in enumerate(items) if ev.get("lead_id")]
    erased = await deps.do_not_contact().erased([(items[i][1]["tenant"], items[i][1]["lead_id"]) for i in keyed])
    gone = {i for i, e in zip(keyed, erased) if e}
    if gone:
        metrics.ERASED_LEFT_OUT.labels(agent).inc(len(gone))
    return [item for i, item in enumerate(items) if i not in gone]
