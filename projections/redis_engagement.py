"""Engagement state in Redis: per-lead counters, each message's recent clicks, soft bounces,
and the provider-message-id map the webhooks resolve through.

  ls:eng:{tenant}:{lead_id}          hash: human_/machine_ opens and clicks, last_human_ms,
                                     last_human_open_ms, last_human_click_ms, score (one per lead)
  ls:engseen:{event_id}:{revision}   an engagement event already counted (TTL 7 days)
  ls:act:{send_id}                   a message's recent clicks and honeypot time (TTL 1 hour)
  ls:soft:{tenant}:{lead_id}         soft bounces within the window (sorted set, TTL = window)
  ls:pmsg:{provider}:{provider_id}   our send behind a provider's message id (TTL 30 days)
  ls:whfirst:{provider}:{event_id}   when a provider event without a time of its own first came
                                     (Twilio, Esendex, Plivo, Vonage inbound; TTL 7 days, past
                                     every provider's retries): a replay gets the same event id

Counters move only for event ids not yet counted (a Lua script checks and applies in one
step), so a redelivered batch changes nothing.
"""
from __future__ import annotations

import orjson
import redis.asyncio as aioredis

from domain.bots import SendActivity

SEEN_TTL_S = 7 * 24 * 3600
ACTIVITY_TTL_S = 3600
PMSG_TTL_S = 30 * 24 * 3600
FIRST_RECEIVED_TTL_S = 7 * 24 * 3600  # longer than any provider retries (Esendex: 72 h)

_APPLY = """
local updates = cjson.decode(ARGV[1])
local ttl = tonumber(ARGV[2])
local applied = 0
for _, u in ipairs(updates) do
  if redis.call('SET', u.seen, '1', 'NX', 'EX', ttl) then
    applied = applied + 1
    for f, n in pairs(u.inc) do redis.call('HINCRBY', u.key, f, n) end
    for f, v in pairs(u.max) do
      local cur = tonumber(redis.call('HGET', u.key, f) or '0')
      if v > cur then redis.call('HSET', u.key, f, v) end
    end
    -- the score of domain.engagement.score: a person's click weighs three opens, machines nothing
    local clicks = math.max(0, tonumber(redis.call('HGET', u.key, 'human_clicks') or '0'))
    local opens = math.max(0, tonumber(redis.call('HGET', u.key, 'human_opens') or '0'))
    redis.call('HSET', u.key, 'score', 3 * clicks + opens)
  end
end
return applied
"""


def eng_key(tenant: str, lead_id: str) -> str:
    return f"ls:eng:{tenant}:{lead_id}"


class EngagementStore:
    def __init__(self, r: aioredis.Redis):
        self.r = r
        self._apply = r.register_script(_APPLY)

    async def activities(self, send_ids: list[str]) -> dict[str, tuple[SendActivity, dict]]:
        """Each message's recent clicks (for the burst and honeypot rules) and the clicked
        events still inside the burst window (so a burst can revise them)."""
        if not send_ids:
            return {}
        raws = await self.r.mget([f"ls:act:{s}" for s in send_ids])
        out = {}
        for sid, raw in zip(send_ids, raws):
            if raw:
                d = orjson.loads(raw)
                out[sid] = (SendActivity(tuple((c, t) for c, t in d["clicks"]), d["honeypot_at"]), d["recent"])
            else:
                out[sid] = (SendActivity(), {})
        return out

    async def save_activities(self, acts: dict[str, tuple[SendActivity, dict]]) -> None:
        if not acts:
            return
        pipe = self.r.pipeline(transaction=False)
        for sid, (act, recent) in acts.items():
            pipe.set(f"ls:act:{sid}", orjson.dumps({"clicks": act.recent_clicks, "honeypot_at": act.honeypot_at_ms,
                                                      "recent": recent}), ex=ACTIVITY_TTL_S)
        await pipe.execute()

    async def apply(self, updates: list[dict]) -> int:
        """updates: {seen: event_id:revision, key: (tenant, lead_id), inc: {field: n}, max: {field: ms}}.
        Applies those not seen before; returns how many."""
        if not updates:
            return 0
        payload = [{"seen": f"ls:engseen:{u['seen']}", "key": eng_key(*u["key"]),
                    "inc": u["inc"], "max": u["max"]} for u in updates]
        return int(await self._apply(args=[orjson.dumps(payload), SEEN_TTL_S]))

    async def soft_bounces(self, items: list[tuple[str, str, str, int]], window_ms: int) -> list[int]:
        """Record each (tenant, lead_id, event_id, at_ms) soft bounce; for each, how many fall in the window."""
        pipe = self.r.pipeline(transaction=False)
        for tenant, lead, event_id, at in items:
            key = f"ls:soft:{tenant}:{lead}"
            pipe.zadd(key, {event_id: at})
            pipe.zremrangebyscore(key, "-inf", at - window_ms)
            pipe.zcount(key, at - window_ms, at)
            pipe.expire(key, window_ms // 1000 + 1)
        res = await pipe.execute()
        return [int(res[i * 4 + 2]) for i in range(len(items))]

    async def state(self, tenant: str, lead_id: str) -> dict[str, int]:
        raw = await self.r.hgetall(eng_key(tenant, lead_id))
        return {k.decode(): int(v) for k, v in raw.items()}

    async def remember_messages(self, items: list[tuple[str, str, dict]]) -> None:
        """(provider, provider_id, send facts) of dispatched messages, for the webhooks."""
        if not items:
            return
        pipe = self.r.pipeline(transaction=False)
        for provider, pid, facts in items:
            pipe.set(f"ls:pmsg:{provider}:{pid}", orjson.dumps(facts), ex=PMSG_TTL_S)
        await pipe.execute()

    async def first_received(self, keys: list[tuple[str, str]], now_ms: int) -> list[int]:
        """For each (provider, provider event id): when it first came, this call setting it
        to now_ms for those never seen (one round trip)."""
        if not keys:
            return []
        names = [f"ls:whfirst:{p}:{e}" for p, e in keys]
        async with self.r.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.set(name, now_ms, nx=True, ex=FIRST_RECEIVED_TTL_S)
            pipe.mget(names)
            *_, firsts = await pipe.execute()
        return [int(v) for v in firsts]

    async def messages(self, keys: list[tuple[str, str]]) -> list[dict | None]:
        """The send facts behind (provider, provider_id) pairs, None where unknown."""
        if not keys:
            return []
        raws = await self.r.mget([f"ls:pmsg:{p}:{i}" for p, i in keys])
        return [orjson.loads(r) if r else None for r in raws]
