"""Erased people stay erased through a replay (part of `runtime.replay`): privacy.erasures is read
first; their leads are left out of the folded read models, the do-not-contact lists are rebuilt
from the records, every trace the other rebuilds left (sends, engagement, triggers, links...) is
removed from Redis, and their ClickHouse rows are anonymised again under the same anonymous ids.
"""
from __future__ import annotations

from typing import Callable

from projections.clickhouse_erasure import scrub_leads
from projections.redis_erasure import find_traces, matcher, remove_traces
from runtime.replay_forget import forget
from schemas.codec import DecodeError
from streams.topics import ERASURES

CHUNK = 5000


def read_erasures(deps, read_topics: Callable) -> dict[str, dict[str, dict]]:
    """tenant -> lead id -> its first erasure record (the anonymous id its rows carry), with
    "entries": the do-not-contact entries of all its records (the migration to keyed lead ids
    added one: the entry of the lead's new id)."""
    _, msgs = read_topics(deps, [deps.topic(ERASURES)])
    out: dict[str, dict[str, dict]] = {}
    for _, _, _, value in msgs:
        try:
            _, ev = deps.codec.decode(value or b"")
        except DecodeError:
            continue
        first = out.setdefault(ev["tenant"], {}).setdefault(ev["lead_id"], {**ev, "entries": []})
        if ev["contact_hash"] not in first["entries"]:
            first["entries"].append(ev["contact_hash"])
    return out


def leave_out(erased: dict[str, dict[str, dict]], states: dict, optouts: set) -> int:
    """The folded read models and opt-outs without the erased leads; how many were left out."""
    gone = [k for k in states if k[1] in erased.get(k[0], {})]
    for k in gone:
        optouts.discard((k[0], states.pop(k).address))
    return len(gone)


PREFIXES = ("ls:dnc:", "ls:dncanon:")


async def rebuild_erasures(deps, erased: dict[str, dict[str, dict]], forgotten: bool = False) -> dict:
    r = deps.redis
    if not forgotten:
        await forget(r, PREFIXES)
    dnc = deps.do_not_contact()
    for tenant, leads in erased.items():
        first = {entry: ev["anonymous_id"] for ev in leads.values() for entry in ev["entries"]}
        await dnc.add(tenant, list(first), list(first.values()))
    lead_ids = {lead for leads in erased.values() for lead in leads}
    traces = await find_traces(r, matcher(lead_ids, set())) if lead_ids else []
    await remove_traces(r, traces)
    return {"erased": len(lead_ids), "erased_traces_removed": len(traces)}


def anonymise_erased(deps, client, erased: dict[str, dict[str, dict]]) -> int:
    """The erased leads' rows the replay just wrote, anonymised (the ids of their first erasure)."""
    return sum(scrub_leads(client, deps.settings.clickhouse_database, tenant,
                           {lead: ev["anonymous_id"] for lead, ev in leads.items()})
               for tenant, leads in erased.items())
