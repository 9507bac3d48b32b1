"""The schedule in Redis: one sorted set per tenant, member "lead_id|list", score = the next
due instant (UTC ms). The planner takes what is due, emits the requests, then moves each
member on to its following instant.

Key families (see projections/redis_keys.py):
  ls:due:{tenant}        the schedule (one member per lead and list: bounded per lead)
  ls:planlock:{tenant}   a planning pass's lock (TTL)
"""
from __future__ import annotations

import redis.asyncio as aioredis

LOCK_TTL_MS = 60_000


def due_key(tenant: str) -> str:
    return f"ls:due:{tenant}"


def lock_key(tenant: str) -> str:
    return f"ls:planlock:{tenant}"


class Schedule:
    """The planner's sorted sets, in pipelined round trips."""

    def __init__(self, r: aioredis.Redis):
        self.r = r

    async def set_entries(self, tenant_entries: list[tuple[str, list[tuple[str, int]], list[str]]],
                          only_later: bool = True) -> None:
        """For each (tenant, [(member, due)], [members to drop]): add or move (by default never
        back in time: a redelivered acceptance must not re-schedule a send already made) and
        drop. only_later=False sets the instants as given (a lead's new cadence may come sooner)."""
        if not any(entries or drop for _, entries, drop in tenant_entries):
            return
        pipe = self.r.pipeline(transaction=False)
        for tenant, entries, drop in tenant_entries:
            if entries:
                pipe.zadd(due_key(tenant), dict(entries), gt=only_later)
            if drop:
                pipe.zrem(due_key(tenant), *drop)
        await pipe.execute()

    async def members_of(self, tenant: str, lead_id: str, lists: list[str]) -> list[str]:
        """Which of the lead's members are in the schedule."""
        keys = [f"{lead_id}|{n}" for n in lists]
        if not keys:
            return []
        scores = await self.r.zmscore(due_key(tenant), keys)
        return [k for k, s in zip(keys, scores) if s is not None]

    async def due(self, tenant: str, now_ms: int, limit: int) -> list[tuple[str, int]]:
        """Members due at or before now, oldest first."""
        rows = await self.r.zrangebyscore(due_key(tenant), "-inf", now_ms, start=0, num=limit,
                                          withscores=True)
        return [(m.decode(), int(s)) for m, s in rows]

    async def move_on(self, tenant: str, following: list[tuple[str, int]], drop: list[str]) -> None:
        """After the requests are in Kafka: each member to its next instant, or out."""
        await self.set_entries([(tenant, following, drop)])

    async def lock(self, tenant: str, owner: str) -> bool:
        """Only one planning pass per tenant at a time, across every planner worker."""
        return bool(await self.r.set(lock_key(tenant), owner, nx=True, px=LOCK_TTL_MS))

    async def unlock(self, tenant: str, owner: str) -> None:
        if (await self.r.get(lock_key(tenant))) == owner.encode():
            await self.r.delete(lock_key(tenant))

    async def size(self, tenant: str) -> int:
        return await self.r.zcard(due_key(tenant))
