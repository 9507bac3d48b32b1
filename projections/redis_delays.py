"""A durable delay queue in Redis: items wait until their due time, then one worker claims them.

  {queue}            sorted set: item id -> when it is due (or, while claimed, when the claim runs out)
  {prefix}{item id}  the item's payload, kept until it is settled

Scheduling an id again replaces its payload and due time (idempotent). A claim pushes the item
to now + lease in one Lua step, so two workers never claim it together, and one that dies after
claiming lets it come back when the lease runs out: nothing is lost; whoever acts on an item
must make doing it twice harmless (the platform's send ids do).
"""
from __future__ import annotations

import redis.asyncio as aioredis

_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(due) do
  redis.call('ZADD', KEYS[1], tonumber(ARGV[2]), id)
  table.insert(out, id)
  table.insert(out, redis.call('GET', ARGV[4] .. id) or '')
end
return out
"""


class DelayQueue:
    def __init__(self, r: aioredis.Redis, queue: str, prefix: str, ttl_s: int):
        self.r, self.queue, self.prefix, self.ttl_s = r, queue, prefix, ttl_s
        self._claim = r.register_script(_CLAIM)

    async def schedule(self, items: list[tuple[str, int, bytes]]) -> None:
        """(id, due ms, payload) items."""
        if not items:
            return
        pipe = self.r.pipeline(transaction=True)
        for ident, due, payload in items:
            pipe.set(self.prefix + ident, payload, ex=self.ttl_s)
            pipe.zadd(self.queue, {ident: due})
        await pipe.execute()

    async def claim_due(self, now_ms: int, lease_ms: int, limit: int = 500) -> list[tuple[str, bytes | None]]:
        """Due items, claimed until now + lease_ms: (id, payload or None when it was lost)."""
        flat = await self._claim(keys=[self.queue], args=[now_ms, now_ms + lease_ms, limit, self.prefix])
        return [(flat[i].decode(), flat[i + 1] or None) for i in range(0, len(flat), 2)]

    async def settle(self, ids: list[str]) -> None:
        """Items done with."""
        if not ids:
            return
        pipe = self.r.pipeline(transaction=True)
        pipe.zrem(self.queue, *ids)
        pipe.delete(*[self.prefix + i for i in ids])
        await pipe.execute()

    async def pending(self) -> int:
        return await self.r.zcard(self.queue)

    async def next_due(self) -> int | None:
        first = await self.r.zrange(self.queue, 0, 0, withscores=True)
        return int(first[0][1]) if first else None
