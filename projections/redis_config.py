"""Claims on entity versions: two writers (API processes, an import) can never both write version
n of the same entity. A claim is SET NX with a short TTL: a writer that dies mid-change blocks
that entity for at most CLAIM_TTL_S."""
from __future__ import annotations

import redis.asyncio as aioredis

CLAIM_TTL_S = 30


class ConfigClaims:
    """ls:cfgclaim:{config topic}:{entity_key}:{version} -> the writer, for CLAIM_TTL_S."""

    def __init__(self, redis: aioredis.Redis, topic: str):
        self.redis, self.topic = redis, topic  # the topic: private platforms have configurations of their own

    def _key(self, entity_key: str, version: int) -> str:
        return f"ls:cfgclaim:{self.topic}:{entity_key}:{version}"

    async def claim(self, wanted: list[tuple[str, int]], owner: str) -> list[tuple[str, int]]:
        """Claim every (entity key, version) or none; returns the ones someone else holds."""
        if not wanted:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for key, version in wanted:
            pipe.set(self._key(key, version), owner, nx=True, ex=CLAIM_TTL_S)
        got = await pipe.execute()
        taken = [w for w, ok in zip(wanted, got) if not ok]
        if taken:
            await self.release([w for w, ok in zip(wanted, got) if ok])
        return taken

    async def release(self, held: list[tuple[str, int]]) -> None:
        """Give claims back (the change was not written)."""
        if held:
            await self.redis.delete(*[self._key(k, v) for k, v in held])
