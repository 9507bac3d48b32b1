"""Segment membership in Redis: which segments each lead is in, and each segment's members.

ls:seg:{tenant}:{lead} is the set of a lead's segments, ls:segm:{tenant}:{segment} the set of
a segment's members; both change together (MULTI), only through enter/leave, which the
trigger engine applies once its segment.entered / segment.exited are on the topic (a replay
rebuilds them).
"""
from __future__ import annotations

import redis.asyncio as aioredis


def lead_segments_key(tenant: str, lead_id: str) -> str:
    return f"ls:seg:{tenant}:{lead_id}"


def members_key(tenant: str, segment: str) -> str:
    return f"ls:segm:{tenant}:{segment}"


class SegmentStore:
    def __init__(self, r: aioredis.Redis):
        self.r = r

    async def of_leads(self, keys: list[tuple[str, str]]) -> list[list[str]]:
        """Each lead's segments, sorted."""
        if not keys:
            return []
        pipe = self.r.pipeline(transaction=False)
        for tenant, lead_id in keys:
            pipe.smembers(lead_segments_key(tenant, lead_id))
        return [sorted(m.decode() for m in found) for found in await pipe.execute()]

    async def apply(self, changes: list[tuple[str, str, str, bool]]) -> None:
        """(tenant, segment, lead, entered) changes, applied together."""
        if not changes:
            return
        pipe = self.r.pipeline(transaction=True)
        for tenant, segment, lead_id, entered in changes:
            if entered:
                pipe.sadd(lead_segments_key(tenant, lead_id), segment)
                pipe.sadd(members_key(tenant, segment), lead_id)
            else:
                pipe.srem(lead_segments_key(tenant, lead_id), segment)
                pipe.srem(members_key(tenant, segment), lead_id)
        await pipe.execute()

    async def size(self, tenant: str, segment: str) -> int:
        return await self.r.scard(members_key(tenant, segment))

    async def members(self, tenant: str, segment: str, cursor: int = 0, count: int = 100) -> tuple[int, list[str]]:
        """One page of a segment's members (SSCAN: a cursor, 0 when done)."""
        cursor, found = await self.r.sscan(members_key(tenant, segment), cursor, count=count)
        return int(cursor), sorted(m.decode() for m in found)

    async def diff(self, tenant: str, segment: str, members: set[str]) -> tuple[set[str], set[str]]:
        """Who would enter and who would leave if the segment's members became exactly these
        (a query segment's refresh); applied with `apply` once the events are on the topic."""
        now = {m.decode() for m in await self.r.smembers(members_key(tenant, segment))}
        return members - now, now - members
