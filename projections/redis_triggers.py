"""The trigger engine's state in Redis.

  ls:tev:{tenant}:{lead}            sorted set: the lead's recent events (score = when; member =
                                    {"i": event id, "n": name, "p": properties}), at most 90
                                    days and 500 events (TTL 90 days)
  ls:tfired:{tenant}:{lead}         hash: trigger -> "ms|send_id" of its last message to the lead
  ls:tcap:{tenant}:{lead}:{day}     set: send ids of triggered messages on the lead's local day (TTL 8 days)
  ls:timers                         sorted set: send id -> when it is due (or, while claimed,
                                    when the claim runs out)
  ls:timer:{send_id}                the pending action (JSON), kept until it is settled

A member is the event id with its properties (sorted keys), so a redelivered event is the same
member: counting it again changes nothing. Reserving a message (cooldown and caps checked and
taken in one Lua step) is idempotent per send id: the same firing, retried after a crash,
passes again; another firing of the trigger within the cooldown does not.
"""
from __future__ import annotations

import orjson
import redis.asyncio as aioredis

from projections.redis_delays import DelayQueue
from projections.redis_engagement import eng_key

EVENTS_TTL_S = 90 * 86_400
MAX_EVENTS = 500
CAP_TTL_S = 8 * 86_400
TIMER_TTL_S = 200 * 86_400  # a pending action outlives its longest wait (90-day window + 30-day delay)
TIMERS = "ls:timers"


def events_key(tenant: str, lead_id: str) -> str:
    return f"ls:tev:{tenant}:{lead_id}"


def fired_key(tenant: str, lead_id: str) -> str:
    return f"ls:tfired:{tenant}:{lead_id}"


def cap_key(tenant: str, lead_id: str, day: str) -> str:
    return f"ls:tcap:{tenant}:{lead_id}:{day}"


_RESERVE = """
local trigger, send_id, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local cooldown, per_day, per_week, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local prev = redis.call('HGET', KEYS[1], trigger)
if prev then
  local sep = string.find(prev, '|', 1, true)
  local at, sid = tonumber(string.sub(prev, 1, sep - 1)), string.sub(prev, sep + 1)
  if sid == send_id then return 'ok' end
  if now - at < cooldown then return 'cooldown' end
end
local today = redis.call('SCARD', KEYS[2])
if today >= per_day then return 'capped_day' end
local week = today
for i = 3, #KEYS do week = week + redis.call('SCARD', KEYS[i]) end
if week >= per_week then return 'capped_week' end
redis.call('HSET', KEYS[1], trigger, ARGV[3] .. '|' .. send_id)
redis.call('SADD', KEYS[2], send_id)
redis.call('EXPIRE', KEYS[2], ttl)
return 'ok'
"""

# KEYS: history keys; ARGV[1]: seconds to live; ARGV[2]: events kept; then per key: event count,
# the newest time that fell out of the window (ms), score, member, ... Each key: the events added, what fell out of the
# window or beyond the count removed, its lifetime renewed. One call per chunk of keys (a
# pipeline of four commands per event and key cost ~10 µs of client work each)
_REMEMBER = """
local ttl, keep, a = ARGV[1], tonumber(ARGV[2]), 3
for i = 1, #KEYS do
  local n, gone = tonumber(ARGV[a]), ARGV[a + 1]
  local s, e = a + 2, a + 1 + 2 * n
  while s <= e do  -- unpack is limited to a few thousand values at once; 2000 keeps the pairs whole
    local t = math.min(s + 1999, e)
    redis.call('ZADD', KEYS[i], unpack(ARGV, s, t))
    s = t + 1
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', gone)
  redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -keep - 1)
  redis.call('EXPIRE', KEYS[i], ttl)
  a = e + 1
end
return #KEYS
"""
REMEMBER_CHUNK = 1000


class TriggerStore:
    def __init__(self, r: aioredis.Redis):
        self.r = r
        self._reserve = r.register_script(_RESERVE)
        self._remember = r.register_script(_REMEMBER)
        self.timers = DelayQueue(r, TIMERS, "ls:timer:", TIMER_TTL_S)

    async def remember(self, items: list[tuple[str, str, int, str, str, dict]]) -> None:
        """(tenant, lead, at, event id, name, properties) events, added to each lead's history."""
        by_key: dict[str, tuple[list, list[int]]] = {}  # key -> (score, member, ...; [newest])
        for tenant, lead, at, event_id, name, props in items:
            key = events_key(tenant, lead)
            member = orjson.dumps({"i": event_id, "n": name, "p": props}, option=orjson.OPT_SORT_KEYS)
            pairs, newest = by_key.setdefault(key, ([], [at]))
            pairs += (at, member)
            newest[0] = max(newest[0], at)
        keys = list(by_key)
        for i in range(0, len(keys), REMEMBER_CHUNK):
            args: list = [EVENTS_TTL_S, MAX_EVENTS]
            for key in keys[i:i + REMEMBER_CHUNK]:
                pairs, newest = by_key[key]
                args += [len(pairs) // 2, newest[0] - EVENTS_TTL_S * 1000, *pairs]
            await self._remember(keys=keys[i:i + REMEMBER_CHUNK], args=args)

    async def histories(self, keys: list[tuple[str, str]], since_ms: int) -> list[list[tuple[int, str, str, dict]]]:
        """Each lead's events since since_ms: (at, event id, name, properties), oldest first."""
        if not keys:
            return []
        pipe = self.r.pipeline(transaction=False)
        for tenant, lead in keys:
            pipe.zrangebyscore(events_key(tenant, lead), since_ms, "+inf", withscores=True)
        out = []
        for found in await pipe.execute():
            rows = []
            for member, score in found:
                doc = orjson.loads(member)
                rows.append((int(score), doc["i"], doc["n"], doc["p"]))
            out.append(rows)
        return out

    async def fired(self, keys: list[tuple[str, str]]) -> list[dict[str, int]]:
        """Each lead's triggers and when each last sent."""
        if not keys:
            return []
        pipe = self.r.pipeline(transaction=False)
        for tenant, lead in keys:
            pipe.hgetall(fired_key(tenant, lead))
        return [{k.decode(): int(v.split(b"|", 1)[0]) for k, v in found.items()} for found in await pipe.execute()]

    async def reserve_many(self, items: list[tuple[str, str, str, str, int, int, list[str], int, int]]) -> list[str]:
        """For each (tenant, lead, trigger, send id, now, cooldown ms, the lead's local days of the
        week, per day, per week): 'ok' (the message may go: recorded), or 'cooldown' /
        'capped_day' / 'capped_week'. One round trip; Redis runs them in order, so a lead's
        second message in the list sees its first."""
        if not items:
            return []
        pipe = self.r.pipeline(transaction=False)
        for tenant, lead, trigger, send_id, now_ms, cooldown_ms, days, per_day, per_week in items:
            keys = [fired_key(tenant, lead)] + [cap_key(tenant, lead, d) for d in days]
            await self._reserve(keys=keys, args=[trigger, send_id, now_ms, cooldown_ms, per_day, per_week, CAP_TTL_S],
                                client=pipe)
        return [a.decode() if isinstance(a, bytes) else a for a in await pipe.execute()]

    async def schedule(self, timers: list[tuple[str, int, dict]]) -> None:
        """(send id, due, action) timers; scheduling one again changes nothing but its due time."""
        await self.timers.schedule([(sid, due, orjson.dumps(action)) for sid, due, action in timers])

    async def claim_due(self, now_ms: int, lease_ms: int, limit: int = 500) -> list[tuple[str, dict | None]]:
        """Due timers, claimed until now + lease_ms: (send id, action)."""
        return [(sid, orjson.loads(raw) if raw else None)
                for sid, raw in await self.timers.claim_due(now_ms, lease_ms, limit)]

    async def settle(self, send_ids: list[str]) -> None:
        """Timers done with (fired, suppressed or cancelled)."""
        await self.timers.settle(send_ids)

    async def scores(self, keys: list[tuple[str, str]]) -> list[float]:
        """Each lead's engagement score (people's clicks weigh three opens; see redis_engagement)."""
        if not keys:
            return []
        pipe = self.r.pipeline(transaction=False)
        for tenant, lead in keys:
            pipe.hget(eng_key(tenant, lead), "score")
        return [float(v or 0) for v in await pipe.execute()]

    async def lease(self, name: str, ms: int) -> bool:
        """True for the one caller that takes the lease (a query segment's refresh) until it runs out."""
        return bool(await self.r.set(f"ls:segrefresh:{name}", b"1", nx=True, px=ms))
