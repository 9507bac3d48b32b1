"""Redis read models: each lead's state, and the suppression sets.

Key families (all bounded: one per lead, or one per tenant):
  ls:lead:{tenant}:{lead_id}   JSON of domain.intake.LeadState (the read model; no TTL)
  ls:block                     global blocklist: addresses and "@domain" entries
  ls:optout:{tenant}           the tenant's opt-outs (addresses)
"""
from __future__ import annotations

from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from domain.intake import LeadState

BLOCK = "ls:block"


def lead_key(tenant: str, lead_id: str) -> str:
    return f"ls:lead:{tenant}:{lead_id}"


def optout_key(tenant: str) -> str:
    return f"ls:optout:{tenant}"


@dataclass
class Lookup:
    """What the intake needs to know about one submission."""

    state: LeadState | None
    blocklisted: bool
    opted_out: bool


class LeadStore:
    def __init__(self, client: aioredis.Redis):
        self.r = client

    async def lookup(self, items: list[tuple[str, str, list[str]]]) -> list[Lookup]:
        """For each (tenant, lead_id, suppression keys): state and suppression, one round trip."""
        pipe = self.r.pipeline(transaction=False)
        for tenant, lead_id, keys in items:
            pipe.get(lead_key(tenant, lead_id))
            pipe.smismember(BLOCK, keys)
            pipe.sismember(optout_key(tenant), keys[0])
        res = await pipe.execute()
        out = []
        for i in range(0, len(res), 3):
            raw, blocked, opted = res[i], res[i + 1], res[i + 2]
            state = LeadState.from_dict(orjson.loads(raw)) if raw else None
            out.append(Lookup(state, any(blocked), bool(opted)))
        return out

    async def save(self, states: list[LeadState], optouts: list[tuple[str, str]] = ()) -> None:
        """Write the states and new opt-outs atomically (MULTI/EXEC): a whole batch or none."""
        if not states and not optouts:
            return
        pipe = self.r.pipeline(transaction=True)
        for s in states:
            pipe.set(lead_key(s.tenant, s.lead_id), orjson.dumps(s.to_dict()))
        for tenant, address in optouts:
            pipe.sadd(optout_key(tenant), address)
        await pipe.execute()

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
