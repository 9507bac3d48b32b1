"""Each brand's CRM sync in Redis.

  ls:crm:{tenant}       hash: cursor_ms (the latest modification read), status, error, at_ms,
                        contacts, refused (of the last poll)
  ls:crmlock:{tenant}:{settings}   one poll per interval across workers (TTL: the interval), per
                        version of the brand's CRM settings: changed settings are polled at once
  ls:crmdue:{tenant}    a webhook said something changed: poll at the next tick (TTL: an hour)
"""
from __future__ import annotations

DUE_TTL_S = 3600


def status_key(tenant: str) -> str:
    return f"ls:crm:{tenant}"


class CrmStore:
    def __init__(self, client):
        self.r = client

    async def claim(self, tenant: str, settings: str, owner: str, every_ms: int) -> bool:
        """This poll may run: the interval has passed (or the settings changed since the last
        poll), or a webhook asked for it (then taken)."""
        lock = f"ls:crmlock:{tenant}:{settings}"
        if await self.r.getdel(f"ls:crmdue:{tenant}"):
            await self.r.set(lock, owner, px=every_ms)
            return True
        return bool(await self.r.set(lock, owner, px=every_ms, nx=True))

    async def ask_poll(self, tenant: str) -> None:
        await self.r.set(f"ls:crmdue:{tenant}", "1", ex=DUE_TTL_S)

    async def cursor(self, tenant: str) -> int:
        return int(await self.r.hget(status_key(tenant), "cursor_ms") or 0)

    async def report(self, tenant: str, **fields) -> None:
        """The poll's outcome; the cursor only ever moves forward."""
        cursor = fields.pop("cursor_ms", None)
        pipe = self.r.pipeline(transaction=True)
        if fields:
            pipe.hset(status_key(tenant), mapping={k: str(v) for k, v in fields.items()})
        if cursor is not None:
            pipe.eval("local c = tonumber(redis.call('HGET', KEYS[1], 'cursor_ms') or '0') "
                      "if tonumber(ARGV[1]) > c then redis.call('HSET', KEYS[1], 'cursor_ms', ARGV[1]) end",
                      1, status_key(tenant), str(cursor))
        await pipe.execute()

    async def status(self, tenant: str) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in (await self.r.hgetall(status_key(tenant))).items()}
