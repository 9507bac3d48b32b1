"""Each lead's current consent in Redis (the projection of the consent ledger).

  ls:consent:{tenant}:{lead}   hash: purpose -> "at_ms|flag|event_id|via" of the current record
                               (flag 0 given, 1 withdrawn); one per lead that has a record
  ls:consentoff:{tenant}       set: the leads whose current marketing consent is withdrawn (the
                               sender asks it once per batch and tenant)

One Lua call folds a batch of records: a record replaces the current one only when it ranks
above it (domain.consent.rank: later `at`; at the same instant a withdrawal; then the larger
event id), so redelivered, late and out-of-order records leave what any order would.
"""
from __future__ import annotations

from domain.consent import SENDING_PURPOSE


CHUNK = 1000  # records per Lua call


def consent_key(tenant: str, lead: str) -> str:
    return f"ls:consent:{tenant}:{lead}"


def withdrawn_key(tenant: str) -> str:
    return f"ls:consentoff:{tenant}"


# KEYS: per record: the lead's hash, the tenant's withdrawn set.
# ARGV: per record: purpose, at, flag, event id, via, governs sending (1/0), lead id.
_FOLD = """
local applied = 0
for i = 1, #KEYS / 2 do
  local h, off = KEYS[2 * i - 1], KEYS[2 * i]
  local a = (i - 1) * 7
  local purpose, at, flag, eid = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), ARGV[a + 4]
  local newer = true
  local cur = redis.call('HGET', h, purpose)
  if cur then
    local cat, cflag, ceid = string.match(cur, '^(%d+)|(%d)|([^|]*)|')
    cat, cflag = tonumber(cat), tonumber(cflag)
    if at < cat or (at == cat and (flag < cflag or (flag == cflag and eid <= ceid))) then
      newer = false
    end
  end
  if newer then
    redis.call('HSET', h, purpose, ARGV[a + 2] .. '|' .. ARGV[a + 3] .. '|' .. eid .. '|' .. ARGV[a + 5])
    if ARGV[a + 6] == '1' then
      if flag == 1 then redis.call('SADD', off, ARGV[a + 7]) else redis.call('SREM', off, ARGV[a + 7]) end
    end
    applied = applied + 1
  end
end
return applied
"""


def _parse(raw: bytes | str) -> dict:
    text = raw.decode() if isinstance(raw, bytes) else raw
    at, flag, event_id, via = text.split("|", 3)
    return {"at": int(at), "granted": flag == "0", "event_id": event_id, "via": via}


class ConsentStore:
    def __init__(self, client):
        self.r = client
        self._fold = client.register_script(_FOLD)

    async def fold(self, entries: list[dict]) -> int:
        """Apply ledger entries (domain.consent.entry_of); how many became current."""
        if not entries:
            return 0
        applied = 0
        for start in range(0, len(entries), CHUNK):
            keys, args = [], []
            for e in entries[start:start + CHUNK]:
                keys += [consent_key(e["tenant"], e["lead_id"]), withdrawn_key(e["tenant"])]
                args += [e["purpose"], e["at"], 0 if e["granted"] else 1, e["event_id"], e["via"].replace("|", "/"),
                         1 if e["purpose"] == SENDING_PURPOSE else 0, e["lead_id"]]
            applied += int(await self._fold(keys=keys, args=args))
        return applied

    async def current(self, tenant: str, lead: str) -> dict[str, dict]:
        """purpose -> {at, granted, event_id, via}: the lead's current consent per purpose."""
        raw = await self.r.hgetall(consent_key(tenant, lead))
        return {(k.decode() if isinstance(k, bytes) else k): _parse(v) for k, v in raw.items()}

    async def withdrawn(self, tenant: str, leads: list[str]) -> list[bool]:
        """Whether each lead's current marketing consent is withdrawn (one command)."""
        if not leads:
            return []
        return [bool(f) for f in await self.r.smismember(withdrawn_key(tenant), leads)]
