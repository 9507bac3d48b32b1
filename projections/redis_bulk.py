"""Many keys in one Redis call, for the rebuilds (runtime.replay).

redis-py spends ~10 µs of client work on each command of a pipeline (packing it, parsing its
answer, its bookkeeping); a rebuild after a wipe writes millions of keys, so that work was most
of its time. Each function here sends one EVALSHA of a small Lua script per chunk of keys: the
client packs one command with many arguments, Redis does the per-key work.

Every function takes a client (asyncio or not: what `register_script` returns is awaited when
the client is asyncio) and returns what the per-key commands would have told.
"""
from __future__ import annotations

import inspect
from typing import Iterable

CHUNK = 1000  # keys per call: a call blocks Redis for ~1 ms, never long

# KEYS: the keys; ARGV: value, ms to live, value, ms to live, ... SET NX PX each; how many were set
_SET_MISSING = """
local n = 0
for i = 1, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[2 * i - 1], 'NX', 'PX', ARGV[2 * i]) then n = n + 1 end
end
return n
"""

# KEYS: the keys; ARGV[i]: KEYS[i]'s value. SET each (no lifetime); how many
_SET_ALL = """
for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[i]) end
return #KEYS
"""

# KEYS: the keys; ARGV: the count, ms to live, ... A key is set to its count (with its lifetime)
# where Redis holds none or a smaller one; how many were
_RAISE_COUNTS = """
local n = 0
for i = 1, #KEYS do
  local held = redis.call('GET', KEYS[i])
  if not held or tonumber(held) < tonumber(ARGV[2 * i - 1]) then
    redis.call('SET', KEYS[i], ARGV[2 * i - 1], 'PX', ARGV[2 * i])
    n = n + 1
  end
end
return n
"""

# KEYS: list keys; ARGV per key: entry count, ms to live, the entries. A list Redis does not
# hold is created (RPUSH, PEXPIRE); the 1-based positions of the keys it holds are returned
_LISTS_WHERE_ABSENT = """
local held, a = {}, 1
for i = 1, #KEYS do
  local n, ttl = tonumber(ARGV[a]), ARGV[a + 1]
  if redis.call('EXISTS', KEYS[i]) == 1 then
    held[#held + 1] = i
  else
    local s, e = a + 2, a + 1 + n
    while s <= e do  -- unpack is limited to a few thousand values at once
      local t = math.min(s + 1999, e)
      redis.call('RPUSH', KEYS[i], unpack(ARGV, s, t))
      s = t + 1
    end
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
  a = a + 2 + n
end
return held
"""

# KEYS: sorted set keys; ARGV[1]: 'GT' or ''; then per key: member count, ms to live, score,
# member, ... ZADD (GT when asked) each; each key lives the longer of its own and the given
_MERGE_SORTED_SETS = """
local gt, a = ARGV[1], 2
for i = 1, #KEYS do
  local n, ttl = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local s, e = a + 2, a + 1 + 2 * n
  while s <= e do  -- unpack is limited to a few thousand values at once; 2000 keeps the pairs whole
    local t = math.min(s + 1999, e)
    if gt == 'GT' then
      redis.call('ZADD', KEYS[i], 'GT', unpack(ARGV, s, t))
    else
      redis.call('ZADD', KEYS[i], unpack(ARGV, s, t))
    end
    s = t + 1
  end
  local left = redis.call('PTTL', KEYS[i])
  if left < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
  a = a + 2 + 2 * n
end
return #KEYS
"""

async def _call(r, source: str, keys: list, args: list):
    out = r.register_script(source)(keys=keys, args=args)  # EVALSHA, loading the script if Redis lacks it
    return await out if inspect.isawaitable(out) else out


def _chunks(items: list, size: int = CHUNK) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


async def set_missing(r, items: list[tuple[str, bytes | str, int]]) -> int:
    """(key, value, ms to live) each set where Redis holds no such key; how many were set."""
    n = 0
    for chunk in _chunks(items):
        args = [x for _, value, px in chunk for x in (value, max(1, int(px)))]
        n += int(await _call(r, _SET_MISSING, [k for k, _, _ in chunk], args))
    return n


async def set_all(r, items: list[tuple[str, bytes | str]]) -> int:
    """(key, value) each SET, replacing what Redis holds, with no lifetime; how many."""
    for chunk in _chunks(items):
        await _call(r, _SET_ALL, [k for k, _ in chunk], [v for _, v in chunk])
    return len(items)


async def raise_counts(r, counts: dict[str, tuple[int, int]]) -> int:
    """key -> (count, ms to live): set where Redis holds none or fewer; how many were."""
    n = 0
    for chunk in _chunks(list(counts.items())):
        args = [x for _, (count, px) in chunk for x in (count, max(1, int(px)))]
        n += int(await _call(r, _RAISE_COUNTS, [k for k, _ in chunk], args))
    return n


async def lists_where_absent(r, lists: dict[str, tuple[list[bytes], int]]) -> list[str]:
    """key -> (entries in order, ms to live): each list Redis does not hold is created with
    them; the keys it already held (left as they are) are returned."""
    held: list[str] = []
    for chunk in _chunks([(k, v) for k, v in lists.items() if v[0]]):
        args: list = []
        for _, (entries, px) in chunk:
            args += [len(entries), max(1, int(px)), *entries]
        positions = await _call(r, _LISTS_WHERE_ABSENT, [k for k, _ in chunk], args)
        held += [chunk[int(p) - 1][0] for p in positions]
    return held


async def merge_sorted_sets(r, sets: dict[str, tuple[dict[str, int], int]], gt: bool = False) -> int:
    """key -> ({member: score}, ms to live): added to what Redis holds (with gt, a member Redis
    holds with a higher score keeps it), each key living the longer of its lifetime and the given."""
    for chunk in _chunks([(k, v) for k, v in sets.items() if v[0]]):
        args: list = ["GT" if gt else ""]
        for _, (members, px) in chunk:
            args += [len(members), max(1, int(px))]
            for member, score in members.items():
                args += [score, member]
        await _call(r, _MERGE_SORTED_SETS, [k for k, _ in chunk], args)
    return len(sets)

