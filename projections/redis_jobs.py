"""Jobs in Redis: every live job of a tenant, and a version that moves on every change, so
senders rebuild their in-memory match index only when something changed.

Key families (projections/redis_keys.py):
  ls:jobs:{tenant}          hash job_key -> job JSON (bounded by the tenant's live jobs)
  ls:jobsver:{tenant}       the version counter
  ls:feed:{tenant}:{name}   a feed's last poll: ok/error, when, how many jobs, ETag
  ls:feedlock:{tenant}:{name}  one poller per feed at a time (TTL)
"""
from __future__ import annotations

import orjson
import redis.asyncio as aioredis

from domain.jobs import Job, job_from_dict, job_to_dict


class JobStore:
    def __init__(self, r: aioredis.Redis):
        self.r = r

    async def apply(self, changes: list[tuple[str, str, Job | None]]) -> None:
        """(tenant, job_key, job or None for expired): upsert or remove, bump the versions."""
        if not changes:
            return
        pipe = self.r.pipeline(transaction=True)
        for tenant, key, job in changes:
            if job is None:
                pipe.hdel(f"ls:jobs:{tenant}", key)
            else:
                pipe.hset(f"ls:jobs:{tenant}", key, orjson.dumps(job_to_dict(job)))
        for tenant in {t for t, _, _ in changes}:
            pipe.incr(f"ls:jobsver:{tenant}")
        await pipe.execute()

    async def version(self, tenant: str) -> int:
        return int(await self.r.get(f"ls:jobsver:{tenant}") or 0)

    async def load(self, tenant: str) -> dict[str, Job]:
        """Every live job of the tenant, by key."""
        raw = await self.r.hgetall(f"ls:jobs:{tenant}")
        return {k.decode(): job_from_dict(orjson.loads(v)) for k, v in raw.items()}

    async def get_many(self, tenant: str, keys: list[str]) -> list[Job | None]:
        """The tenant's jobs by key, None where a job is gone (expired since)."""
        if not keys:
            return []
        raw = await self.r.hmget(f"ls:jobs:{tenant}", keys)
        return [job_from_dict(orjson.loads(v)) if v else None for v in raw]

    async def feed_status(self, tenant: str, name: str) -> dict:
        raw = await self.r.hgetall(f"ls:feed:{tenant}:{name}")
        return {k.decode(): v.decode() for k, v in raw.items()}

    async def set_feed_status(self, tenant: str, name: str, **fields) -> None:
        await self.r.hset(f"ls:feed:{tenant}:{name}", mapping={k: str(v) for k, v in fields.items()})

    async def lock_feed(self, tenant: str, name: str, owner: str, ttl_ms: int) -> bool:
        return bool(await self.r.set(f"ls:feedlock:{tenant}:{name}", owner, nx=True, px=ttl_ms))
