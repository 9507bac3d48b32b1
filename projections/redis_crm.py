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


# --- two-way fields and the write-back --------------------------------------------------------
#   ls:crmf:{tenant}:{lead}  hash, one per lead the CRM sync knows: id (the contact's), h:{prop} (the
#                            field's register: domain.crm_fields.Held), s:{prop} (what the CRM holds,
#                            to our knowledge), w:{prop} (what we last wrote), e:last_open, e:last_click,
#                            e:last_conversion (ms), c:{event id} (a conversion counted)
#   ls:crmout:{tenant}       sorted set: leads whose CRM properties may have changed -> when marked (µs, Redis's clock)
#   ls:crmrate:{tenant}:{w}  the write-back's requests in one 10 s window (TTL 20 s)
#   ls:crmclear:{tenant}     set: contact ids of erased people whose properties are still to be emptied
RATE_WINDOW_MS = 10_000

_MAX = """
for i = 1, #KEYS do
  local cur = tonumber(redis.call('HGET', KEYS[i], ARGV[2 * i - 1]) or '0')
  if tonumber(ARGV[2 * i]) > cur then redis.call('HSET', KEYS[i], ARGV[2 * i - 1], ARGV[2 * i]) end
end
"""
_MARK = """
local t = redis.call('TIME')
local now = string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2]))
for i = 1, #ARGV do redis.call('ZADD', KEYS[1], 'GT', now, ARGV[i]) end
"""
SETTLE_US = 3_000_000
# remove an outbox entry only if nothing marked it again since it was read
_DONE = """
for i = 1, #ARGV, 2 do
  if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[i]) or '-1') == tonumber(ARGV[i + 1]) then
    redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
"""


def fields_key(tenant: str, lead_id: str) -> str:
    return f"ls:crmf:{tenant}:{lead_id}"


def outbox_key(tenant: str) -> str:
    return f"ls:crmout:{tenant}"


def clear_key(tenant: str) -> str:
    return f"ls:crmclear:{tenant}"


class CrmFields:
    def __init__(self, client):
        self.r = client
        self._max = client.register_script(_MAX)
        self._done = client.register_script(_DONE)
        self._mark = client.register_script(_MARK)

    async def of(self, tenant: str, lead_ids: list[str]) -> list[dict[str, str]]:
        pipe = self.r.pipeline(transaction=False)
        for lid in lead_ids:
            pipe.hgetall(fields_key(tenant, lid))
        return [{k.decode(): v.decode() for k, v in got.items()} for got in await pipe.execute()]

    async def put(self, tenant: str, changes: dict[str, dict[str, str]]) -> None:
        """lead id -> fields to set."""
        pipe = self.r.pipeline(transaction=False)
        for lid, fields in changes.items():
            if fields:
                pipe.hset(fields_key(tenant, lid), mapping=fields)
        await pipe.execute()

    async def raise_to(self, items: list[tuple[str, str, str, int]]) -> None:
        """(tenant, lead, field, ms): each field moved only forward."""
        if items:
            await self._max(keys=[fields_key(t, lid) for t, lid, _, _ in items],
                            args=[a for _, _, f, ms in items for a in (f, str(ms))])

    async def mark(self, items: list[tuple[str, str]]) -> None:
        """(tenant, lead): these leads' properties are to be written. The score is Redis's own time
        in µs (one clock for every process), so a lead marked again while a write-back is under
        way has a newer score and stays due (done())."""
        by_tenant: dict[str, list[str]] = {}
        for t, lid in items:
            by_tenant.setdefault(t, []).append(lid)
        for t, lids in by_tenant.items():
            await self._mark(keys=[outbox_key(t)], args=lids)

    async def due(self, tenant: str, limit: int, settle_us: int = SETTLE_US) -> list[tuple[str, float]]:
        """The leads marked at least `settle_us` ago (the projections their events also feed,
        written just after the events, have landed), oldest first."""
        sec, us = await self.r.time()
        before = sec * 1_000_000 + us - settle_us
        got = await self.r.zrangebyscore(outbox_key(tenant), "-inf", before, start=0, num=limit, withscores=True)
        return [(m.decode(), s) for m, s in got]

    async def done(self, tenant: str, entries: list[tuple[str, float]]) -> None:
        if entries:
            await self._done(keys=[outbox_key(tenant)], args=[a for lid, s in entries for a in (lid, str(int(s)))])

    async def owe_clearing(self, tenant: str, contact_ids: list[str]) -> None:
        """Contacts of erased people whose properties the CRM did not take emptied yet: the crm
        agent empties them at its next ticks (contact ids only: nothing names the person)."""
        if contact_ids:
            await self.r.sadd(clear_key(tenant), *contact_ids)

    async def owed_clearing(self, tenant: str, limit: int = 1000) -> list[str]:
        return [m.decode() for m in await self.r.srandmember(clear_key(tenant), limit)]

    async def cleared(self, tenant: str, contact_ids: list[str]) -> None:
        if contact_ids:
            await self.r.srem(clear_key(tenant), *contact_ids)

    async def take_requests(self, tenant: str, wanted: int, per_window: int, now_ms: int) -> int:
        """How many of `wanted` requests this 10 s window still allows (taken)."""
        key = f"ls:crmrate:{tenant}:{now_ms // RATE_WINDOW_MS}"
        pipe = self.r.pipeline(transaction=True)
        pipe.incrby(key, wanted)
        pipe.pexpire(key, 2 * RATE_WINDOW_MS)
        used, _ = await pipe.execute()
        allowed = max(0, min(wanted, per_window - (used - wanted)))
        if allowed < wanted:
            await self.r.decrby(key, wanted - allowed)
        return allowed
