"""The last click a person made on one of our messages, per lead (for conversion attribution).

ls:lastclick:{tenant}:{lead} holds the mark (JSON) of the newest human click; a mark only
replaces an older one (a redelivered or out-of-order click never moves it back), and a click
later revised as a machine's removes its own mark. Kept as long as the longest window (90 days).
"""
from __future__ import annotations

import orjson

from domain.conversions import ClickMark

TTL_S = 90 * 24 * 3600

# replace the mark only with a newer one (ARGV[2] is its time)
_NEWER = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local at = tonumber(string.match(cur, '"at_ms":(%d+)'))
  if at and at > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1"""

# forget the mark only if it is this click's (ARGV[1] its event id)
_FORGET = """
local cur = redis.call('GET', KEYS[1])
if cur and string.find(cur, ARGV[1], 1, true) then redis.call('DEL', KEYS[1]) return 1 end
return 0"""


def _key(tenant: str, lead_id: str) -> str:
    return f"ls:lastclick:{tenant}:{lead_id}"


class ClickMarks:
    """The store of last human clicks."""

    def __init__(self, redis):
        self.r = redis
        self._newer = redis.register_script(_NEWER)
        self._forget = redis.register_script(_FORGET)

    async def remember(self, marks: list[tuple[str, str, ClickMark]]) -> None:
        """(tenant, lead, mark) for each human click, in any order."""
        if not marks:
            return
        pipe = self.r.pipeline(transaction=False)
        for tenant, lead, mark in marks:
            await self._newer(keys=[_key(tenant, lead)], args=[orjson.dumps(mark.to_dict()), mark.at_ms, TTL_S],
                              client=pipe)
        await pipe.execute()

    async def forget(self, clicks: list[tuple[str, str, str]]) -> None:
        """(tenant, lead, click event id) of clicks revised as a machine's."""
        if not clicks:
            return
        pipe = self.r.pipeline(transaction=False)
        for tenant, lead, event_id in clicks:
            await self._forget(keys=[_key(tenant, lead)], args=[event_id], client=pipe)
        await pipe.execute()

    async def last(self, keys: list[tuple[str, str]]) -> list[ClickMark | None]:
        if not keys:
            return []
        raws = await self.r.mget([_key(t, lead) for t, lead in keys])
        return [ClickMark(**orjson.loads(r)) if r else None for r in raws]
