"""Redis read models: each lead's state, and the suppression sets.

Key families (all bounded: one per lead, or one per tenant):
  ls:lead:{tenant}:{lead_id}   JSON of domain.intake.LeadState (the read model; no TTL)
  ls:block                     global blocklist: addresses and "@domain" entries
  ls:optout:{tenant}           the tenant's opt-outs (addresses)
  ls:srccap:{tenant}:{list}:{partner}:{yyyymmdd}  leads a partner brought to a capped list that UTC day
"""
from __future__ import annotations

from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from domain.intake import LeadState
from projections.redis_consent import withdrawn_key

BLOCK = "ls:block"


def lead_key(tenant: str, lead_id: str) -> str:
    return f"ls:lead:{tenant}:{lead_id}"


def optout_key(tenant: str) -> str:
    return f"ls:optout:{tenant}"


def source_cap_key(key: tuple[str, str, str, str]) -> str:
    tenant, list_name, partner, day = key
    return f"ls:srccap:{tenant}:{list_name}:{partner}:{day}"


SOURCE_CAP_TTL_S = 2 * 24 * 3600


@dataclass
class Lookup:
    """What the intake needs to know about one submission."""

    state: LeadState | None
    blocklisted: bool
    opted_out: bool
    consent_withdrawn: bool = False  # asked for by the sender only (with_consent)


class LeadStore:
    def __init__(self, client: aioredis.Redis):
        self.r = client

    async def lookup(self, items: list[tuple[str, str, list[str]]], with_consent: bool = False) -> list[Lookup]:
        """For each (tenant, lead_id, suppression keys): state and suppression (and, with_consent,
        whether the lead withdrew their marketing consent: projections/redis_consent.py).
        A handful of commands per batch (one MGET, one SMISMEMBER per set), not per lead."""
        if not items:
            return []
        pipe = self.r.pipeline(transaction=False)
        pipe.mget([lead_key(t, lid) for t, lid, _ in items])
        flat = [k for _, _, keys in items for k in keys]
        pipe.smismember(BLOCK, flat)
        by_tenant: dict[str, list[int]] = {}
        for i, (tenant, _, _) in enumerate(items):
            by_tenant.setdefault(tenant, []).append(i)
        for tenant, idx in by_tenant.items():
            pipe.smismember(optout_key(tenant), [items[i][2][0] for i in idx])
        if with_consent:
            for tenant, idx in by_tenant.items():
                pipe.smismember(withdrawn_key(tenant), [items[i][1] for i in idx])
        raw_states, blocked, *sets = await pipe.execute()
        opted, withdrawn = [False] * len(items), [False] * len(items)
        for flags_of, out_flags in ((sets[:len(by_tenant)], opted), (sets[len(by_tenant):], withdrawn)):
            for idx, flags in zip(by_tenant.values(), flags_of):
                for i, f in zip(idx, flags):
                    out_flags[i] = bool(f)
        out, pos = [], 0
        for i, (_, _, keys) in enumerate(items):
            raw = raw_states[i]
            state = LeadState.from_dict(orjson.loads(raw)) if raw else None
            out.append(Lookup(state, any(blocked[pos:pos + len(keys)]), opted[i], withdrawn[i]))
            pos += len(keys)
        return out

    async def source_counts(self, keys: list[tuple[str, str, str, str]]) -> list[int]:
        """Leads each (tenant, list, partner, day) brought to its capped list so far (one MGET)."""
        if not keys:
            return []
        return [int(v or 0) for v in await self.r.mget([source_cap_key(k) for k in keys])]

    async def save(self, states: list[LeadState], optouts: list[tuple[str, str]] = (),
                   optins: list[tuple[str, str]] = (), counted: dict | None = None) -> None:
        """Write the states, new opt-outs and withdrawn ones, and the per-source counts of capped
        lists, atomically (MULTI/EXEC): a whole batch or none."""
        if not states and not optouts and not optins and not counted:
            return
        pipe = self.r.pipeline(transaction=True)
        for key, n in (counted or {}).items():
            pipe.incrby(source_cap_key(key), n)
            pipe.expire(source_cap_key(key), SOURCE_CAP_TTL_S)
        if states:
            pipe.mset({lead_key(s.tenant, s.lead_id): orjson.dumps(s) for s in states})
        for tenant, address in optouts:
            pipe.sadd(optout_key(tenant), address)
        for tenant, address in optins:
            pipe.srem(optout_key(tenant), address)
        await pipe.execute()

    async def get_many(self, keys: list[tuple[str, str]]) -> list[LeadState | None]:
        """The states of these (tenant, lead_id), one MGET."""
        if not keys:
            return []
        raws = await self.r.mget([lead_key(t, lid) for t, lid in keys])
        return [LeadState.from_dict(orjson.loads(raw)) if raw else None for raw in raws]

    async def get(self, tenant: str, lead_id: str) -> LeadState | None:
        raw = await self.r.get(lead_key(tenant, lead_id))
        return LeadState.from_dict(orjson.loads(raw)) if raw else None

    async def sync_blocklist(self, entries: list[str]) -> None:
        """Make ls:block hold exactly these entries."""
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(BLOCK)
        if entries:
            pipe.sadd(BLOCK, *entries)
        await pipe.execute()

    async def add_optouts(self, tenant: str, addresses: list[str]) -> None:
        if addresses:
            await self.r.sadd(optout_key(tenant), *addresses)
