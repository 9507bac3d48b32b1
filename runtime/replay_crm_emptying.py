"""The CRM emptyings still owed, rebuilt from the compacted privacy.crm_emptying topic (part of
`runtime.replay --redis`): the latest record of each tenant/contact, a tombstone meaning emptied.
Added to what Redis holds (the crm agent may have owed more since the wipe); a contact emptied
since is a tombstone on the topic, so it is not owed again.
"""
from __future__ import annotations

from typing import Callable

from projections.redis_crm import CrmFields
from runtime.compacted import latest_per_key
from streams.topics import CRM_EMPTYING


async def rebuild_crm_emptying(deps, read_topics: Callable, tick: Callable[[str, int, int], None]) -> dict:
    latest, bad = latest_per_key(deps, read_topics, CRM_EMPTYING, tick, "crm emptyings owed")  # None: emptied
    by_tenant: dict[str, list[str]] = {}
    for ev in latest.values():
        if ev is not None:
            by_tenant.setdefault(ev["tenant"], []).append(ev["contact_id"])
    fields = CrmFields(deps.redis)
    for tenant, ids in by_tenant.items():
        await fields.owe_clearing(tenant, ids)
    owed = sum(len(ids) for ids in by_tenant.values())
    return {"crm_emptyings_owed": owed, "crm_emptyings_done": len(latest) - owed - bad,
            "crm_emptyings_undecodable": bad}
