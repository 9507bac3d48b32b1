"""Events' personal fields sealed where they are made and opened where they are read.

    sealer = deps.sealer()
    events = await sealer.seal([("lead.accepted", ev), ...], now_ms)   # data keys made where missing
    pairs = await sealer.open([("lead.accepted", ev), ...])            # (name, event) with fields opened

Which fields are personal is domain/sealing.PERSONAL_FIELDS. A data key is looked up once per
batch and tenant (one HMGET) and kept for a short while in this process; a lead whose key is
destroyed (erased) reads None in every sealed field, and so does a field that does not open.
An event written before its kind was sealed (clear fields) reads as it is.
"""
from __future__ import annotations

import os
import time
from collections import OrderedDict
from typing import Callable

from domain.sealing import NONCE_BYTES, NOTHING_KEPT, has_clear, has_sealed, open_readable, seal_event

CACHE_SIZE = 50_000
CACHE_SECONDS = 30.0  # an erasure elsewhere is seen by every process within this


def _nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


class Sealer:
    def __init__(self, keys, clock=time.monotonic):
        self.keys, self.clock = keys, clock
        self._cache: OrderedDict[tuple[str, str], tuple[float, bytes | None]] = OrderedDict()  # None: has no key
        self.unreadable = 0  # fields that did not open (no key, or not this lead's)

    async def seal(self, items: list[tuple[str, dict]], now_ms: int,
                   keep: Callable[[str], frozenset[str]] | None = None) -> list[dict]:
        """Each event with its personal fields sealed by its lead's data key (made if missing);
        keep(tenant): the free properties (of product events) that tenant keeps clear."""
        kept = [keep(ev["tenant"]) if keep else NOTHING_KEPT for _, ev in items]
        clear = [has_clear(name, ev, k) for (name, ev), k in zip(items, kept)]
        need = {(ev["tenant"], ev["lead_id"]) for (_, ev), c in zip(items, clear) if c}
        if not need:
            return [ev for _, ev in items]
        deks = await self._deks(need, lambda tenant, leads: self.keys.keys_for(tenant, leads, now_ms))
        return [seal_event(name, ev, deks[(ev["tenant"], ev["lead_id"])], _nonce, k) if c else ev
                for (name, ev), k, c in zip(items, kept, clear)]

    async def seal_known(self, items: list[tuple[str, dict]]) -> list[dict]:
        """Each event sealed where its lead has a durable data key; the others as they came (for a
        process that makes no keys: the caller decides what to write instead)."""
        need = {(ev["tenant"], ev["lead_id"]) for name, ev in items if has_clear(name, ev)}
        if not need:
            return [ev for _, ev in items]
        deks = await self._deks(need, self.keys.durable, remember_none=True)
        return [seal_event(name, ev, dek, _nonce) if (dek := deks.get((ev["tenant"], ev["lead_id"]))) else ev
                for name, ev in items]

    def seal_known_cached(self, items: list[tuple[str, dict]]) -> list[dict] | None:
        """seal_known without waiting, where every lead's key (or its having none) is in this
        process' cache; None where one is not (then seal_known asks Redis)."""
        now, out = self.clock(), []
        for name, ev in items:
            if not has_clear(name, ev):
                out.append(ev)
                continue
            hit = self._cache.get((ev["tenant"], ev["lead_id"]))
            if hit is None or hit[0] <= now:
                return None
            out.append(seal_event(name, ev, hit[1], _nonce) if hit[1] is not None else ev)
        return out

    async def open(self, items: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
        """(name, event) each, its sealed fields opened; None where they cannot be."""
        need = {(ev["tenant"], ev["lead_id"]) for name, ev in items if has_sealed(name, ev)}
        if not need:
            return items
        deks = await self._deks(need, self.keys.existing)
        return [(name, self._open(name, ev, deks.get((ev["tenant"], ev["lead_id"]))) if has_sealed(name, ev) else ev)
                for name, ev in items]

    def _open(self, name: str, ev: dict, dek: bytes | None) -> dict:
        out, unreadable = open_readable(name, ev, dek)
        self.unreadable += unreadable
        return out

    async def _deks(self, need: set[tuple[str, str]], fetch, remember_none: bool = False) -> dict[tuple[str, str], bytes]:
        """The data keys of `need`: cached ones, the rest from fetch(tenant, leads) (one call per
        tenant). With remember_none, a lead found without a key is not asked again for a while
        either (a process that makes no keys: the tracking front)."""
        now = self.clock()
        out, by_tenant = {}, {}
        for k in need:
            hit = self._cache.get(k)
            if hit is not None and hit[0] > now and (hit[1] is not None or remember_none):
                if hit[1] is not None:
                    out[k] = hit[1]
            else:
                by_tenant.setdefault(k[0], []).append(k[1])
        for tenant, leads in by_tenant.items():
            found = await fetch(tenant, leads)
            for lead in leads:
                dek = found.get(lead)
                if dek is not None:
                    out[(tenant, lead)] = dek
                elif not remember_none:
                    continue
                self._cache[(tenant, lead)] = (now + CACHE_SECONDS, dek)
                self._cache.move_to_end((tenant, lead))
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return out

    def forget(self, tenant: str, lead: str) -> None:
        """This process erased the lead: its key is not used again from the cache."""
        self._cache.pop((tenant, lead), None)
