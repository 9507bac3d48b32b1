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

from domain.sealing import NONCE_BYTES, PERSONAL_FIELDS, is_sealed, open_readable, seal_event

CACHE_SIZE = 50_000
CACHE_SECONDS = 30.0  # an erasure elsewhere is seen by every process within this


def _nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


def _to_seal(name: str, ev: dict) -> bool:
    return any(ev.get(f) and not is_sealed(ev[f]) for f in PERSONAL_FIELDS.get(name, ()))


def _sealed(name: str, ev: dict) -> bool:
    return any(is_sealed(ev.get(f)) for f in PERSONAL_FIELDS.get(name, ()))


class Sealer:
    def __init__(self, keys, clock=time.monotonic):
        self.keys, self.clock = keys, clock
        self._cache: OrderedDict[tuple[str, str], tuple[float, bytes]] = OrderedDict()
        self.unreadable = 0  # fields that did not open (no key, or not this lead's)

    async def seal(self, items: list[tuple[str, dict]], now_ms: int) -> list[dict]:
        """Each event with its personal fields sealed by its lead's data key (made if missing)."""
        need = {(ev["tenant"], ev["lead_id"]) for name, ev in items if _to_seal(name, ev)}
        if not need:
            return [ev for _, ev in items]
        deks = await self._deks(need, create=True, now_ms=now_ms)
        return [seal_event(name, ev, deks[(ev["tenant"], ev["lead_id"])], _nonce) if _to_seal(name, ev) else ev
                for name, ev in items]

    async def open(self, items: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
        """(name, event) each, its sealed fields opened; None where they cannot be."""
        need = {(ev["tenant"], ev["lead_id"]) for name, ev in items if _sealed(name, ev)}
        if not need:
            return items
        deks = await self._deks(need, create=False)
        return [(name, self._open(name, ev, deks.get((ev["tenant"], ev["lead_id"]))) if _sealed(name, ev) else ev)
                for name, ev in items]

    def _open(self, name: str, ev: dict, dek: bytes | None) -> dict:
        out, unreadable = open_readable(name, ev, dek)
        self.unreadable += unreadable
        return out

    async def _deks(self, need: set[tuple[str, str]], create: bool, now_ms: int = 0) -> dict[tuple[str, str], bytes]:
        now = self.clock()
        out, by_tenant = {}, {}
        for k in need:
            hit = self._cache.get(k)
            if hit is not None and hit[0] > now:
                out[k] = hit[1]
            else:
                by_tenant.setdefault(k[0], []).append(k[1])
        for tenant, leads in by_tenant.items():
            found = await (self.keys.keys_for(tenant, leads, now_ms) if create else self.keys.existing(tenant, leads))
            for lead, dek in found.items():
                out[(tenant, lead)] = dek
                self._cache[(tenant, lead)] = (now + CACHE_SECONDS, dek)
                self._cache.move_to_end((tenant, lead))
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return out

    def forget(self, tenant: str, lead: str) -> None:
        """This process erased the lead: its key is not used again from the cache."""
        self._cache.pop((tenant, lead), None)
