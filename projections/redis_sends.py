"""The sender's state in Redis: the in-flight / sent mark of each send id, rate limits, the
per-lead daily cap, each lead's send history and the jobs it was already sent, link codes.

The guarantee (see README, "Sending"): a send id is delivered at most once. Before calling a
provider the sender claims the id (SET NX "inflight"); after the provider answers it writes
"sent" (or releases the claim when the provider certainly did not take the message, so a
later attempt may). A worker that dies between the claim and the answer leaves the claim:
the id is never sent again, and once the claim is older than the lease the sender reports
it as send.failed(outcome_unknown) instead of guessing.

Key families (projections/redis_keys.py):
  ls:send:{send_id}                  the mark (TTL 3 days)
  ls:rate:{scope}:{second}           rate-limit windows (TTL seconds)
  ls:cap:{tenant}:{channel}:{lead}:{date}  sends to a lead on its local day (TTL 2 days)
  ls:hist:{tenant}:{lead}            the last 50 sends of a lead (TTL 90 days)
  ls:sentjobs:{tenant}:{lead}        jobs sent to a lead, by time (TTL 30 days)
  ls:linkseq                         the link-code counter (one key)
  ls:daycap:{tenant}:{channel}:{day} a tenant's sends of one UTC day (TTL 2 days)
  ls:link:{code}                     a tracked link's record (TTL 90 days)
  ls:pmsg:{provider}:{provider_id}   the send behind a provider's message id (TTL 30 days)
"""
from __future__ import annotations

import time

import orjson
import redis.asyncio as aioredis

from domain.links import counter_floor

LINK_SEQ = "ls:linkseq"
NO_WEBHOOKS = ("smtp",)  # providers that never call back
PMSG_TTL_S = 30 * 24 * 3600

MARK_TTL_S = 3 * 24 * 3600
CAP_TTL_S = 2 * 24 * 3600
HIST_TTL_S = 90 * 24 * 3600
HIST_KEEP = 50
SENTJOBS_TTL_S = 30 * 24 * 3600
LINK_TTL_S = 90 * 24 * 3600

# n codes from the counter; a missing counter (fresh or wiped Redis) restarts at ARGV[2], the
# floor above every code made before (domain.links.counter_floor)
_CODES = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[2]) end
return redis.call('INCRBY', KEYS[1], ARGV[1])
"""

# Take up to ARGV[1] of a window's ARGV[2] slots; returns how many were granted.
_TAKE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local want, limit, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local grant = math.max(0, math.min(want, limit - used))
if grant > 0 then
  redis.call('INCRBY', KEYS[1], grant)
  redis.call('EXPIRE', KEYS[1], ttl)
end
return grant
"""


# many keys, one TTL, one command: the ~12 link records of each email set one by one cost the
# sender ~80 ms of client work per 500 emails (redis-py packs and parses every command), ~22 ms so
_SET_MANY = """
for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[i + 1], 'EX', ARGV[1]) end
return #KEYS
"""
SET_MANY_CHUNK = 500

# A send's entry in the lead's history, once: a batch retried after its MULTI was applied but
# its answer lost (Redis restarting) records the same entry again (the same bytes: its time is
# the event's own)
_HISTORY = """
if not redis.call('LPOS', KEYS[1], ARGV[1]) then
  redis.call('LPUSH', KEYS[1], ARGV[1])
  redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
"""


def mark_key(send_id: str) -> str:
    return f"ls:send:{send_id}"


def _settle_into(pipe, sent: list, released: list[str], failed: list) -> None:
    for word, settled in (("sent", sent), ("failed", failed)):
        for sid, (name, ev) in settled:
            doc = orjson.dumps({"name": name, "event": ev}).decode()
            pipe.set(mark_key(sid), f"{word}|{doc}", ex=MARK_TTL_S)
    if released:
        pipe.delete(*[mark_key(s) for s in released])


def history_entry(d: dict, at_ms: int) -> bytes:
    """A dispatched send as the lead's history keeps it (ls:hist)."""
    return orjson.dumps({k: d[k] for k in ("send_id", "list", "kind", "provider", "channel")}
                        | {k: d[k] for k in ("experiment", "variant") if d.get(k)} | {"at": at_ms})


def provider_message(d: dict) -> bytes | None:
    """What a provider's message id stands for (ls:pmsg), for a provider that calls back:
    the send, the template version (as opens and clicks carry it) and the lead's partner, so
    delivery and provider-tracked engagement break down like the rest."""
    if not d.get("provider_id") or d.get("provider") in NO_WEBHOOKS:
        return None
    return orjson.dumps({k: d[k] for k in ("tenant", "lead_id", "send_id", "channel", "list")}
                        | {"template": d.get("template_version") or d["template"], "partner": d.get("partner", "")})


class SendState:
    """Pipelined access to the sender's keys."""

    def __init__(self, r: aioredis.Redis):
        self.r = r
        self._take = r.register_script(_TAKE)
        self._codes = r.register_script(_CODES)
        self._history = r.register_script(_HISTORY)
        self._set_many = r.register_script(_SET_MANY)

    async def claim(self, send_ids: list[str], owner: str, now_ms: int) -> list[bytes | None]:
        """Claim each id for delivery; None where claimed now, else the mark already there."""
        pipe = self.r.pipeline(transaction=False)
        for sid in send_ids:
            pipe.set(mark_key(sid), f"inflight|{owner}|{now_ms}", nx=True, ex=MARK_TTL_S)
        for sid in send_ids:
            pipe.get(mark_key(sid))
        res = await pipe.execute()
        n = len(send_ids)
        return [None if res[i] else res[n + i] for i in range(n)]

    async def settle(self, sent: list[tuple[str, tuple[str, dict]]], released: list[str],
                     failed: list[tuple[str, tuple[str, dict]]]) -> None:
        """sent / failed: (send_id, the event saying so) -> "sent|{event}" / "failed|{event}",
        so a redelivered request re-emits that very event; released: claims given back (the
        provider certainly did not take the message)."""
        pipe = self.r.pipeline(transaction=False)
        _settle_into(pipe, sent, released, failed)
        await pipe.execute()

    async def settle_and_record(self, sent: list, released: list[str], failed: list, dispatched: list[dict],
                                now_ms: int, keep_since_ms: int) -> None:
        """settle() and record() in one MULTI: a Redis that fails in between cannot leave a send
        marked sent without its place in the lead's history (a retried batch sees "sent" and
        goes no further)."""
        pipe = self.r.pipeline(transaction=True)
        _settle_into(pipe, sent, released, failed)
        await self._record_into(pipe, dispatched, [], now_ms, keep_since_ms)
        await pipe.execute()

    async def take(self, scope: str, second: int, want: int, limit: int) -> int:
        """Up to `want` sends of this scope's per-second limit; returns how many are granted."""
        return int(await self._take(keys=[f"ls:rate:{scope}:{second}"], args=[want, limit, 5]))

    async def take_today(self, tenant: str, channel: str, day: str, want: int, limit: int) -> int:
        """Up to `want` sends of the tenant's daily volume for this channel and UTC day."""
        return int(await self._take(keys=[f"ls:daycap:{tenant}:{channel}:{day}"], args=[want, limit, 2 * 86400]))

    async def count_today(self, items: list[tuple[str, str, str, str]]) -> list[int]:
        """For each (tenant, channel, lead_id, local date): this send's number of the day."""
        pipe = self.r.pipeline(transaction=False)
        for tenant, channel, lead_id, day in items:
            key = f"ls:cap:{tenant}:{channel}:{lead_id}:{day}"
            pipe.incr(key)
            pipe.expire(key, CAP_TTL_S)
        res = await pipe.execute()
        return [int(v) for v in res[0::2]]

    async def uncount_today(self, items: list[tuple[str, str, str, str]]) -> None:
        """Give back the cap of sends that did not go out after all (None: one never counted)."""
        items = [i for i in items if i]
        if items:
            pipe = self.r.pipeline(transaction=False)
            for tenant, channel, lead_id, day in items:
                pipe.decr(f"ls:cap:{tenant}:{channel}:{lead_id}:{day}")
            await pipe.execute()

    async def sent_jobs(self, keys: list[tuple[str, str]], since_ms: int) -> list[set[str]]:
        """For each (tenant, lead_id): the job keys sent to it since since_ms."""
        pipe = self.r.pipeline(transaction=False)
        for tenant, lead_id in keys:
            pipe.zrangebyscore(f"ls:sentjobs:{tenant}:{lead_id}", since_ms, "+inf")
        return [{k.decode() for k in ks} for ks in await pipe.execute()]

    async def record(self, dispatched: list[dict], links: list[dict], now_ms: int, keep_since_ms: int) -> None:
        """After delivery: history, jobs sent, and the tracked links' records."""
        pipe = self.r.pipeline(transaction=False)
        await self._record_into(pipe, dispatched, links, now_ms, keep_since_ms)
        await pipe.execute()

    async def _record_into(self, pipe, dispatched: list[dict], links: list[dict], now_ms: int,
                           keep_since_ms: int) -> None:
        for d in dispatched:
            # when it was sent is the event's time, also when a retried batch records it later
            at = d.get("occurred_at") if isinstance(d.get("occurred_at"), int) else now_ms
            await self._history(keys=[f"ls:hist:{d['tenant']}:{d['lead_id']}"],
                                args=[history_entry(d, at), HIST_KEEP, HIST_TTL_S], client=pipe)
            if d["job_keys"]:
                jobs = f"ls:sentjobs:{d['tenant']}:{d['lead_id']}"
                pipe.zadd(jobs, {k: at for k in d["job_keys"]})
                pipe.zremrangebyscore(jobs, "-inf", keep_since_ms)
                pipe.expire(jobs, SENTJOBS_TTL_S)
            pmsg = provider_message(d)
            if pmsg is not None:  # provider webhooks name the provider's message id: what send it was
                pipe.set(f"ls:pmsg:{d['provider']}:{d['provider_id']}", pmsg, ex=PMSG_TTL_S)
        for i in range(0, len(links), SET_MANY_CHUNK):
            chunk = links[i:i + SET_MANY_CHUNK]
            await self._set_many(keys=[f"ls:link:{rec['code']}" for rec in chunk],
                                 args=[LINK_TTL_S, *(orjson.dumps(rec) for rec in chunk)], client=pipe)

    async def link_codes(self, n: int, now_ms: int | None = None) -> list[int]:
        """n fresh link-code numbers, from one atomic counter shared by every sender; after a
        Redis wipe the counter restarts above every code made before (counter_floor)."""
        if n <= 0:
            return []
        floor = counter_floor(int(time.time() * 1000) if now_ms is None else now_ms)
        end = int(await self._codes(keys=[LINK_SEQ], args=[n, floor]))
        return list(range(end - n + 1, end + 1))

    async def histories(self, keys: list[tuple[str, str]]) -> list[list[dict]]:
        """For each (tenant, lead_id): its last sends, newest first (one pipeline)."""
        if not keys:
            return []
        pipe = self.r.pipeline(transaction=False)
        for tenant, lead_id in keys:
            pipe.lrange(f"ls:hist:{tenant}:{lead_id}", 0, -1)
        return [[orjson.loads(x) for x in rows] for rows in await pipe.execute()]

    async def history(self, tenant: str, lead_id: str) -> list[dict]:
        return [orjson.loads(x) for x in await self.r.lrange(f"ls:hist:{tenant}:{lead_id}", 0, -1)]
