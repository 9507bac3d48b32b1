"""The digest pipeline's state in Redis: items (top K per group and hour), memberships, members
by time zone, and each run's snapshot, chunks and totals.

  ls:dgtop:{tenant}:{group}:{hour}   sorted set: item id -> score, the hour's best MAX_TOP_K only (TTL 9 days)
  ls:dgitem:{tenant}:{item}          hash: what a digest shows of an item that made a bucket's top (TTL 9 days)
  ls:dgmem:{tenant}:{lead}           sorted set: group -> when the lead joined it (at most MAX_GROUPS)
  ls:dgpeople:{tenant}:{tz}          sorted set: member -> when last seen (joined, posted, opened, clicked)
  ls:dgtz:{tenant}                   hash: member -> time zone; and the set ls:dgzones:{tenant} of zones in use
  ls:dggroup:{tenant}                hash: group -> kind
  ls:dgsnap:{run}:{path}             sorted set: the run's members on that path, as planned (TTL 3 days)
  ls:dgrun:{run}                     hash: the run's plan and its counters (TTL 14 days)
  ls:dgopen:{tenant}                 sorted set: "digest|run" -> send time, runs planned and not finished
  ls:dglast:{tenant}                 hash: digest -> when its last run finished (or it was first seen)
  ls:dgfirst:{tenant}                hash: digest -> when the planner first saw it
  ls:dgchunk:{run}:{path}:{n}        who took a chunk ("worker|ms") or "done" (TTL 3 days)

Items and memberships are written by Lua scripts taking many events per call (one round trip per
batch, not per event). Every write is idempotent: a redelivered item or membership changes nothing.
"""
from __future__ import annotations

import orjson

from domain.digests import BUCKET_TTL_MS, HOUR_MS, MAX_TOP_K, Item

MAX_GROUPS = 500  # memberships kept per lead (the oldest beyond are dropped)
SNAPSHOT_TTL_MS = 3 * 24 * HOUR_MS
RUN_TTL_MS = 14 * 24 * HOUR_MS
CHUNK_TTL_MS = SNAPSHOT_TTL_MS


def top_key(tenant: str, group: str, hour: int) -> str:
    return f"ls:dgtop:{tenant}:{group}:{hour}"


def item_key(tenant: str, item: str) -> str:
    return f"ls:dgitem:{tenant}:{item}"


def member_key(tenant: str, lead: str) -> str:
    return f"ls:dgmem:{tenant}:{lead}"


def people_key(tenant: str, tz: str) -> str:
    return f"ls:dgpeople:{tenant}:{tz}"


def snap_key(run: str, path: str) -> str:
    return f"ls:dgsnap:{run}:{path}"


def run_key(run: str) -> str:
    return f"ls:dgrun:{run}"


def chunk_key(run: str, path: str, index: int) -> str:
    return f"ls:dgchunk:{run}:{path}:{index}"


# KEYS: per item: bucket, item hash. ARGV: keep, ttl ms, then per item: id, score, 7 fields
# (group, title, url, author, posted_at, score, tenant). The item enters its bucket (a higher
# score wins), the bucket keeps its best `keep`; an item that stayed gets its hash.
_POST = """
local keep, ttl = tonumber(ARGV[1]), ARGV[2]
local a = 3
for i = 1, #KEYS, 2 do
  local bucket, hash, id, score = KEYS[i], KEYS[i + 1], ARGV[a], ARGV[a + 1]
  redis.call('ZADD', bucket, 'GT', score, id)
  local n = redis.call('ZCARD', bucket)
  if n > keep then redis.call('ZREMRANGEBYRANK', bucket, 0, n - keep - 1) end
  redis.call('PEXPIRE', bucket, ttl)
  if redis.call('ZSCORE', bucket, id) then
    redis.call('HSET', hash, 'group', ARGV[a + 2], 'title', ARGV[a + 3], 'url', ARGV[a + 4],
               'author', ARGV[a + 5], 'posted_at', ARGV[a + 6], 'score', ARGV[a + 7])
    redis.call('PEXPIRE', hash, ttl)
  end
  a = a + 8
end
return #KEYS / 2
"""

# KEYS[1] zones hash (lead -> tz), KEYS[2] the zone set, KEYS[3] group kinds; then per change:
# membership key, people key of the lead's zone. ARGV: per change: op (join/leave/seen), lead,
# group, kind, tz, at ms. A join records the group, the lead's zone and last-seen; a leave drops
# the group (and the lead from the zone when it was their last); seen raises last-seen only for
# a lead who is a member somewhere.
_MEMBERSHIP = """
local zones, zone_set, kinds, max_groups = KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1])
local prefix = ARGV[2]
local a, k = 3, 4
for i = 1, (#ARGV - 2) / 6 do
  local op, lead, group, kind, tz, at = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local mem = KEYS[k]
  local held = redis.call('HGET', zones, lead)
  if op == 'join' then
    redis.call('ZADD', mem, 'NX', at, group)
    local n = redis.call('ZCARD', mem)
    if n > max_groups then redis.call('ZREMRANGEBYRANK', mem, 0, n - max_groups - 1) end
    redis.call('HSET', kinds, group, kind)
    if held and held ~= tz then redis.call('ZREM', prefix .. held, lead) end
    redis.call('HSET', zones, lead, tz)
    redis.call('SADD', zone_set, tz)
    redis.call('ZADD', prefix .. tz, 'GT', at, lead)
  elseif op == 'leave' then
    redis.call('ZREM', mem, group)
    if held and redis.call('ZCARD', mem) == 0 then
      redis.call('ZREM', prefix .. held, lead)
      redis.call('HDEL', zones, lead)
    end
  elseif held then
    redis.call('ZADD', prefix .. held, 'XX', 'GT', at, lead)
  end
  a, k = a + 6, k + 1
end
return (#ARGV - 2) / 6
"""

# KEYS: the source (people of a zone), priority snapshot, standard snapshot, run hash.
# ARGV: priority_from, active_from ("-inf" when nobody is left out), ttl ms, then plan fields.
# The snapshots are taken once: a run planned again keeps its first plan.
_SNAPSHOT = """
if redis.call('EXISTS', KEYS[4]) == 1 then return redis.call('HGETALL', KEYS[4]) end
local pri = redis.call('ZRANGESTORE', KEYS[2], KEYS[1], ARGV[1], '+inf', 'BYSCORE')
local std = redis.call('ZRANGESTORE', KEYS[3], KEYS[1], '(' .. ARGV[1], ARGV[2], 'BYSCORE', 'REV')
local total = redis.call('ZCARD', KEYS[1])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
redis.call('HSET', KEYS[4], 'priority', pri, 'standard', std, 'left_out', total - pri - std, unpack(ARGV, 5))
redis.call('PEXPIRE', KEYS[4], ARGV[4])
return redis.call('HGETALL', KEYS[4])
"""

# KEYS[1] the chunk. ARGV: worker, now, ttl. "done" -> 0; otherwise the chunk is marked as taken
# by this worker (for whoever looks) -> 1. A chunk another worker holds is taken all the same: only
# one consumer reads a partition at a time, so that worker is gone (killed mid-chunk), and a chunk
# digested twice asks for the same send ids while settle counts it once
_CLAIM = """
if redis.call('GET', KEYS[1]) == 'done' then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'PX', ARGV[3])
return 1
"""

# KEYS[1] chunk, KEYS[2] run hash. ARGV: chunk ttl, run ttl, counter, n, ... The chunk is marked
# done and its counts added to the run once (a chunk already done adds nothing); returns the run's hash
_SETTLE = """
if redis.call('GET', KEYS[1]) ~= 'done' then
  redis.call('SET', KEYS[1], 'done', 'PX', ARGV[1])
  for i = 3, #ARGV, 2 do redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1]) end
  redis.call('PEXPIRE', KEYS[2], ARGV[2], 'NX')
end
return redis.call('HGETALL', KEYS[2])
"""


class DigestStore:
    """Items, memberships and runs of the digest pipeline."""

    def __init__(self, client):
        self.r = client
        self._post = client.register_script(_POST)
        self._membership = client.register_script(_MEMBERSHIP)
        self._snapshot = client.register_script(_SNAPSHOT)
        self._claim = client.register_script(_CLAIM)
        self._settle = client.register_script(_SETTLE)

    async def post_items(self, tenant: str, items: list[Item], chunk: int = 500) -> int:
        """Each item into its group's hour bucket (kept there only if among the hour's best)."""
        for start in range(0, len(items), chunk):
            part = items[start:start + chunk]
            keys, argv = [], [MAX_TOP_K, BUCKET_TTL_MS]
            for it in part:
                keys += [top_key(tenant, it.group_id, it.posted_at_ms // HOUR_MS), item_key(tenant, it.item_id)]
                argv += [it.item_id, repr(float(it.score)), it.group_id, it.title, it.url, it.author,
                         it.posted_at_ms, repr(float(it.score))]
            await self._post(keys=keys, args=argv)
        return len(items)

    async def change_memberships(self, tenant: str, changes: list[tuple[str, str, str, str, str, int]],
                                 chunk: int = 500) -> int:
        """(op, lead, group, kind, tz, at_ms) in order; op is join, leave or seen."""
        for start in range(0, len(changes), chunk):
            part = changes[start:start + chunk]
            keys = [f"ls:dgtz:{tenant}", f"ls:dgzones:{tenant}", f"ls:dggroup:{tenant}"]
            keys += [member_key(tenant, lead) for _, lead, *_ in part]
            argv: list = [MAX_GROUPS, f"ls:dgpeople:{tenant}:"]
            for op, lead, group, kind, tz, at in part:
                argv += [op, lead, group, kind, tz, at]
            await self._membership(keys=keys, args=argv)
        return len(changes)

    async def zones(self, tenant: str) -> list[str]:
        return sorted(z.decode() for z in await self.r.smembers(f"ls:dgzones:{tenant}"))

    async def timezone_of(self, tenant: str, leads: list[str]) -> list[str | None]:
        got = await self.r.hmget(f"ls:dgtz:{tenant}", leads) if leads else []
        return [g.decode() if g else None for g in got]

    async def plan(self, run: str, tenant: str, tz: str, priority_from_ms: int, active_from_ms: int | None,
                   fields: dict) -> dict:
        """The run's snapshot (taken once) and plan: priority, standard, left_out and the fields given."""
        argv: list = [priority_from_ms, "-inf" if active_from_ms is None else active_from_ms,
                      SNAPSHOT_TTL_MS, RUN_TTL_MS]
        for k, v in fields.items():
            argv += [k, v]
        got = await self._snapshot(keys=[people_key(tenant, tz), snap_key(run, "priority"),
                                         snap_key(run, "standard"), run_key(run)], args=argv)
        return _hash_dict(got)

    async def people_count(self, tenant: str, tz: str) -> int:
        return int(await self.r.zcard(people_key(tenant, tz)))

    async def set_chunks(self, run: str, chunks: int, priority_chunks: int) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(run_key(run), mapping={"chunks": chunks, "priority_chunks": priority_chunks})
        pipe.pexpire(run_key(run), RUN_TTL_MS, nx=True)
        await pipe.execute()

    async def run(self, run: str) -> dict:
        return _hash_dict(await self.r.hgetall(run_key(run)))

    async def mark_missed(self, run: str, fields: dict) -> bool:
        """Records a run that was never made (once); False when the run exists or was marked."""
        key = run_key(run)
        if await self.r.exists(key):
            return False
        pipe = self.r.pipeline(transaction=True)
        pipe.hsetnx(key, "missed_at", fields["missed_at"])
        pipe.hset(key, mapping={k: v for k, v in fields.items() if k != "missed_at"})
        pipe.pexpire(key, RUN_TTL_MS, nx=True)
        first, *_ = await pipe.execute()
        return bool(first)

    async def mark_run(self, run: str, field: str, value) -> bool:
        """Sets a field of the run once; False when it was already set."""
        pipe = self.r.pipeline(transaction=True)
        pipe.hsetnx(run_key(run), field, value)
        pipe.pexpire(run_key(run), RUN_TTL_MS, nx=True)
        first, _ = await pipe.execute()
        return bool(first)

    async def claim(self, run: str, path: str, index: int, worker: str, now_ms: int) -> int:
        """1: the chunk is this worker's to digest; 0: it is done already."""
        return int(await self._claim(keys=[chunk_key(run, path, index)], args=[worker, now_ms, CHUNK_TTL_MS]))

    async def settle(self, run: str, path: str, index: int, counts: dict[str, int]) -> dict:
        """Marks the chunk done and adds its counts to the run's (once); the run's hash after."""
        argv: list = [CHUNK_TTL_MS, RUN_TTL_MS]
        for k, v in counts.items():
            argv += [k, int(v)]
        got = await self._settle(keys=[chunk_key(run, path, index), run_key(run)], args=argv)
        return _hash_dict(got)

    async def members(self, run: str, path: str, start: int, stop: int) -> list[tuple[str, int]]:
        """Ranks [start, stop) of the path's snapshot: (lead, last seen ms)."""
        if stop <= start:
            return []
        got = await self.r.zrange(snap_key(run, path), start, stop - 1, withscores=True)
        return [(m.decode(), int(s)) for m, s in got]

    async def memberships(self, tenant: str, leads: list[str]) -> list[dict[str, int]]:
        """Each lead's groups and when they joined them."""
        pipe = self.r.pipeline(transaction=False)
        for lead in leads:
            pipe.zrange(member_key(tenant, lead), 0, -1, withscores=True)
        return [{g.decode(): int(s) for g, s in rows} for rows in await pipe.execute()]

    async def group_kinds(self, tenant: str, groups: list[str]) -> dict[str, str]:
        got = await self.r.hmget(f"ls:dggroup:{tenant}", groups) if groups else []
        return {g: (k.decode() if k else "") for g, k in zip(groups, got)}

    async def window_items(self, tenant: str, group: str, hours: list[int], k: int) -> list[Item]:
        """The best k items of each hour of the window, with what a digest shows of them."""
        pipe = self.r.pipeline(transaction=False)
        for h in hours:
            pipe.zrange(top_key(tenant, group, h), 0, k - 1, desc=True)
        ids = sorted({i.decode() for rows in await pipe.execute() for i in rows})
        if not ids:
            return []
        pipe = self.r.pipeline(transaction=False)
        for i in ids:
            pipe.hgetall(item_key(tenant, i))
        out = []
        for i, h in zip(ids, await pipe.execute()):
            if h:
                d = {key.decode(): v.decode() for key, v in h.items()}
                out.append(Item(i, d["group"], float(d["score"]), int(d["posted_at"]), d["title"], d["url"],
                                d["author"]))
        return out


class RunHealth:
    """Which runs are open and when each digest last finished one (what the alerts watch)."""

    def __init__(self, client):
        self.r = client

    async def opened(self, tenant: str, digest: str, run: str, send_at_ms: int) -> None:
        pipe = self.r.pipeline(transaction=False)
        pipe.zadd(f"ls:dgopen:{tenant}", {f"{digest}|{run}": send_at_ms})
        pipe.zremrangebyscore(f"ls:dgopen:{tenant}", "-inf", send_at_ms - RUN_TTL_MS)  # given up on
        await pipe.execute()

    async def closed(self, tenant: str, digest: str, run: str, now_ms: int) -> None:
        pipe = self.r.pipeline(transaction=False)
        pipe.zrem(f"ls:dgopen:{tenant}", f"{digest}|{run}")
        pipe.hset(f"ls:dglast:{tenant}", digest, now_ms)
        await pipe.execute()

    async def first_seen(self, tenant: str, digest: str, now_ms: int) -> None:
        """A digest without a finished run yet counts from when it was first seen."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hsetnx(f"ls:dglast:{tenant}", digest, now_ms)
        pipe.hsetnx(f"ls:dgfirst:{tenant}", digest, now_ms)
        await pipe.execute()

    async def seen_since(self, tenant: str) -> dict[str, int]:
        """When the planner first saw each digest (a period before that was never its to run)."""
        return {k.decode(): int(v) for k, v in (await self.r.hgetall(f"ls:dgfirst:{tenant}")).items()}

    async def of(self, tenant: str) -> tuple[dict[str, int], dict[str, int]]:
        """({digest: send time of its oldest open run}, {digest: last finished or first seen})."""
        opened: dict[str, int] = {}
        for member, at in await self.r.zrange(f"ls:dgopen:{tenant}", 0, -1, withscores=True):
            digest = member.decode().split("|", 1)[0]
            opened[digest] = min(opened.get(digest, int(at)), int(at))
        last = {k.decode(): int(v) for k, v in (await self.r.hgetall(f"ls:dglast:{tenant}")).items()}
        return opened, last


def _hash_dict(flat) -> dict:
    if isinstance(flat, dict):
        items = flat.items()
    else:
        items = zip(flat[0::2], flat[1::2])
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in items}


def dumps(obj) -> str:
    return orjson.dumps(obj).decode()
