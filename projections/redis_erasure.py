"""Erasure in Redis: the do-not-contact list, and finding (and removing) every trace of a person.

  ls:dnc:{tenant}      set: the keyed hashes of erased leads (domain/erasure.contact_hash), asked
                       by every intake path before a lead is taken
  ls:dncanon:{tenant}  hash: keyed hash -> the anonymous id of the lead's first erasure, under which
                       the analytics agent writes the rows of their late events (no address, no
                       lead id: what privacy.erasures records too)

A trace is anything that names the person: a key with their lead id in its name, a member of a
set or sorted set, a field or value of a hash, an item of a list, or a string value (a tracked
link's record, a provider message's send) holding their lead id or address. Finding them is one
pass over the keyspace, so it needs no list of where the platform keeps what: a family added
later is covered too, and the audit (`./dev privacy audit`) asks the very same question.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from domain.erasure import contact_hash

SCAN_COUNT = 5000
CHUNK = 1000
# kept on purpose: the list itself (hashes only), and the blocklist, which is configuration
# (refilled from it at once; an address an operator blocklisted stays their decision)
NOT_TRACES = ("ls:dnc:", "ls:dncanon:", "ls:block")
# families whose every key is about the one lead its name holds (projections/redis_keys.py): a key
# of theirs whose name does not name the person holds nothing of theirs, and is not opened
PER_LEAD = ("ls:lead:", "ls:seg:", "ls:tfired:", "ls:eng:", "ls:consent:", "ls:dgmem:", "ls:tev:", "ls:hist:",
            "ls:sentjobs:", "ls:cap:", "ls:soft:", "ls:tcap:", "ls:crmf:", "ls:lastclick:")
_LEAD_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{24}(?![0-9a-f])")


def dnc_key(tenant: str) -> str:
    return f"ls:dnc:{tenant}"


def anon_key(tenant: str) -> str:
    return f"ls:dncanon:{tenant}"


class DoNotContact:
    def __init__(self, client, secret: str):
        self.r, self.secret = client, secret

    async def erased(self, leads: list[tuple[str, str]]) -> list[bool]:
        """Whether each (tenant, lead id) is an erased person's (never to be taken again)."""
        return await self.listed([(t, contact_hash(self.secret, t, lead)) for t, lead in leads])

    async def add(self, tenant: str, entries: list[str], anonymous: list[str] | None = None) -> None:
        """Entries on the tenant's list; with `anonymous`, each entry's anonymous id (the first
        one an entry is given stays: a second erasure of the person does not rename their rows)."""
        for i in range(0, len(entries), CHUNK):
            pipe = self.r.pipeline(transaction=False)
            pipe.sadd(dnc_key(tenant), *entries[i:i + CHUNK])
            for entry, anon in zip(entries[i:i + CHUNK], (anonymous or [])[i:i + CHUNK]):
                pipe.hsetnx(anon_key(tenant), entry, anon)
            await pipe.execute()

    async def erased_as(self, leads: list[tuple[str, str]]) -> list[str | None]:
        """For each (tenant, lead id): None when they are not erased, else the anonymous id of
        their erasure ("" for one erased before the ids were kept: the caller makes one up)."""
        entries = [(t, contact_hash(self.secret, t, lead)) for t, lead in leads]
        listed = await self.listed(entries)
        by_tenant: dict[str, list[int]] = {}
        for i, ((tenant, _), on) in enumerate(zip(entries, listed)):
            if on:
                by_tenant.setdefault(tenant, []).append(i)
        out: list[str | None] = [None] * len(leads)
        if not by_tenant:
            return out
        pipe = self.r.pipeline(transaction=False)
        for tenant, idx in by_tenant.items():
            pipe.hmget(anon_key(tenant), [entries[i][1] for i in idx])
        for idx, anons in zip(by_tenant.values(), await pipe.execute()):
            for i, anon in zip(idx, anons):
                out[i] = anon.decode() if anon else ""
        return out

    async def listed(self, items: list[tuple[str, str]]) -> list[bool]:
        """Whether each (tenant, entry) is on its tenant's list: one SMISMEMBER per tenant."""
        if not items:
            return []
        by_tenant: dict[str, list[int]] = {}
        for i, (tenant, _) in enumerate(items):
            by_tenant.setdefault(tenant, []).append(i)
        pipe = self.r.pipeline(transaction=False)
        for tenant, idx in by_tenant.items():
            pipe.smismember(dnc_key(tenant), [items[i][1] for i in idx])
        out = [False] * len(items)
        for idx, flags in zip(by_tenant.values(), await pipe.execute()):
            for i, f in zip(idx, flags):
                out[i] = bool(f)
        return out


@dataclass(frozen=True)
class Trace:
    key: str
    kind: str  # key | value | field | member (of a set) | ranked (of a sorted set) | item (of a list)
    item: str | None = None  # the field, member or item that names the person

    def shown(self) -> str:
        return self.key if self.item is None else f"{self.key} [{self.kind}] {self.item[:80]}"


def matcher(lead_ids: set[str], texts: set[str]) -> Callable[[str], bool]:
    """Whether a text names one of the leads (by id) or holds one of the texts (addresses)."""
    texts = {t for t in texts if t}
    if len(lead_ids) <= 64:
        needles = tuple(lead_ids | texts)
        return lambda s: any(n in s for n in needles)
    return lambda s: any(t in lead_ids for t in _LEAD_ID.findall(s)) or any(t in s for t in texts)


async def find_traces(r, names: Callable[[str], bool], thorough: bool = False) -> list[Trace]:
    """Every trace in the keyspace that `names` says names the person. Keys of the per-lead
    families named for someone else are not opened, unless `thorough` (the audit's way)."""
    out: list[Trace] = []
    batch: list[str] = []
    async for raw in r.scan_iter(match="ls:*", count=SCAN_COUNT):
        key = raw.decode()
        if key.startswith(NOT_TRACES):
            continue
        if names(key):
            out.append(Trace(key, "key"))
            continue
        if not thorough and key.startswith(PER_LEAD):
            continue
        batch.append(key)
        if len(batch) >= CHUNK:
            out += await _inside(r, batch, names)
            batch = []
    return out + await _inside(r, batch, names)


async def _inside(r, keys: list[str], names: Callable[[str], bool]) -> list[Trace]:
    if not keys:
        return []
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.type(k)
    types = [t.decode() if isinstance(t, bytes) else t for t in await pipe.execute()]
    strings = [k for k, t in zip(keys, types) if t == "string"]
    out = [Trace(k, "value") for k, v in zip(strings, await r.mget(strings) if strings else [])
           if v is not None and names(v.decode(errors="replace"))]
    for key, kind in zip(keys, types):
        if kind == "hash":
            out += [Trace(key, "field", f.decode(errors="replace")) async for f, v in r.hscan_iter(key, count=SCAN_COUNT)
                    if names(f.decode(errors="replace")) or names(v.decode(errors="replace"))]
        elif kind == "set":
            out += [Trace(key, "member", m.decode(errors="replace")) async for m in r.sscan_iter(key, count=SCAN_COUNT)
                    if names(m.decode(errors="replace"))]
        elif kind == "zset":
            out += [Trace(key, "ranked", m.decode(errors="replace")) async for m, _ in r.zscan_iter(key, count=SCAN_COUNT)
                    if names(m.decode(errors="replace"))]
        elif kind == "list":
            out += [Trace(key, "item", i.decode(errors="replace")) for i in await r.lrange(key, 0, -1)
                    if names(i.decode(errors="replace"))]
    return out


async def remove_traces(r, traces: list[Trace]) -> int:
    """Each trace gone: its key deleted, or its field, member or item removed."""
    pipe = r.pipeline(transaction=False)
    for t in traces:
        if t.kind in ("key", "value"):
            pipe.delete(t.key)
        elif t.kind == "field":
            pipe.hdel(t.key, t.item)
        elif t.kind == "member":
            pipe.srem(t.key, t.item)
        elif t.kind == "ranked":
            pipe.zrem(t.key, t.item)
        else:
            pipe.lrem(t.key, 0, t.item)
    await pipe.execute()
    return len(traces)
