"""Leads' wrapped data keys in Redis, the working copy of the compacted privacy.keys topic.

  ls:dek:{tenant}   hash: lead -> "D|wrapped" (on the topic: durable) or "P|wrapped" (claimed by a
                    process that is writing it to the topic; whoever reads a pending key writes
                    the same record before using it, so no event is ever sealed with a key the
                    topic may not have)

Every write is a compare-and-set on the whole value, so two processes creating a key for the
same lead end with one key, and a rotation never overwrites a key destroyed meanwhile.
"""
from __future__ import annotations

from projections.redis_keys import INTACT

PENDING, DURABLE = "P", "D"


def dek_key(tenant: str) -> str:
    return f"ls:dek:{tenant}"


# KEYS[1] the tenant's hash. ARGV: pairs of (lead, expected, new): set new where the current value
# is expected ("" expects none); "" as new deletes. Returns 1/0 per pair.
_CAS = """
local out = {}
for i = 1, #ARGV, 3 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i]) or ''
  if cur == ARGV[i + 1] then
    if ARGV[i + 2] == '' then redis.call('HDEL', KEYS[1], ARGV[i]) else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2]) end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""


def split(value: bytes | str | None) -> tuple[str, str] | None:
    """(state, wrapped) of a stored value, None for none."""
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else value
    state, _, wrapped = text.partition("|")
    return state, wrapped


class DataKeyStore:
    def __init__(self, client):
        self.r = client
        self._cas = client.register_script(_CAS)

    async def intact(self) -> bool:
        """Whether Redis holds the platform's state (not wiped, or rebuilt by the replay): only
        then does a lead without a key here have none on the topic either."""
        return bool(await self.r.exists(INTACT))

    async def get(self, tenant: str, leads: list[str]) -> list[tuple[str, str] | None]:
        if not leads:
            return []
        return [split(v) for v in await self.r.hmget(dek_key(tenant), leads)]

    async def swap(self, tenant: str, changes: list[tuple[str, str, str]]) -> list[bool]:
        """(lead, expected value or "", new value or "") each: set where still expected."""
        if not changes:
            return []
        args = [x for change in changes for x in change]
        return [bool(x) for x in await self._cas(keys=[dek_key(tenant)], args=args)]

    async def scan(self, tenant: str, count: int = 2000):
        """Every (lead, state, wrapped) of a tenant, in pages."""
        async for lead, value in self.r.hscan_iter(dek_key(tenant), count=count):
            state, wrapped = split(value)
            yield (lead.decode() if isinstance(lead, bytes) else lead), state, wrapped

    async def tenants(self) -> list[str]:
        return sorted({k.decode().split(":", 2)[2] async for k in self.r.scan_iter(match="ls:dek:*", count=1000)})


def stored(state: str, wrapped: str) -> str:
    return f"{state}|{wrapped}"
