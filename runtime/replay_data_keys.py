"""Leads' wrapped data keys rebuilt from the compacted privacy.keys topic (part of
`runtime.replay --redis`): the latest record of each tenant/lead, a tombstone meaning erased.
Keys still pending in Redis were never used (a key is durable on the topic before any field is
sealed with it), so the rebuild starts from an empty hash.
"""
from __future__ import annotations

from typing import Callable

from domain.sealing import SealError, has_sealed, key_aad, open_readable, parse_key_ring, unwrap
from projections.redis_data_keys import DURABLE, stored
from runtime.compacted import latest_per_key
from runtime.replay_forget import forget
from streams.topics import DATA_KEYS

CHUNK = 5000


PREFIXES = ("ls:dek:",)


async def rebuild_data_keys(deps, read_topics: Callable, tick: Callable[[str, int, int], None],
                            forgotten: bool = False) -> dict:
    r = deps.redis
    if not forgotten:
        await forget(r, PREFIXES)
    latest, bad = latest_per_key(deps, read_topics, DATA_KEYS, tick, "data keys")  # None: erased
    by_tenant: dict[str, dict[str, str]] = {}
    for ev in latest.values():
        if ev is not None:
            by_tenant.setdefault(ev["tenant"], {})[ev["lead_id"]] = stored(DURABLE, ev["wrapped"])
    for tenant, mapping in by_tenant.items():
        items = list(mapping.items())
        for i in range(0, len(items), CHUNK):
            await r.hset(f"ls:dek:{tenant}", mapping=dict(items[i:i + CHUNK]))
    kept = sum(len(m) for m in by_tenant.values())
    return {"data_keys": kept, "data_keys_erased": len(latest) - kept - bad, "data_keys_undecodable": bad}


class TopicKeys:
    """Leads' data keys as the privacy.keys topic holds them now, unwrapped on first need: the
    replay opens the sealed fields of the events it folds with them (an erased lead's read None)."""

    def __init__(self, latest: dict, ring_text: str):
        _, self.ring = parse_key_ring(ring_text)
        self.wrapped = {(ev["tenant"], ev["lead_id"]): ev["wrapped"] for ev in latest.values() if ev is not None}
        self.deks: dict[tuple[str, str], bytes | None] = {}

    def dek(self, tenant: str, lead: str) -> bytes | None:
        k = (tenant, lead)
        if k not in self.deks:
            w = self.wrapped.get(k)
            try:
                self.deks[k] = unwrap(self.ring, w, key_aad(tenant, lead)) if w else None
            except SealError:
                self.deks[k] = None
        return self.deks[k]

    def open(self, name: str, ev: dict) -> dict:
        if not has_sealed(name, ev):
            return ev
        return open_readable(name, ev, self.dek(ev["tenant"], ev["lead_id"]))[0]


def topic_keys(deps, read_topics: Callable) -> TopicKeys:
    latest, _ = latest_per_key(deps, read_topics, DATA_KEYS, lambda *a: None, "data keys")
    return TopicKeys(latest, deps.settings.kek_ring)
