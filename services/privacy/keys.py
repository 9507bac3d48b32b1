"""Leads' data keys: created on first need, durable on the compacted privacy.keys topic before
any field is sealed with them, wrapped by the current KEK, rewrapped by a rotation, destroyed by
an erasure.

    keys = DataKeys(store, producer, codec, topic, settings.kek_ring)
    deks = await keys.keys_for("acme", ["L1", "L2"], now_ms)      # lead -> 32-byte key
    sealed = seal(deks["L1"], os.urandom(12), "203.0.113.7", field_aad("acme", "L1", "ip"))

A key is claimed in Redis as pending, written to the topic, then marked durable. Whoever finds a
pending key (its creator died before the topic had it) writes the very same record before using
it: a field is never sealed with a key that a Redis loss could take away. On a wiped Redis not
yet rebuilt (no ls:intact), no key is made (KeysNotRestored): the topic may hold the lead's.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from domain.identity import new_event_id
from domain.sealing import KEY_BYTES, NONCE_BYTES, SealError, key_aad, parse_key_ring, unwrap, wrap, wrapped_by
from projections.redis_data_keys import DURABLE, PENDING, DataKeyStore, stored
from streams.batching import NotYetProjected

SOURCE = "privacy.keys"
ROTATE_BATCH = 500


class KeyDestroyed(SealError):
    """The lead's data key is gone (erased): nothing of theirs opens, and nothing new is sealed."""


class KeysNotRestored(NotYetProjected):
    """Redis lost its state and the replay has not rebuilt it yet: a lead without a key in Redis
    may have one on the topic, and a new one would replace it there (every field sealed with
    the old one unreadable), so none is made until the replay ran. Transient: batches retry."""


@dataclass
class Rotation:
    rewrapped: int = 0
    already_current: int = 0
    changed_meanwhile: int = 0  # destroyed or rewrapped by another process during the rotation


class DataKeys:
    def __init__(self, store: DataKeyStore, producer, codec, topic: str, ring_text: str):
        self.store, self.producer, self.codec, self.topic = store, producer, codec, topic
        self.current, self.ring = parse_key_ring(ring_text)

    async def keys_for(self, tenant: str, leads: list[str], now_ms: int, create: bool = True) -> dict[str, bytes]:
        """Each lead's data key; created (and made durable) where a lead has none, if `create`.
        Without `create`, a lead without a key raises KeyDestroyed."""
        leads = sorted(set(leads))
        found = await self.store.get(tenant, leads)
        missing = [lead for lead, f in zip(leads, found) if f is None]
        if missing and not create:
            raise KeyDestroyed(f"no data key for {len(missing)} lead(s), e.g. {missing[0]}")
        if missing and not await self.store.intact():
            raise KeysNotRestored(f"Redis was wiped and not rebuilt yet: no data key is made for {len(missing)} "
                                  f"lead(s) until the replay restored those on privacy.keys")
        if missing:
            fresh = [(lead, "", stored(PENDING, self._wrap(tenant, lead, os.urandom(KEY_BYTES)))) for lead in missing]
            await self.store.swap(tenant, fresh)
            found = await self.store.get(tenant, leads)  # ours, or the one another process set first
        pending = [(lead, f[1]) for lead, f in zip(leads, found) if f is not None and f[0] == PENDING]
        if pending:
            await self._write(tenant, pending, now_ms)
            done = await self.store.swap(tenant, [(lead, stored(PENDING, w), stored(DURABLE, w)) for lead, w in pending])
            await self._tombstone_if_gone(tenant, [lead for (lead, _), ok in zip(pending, done) if not ok])
        out = {}
        for lead, f in zip(leads, found):
            if f is None:
                raise KeyDestroyed(f"the data key of {lead} was destroyed while it was being read")
            out[lead] = unwrap(self.ring, f[1], key_aad(tenant, lead))
        return out

    async def existing(self, tenant: str, leads: list[str]) -> dict[str, bytes]:
        """The data keys the leads have (pending or durable); a lead without one is left out
        (erased). On a wiped Redis not rebuilt yet a missing key may only be on the topic:
        KeysNotRestored, so that nothing is read as erased that is not."""
        leads = sorted(set(leads))
        out = {lead: unwrap(self.ring, f[1], key_aad(tenant, lead))
               for lead, f in zip(leads, await self.store.get(tenant, leads)) if f is not None}
        if len(out) < len(leads) and not await self.store.intact():
            raise KeysNotRestored(f"Redis was wiped and not rebuilt yet: {len(leads) - len(out)} lead(s)' data keys "
                                  f"may be on privacy.keys only; fields are opened once the replay restored them")
        return out

    async def durable(self, tenant: str, leads: list[str]) -> dict[str, bytes]:
        """The data keys of these leads that are durable on the topic (a lead without one, or
        whose key is still pending, is left out): what a process that makes no keys may seal with."""
        leads = sorted(set(leads))
        return {lead: unwrap(self.ring, f[1], key_aad(tenant, lead))
                for lead, f in zip(leads, await self.store.get(tenant, leads)) if f is not None and f[0] == DURABLE}

    async def destroy(self, tenant: str, lead: str) -> bool:
        """The lead's key tombstoned on the topic, then gone from Redis; whether it existed."""
        [f] = await self.store.get(tenant, [lead])
        existed = f is not None
        await self.producer.send_many([(self.topic, f"{tenant}/{lead}".encode(), None, None)])
        while f is not None:  # another process may turn it from pending to durable meanwhile
            [gone] = await self.store.swap(tenant, [(lead, stored(*f), "")])
            [f] = [None] if gone else await self.store.get(tenant, [lead])
        return existed

    async def rotate(self, now_ms: int) -> Rotation:
        """Every key not wrapped by the current KEK rewrapped by it (written to the topic first);
        the old KEK can leave the ring once this returns. Safe while everything runs."""
        out = Rotation()
        for tenant in await self.store.tenants():
            batch = []
            async for lead, state, w in self.store.scan(tenant):
                if wrapped_by(w) == self.current:
                    out.already_current += 1
                    continue
                batch.append((lead, state, w))
                if len(batch) >= ROTATE_BATCH:
                    await self._rewrap(tenant, batch, now_ms, out)
                    batch = []
            await self._rewrap(tenant, batch, now_ms, out)
        return out

    async def _rewrap(self, tenant: str, batch: list[tuple[str, str, str]], now_ms: int, out: Rotation) -> None:
        if not batch:
            return
        new = [(lead, state, w, self._wrap(tenant, lead, unwrap(self.ring, w, key_aad(tenant, lead))))
               for lead, state, w in batch]
        await self._write(tenant, [(lead, nw) for lead, _, _, nw in new], now_ms)
        done = await self.store.swap(tenant, [(lead, stored(state, w), stored(DURABLE, nw))
                                              for lead, state, w, nw in new])
        out.rewrapped += sum(done)
        out.changed_meanwhile += len(done) - sum(done)
        await self._tombstone_if_gone(tenant, [lead for (lead, *_), ok in zip(new, done) if not ok])

    async def _tombstone_if_gone(self, tenant: str, leads: list[str]) -> None:
        """A key destroyed while this process was writing it: the record just written must not
        outlive the erasure on the topic, so the tombstone is written again after it."""
        if not leads:
            return
        gone = [lead for lead, f in zip(leads, await self.store.get(tenant, leads)) if f is None]
        if gone and not await self.store.intact():
            # not destroyed: Redis was wiped meanwhile (ls:intact went with it). The record just
            # written is the key the caller seals with; the replay restores it from the topic
            # (a tombstone here left 40 submissions of the chaos drill sealed with a dead key)
            return
        if gone:
            await self.producer.send_many([(self.topic, f"{tenant}/{lead}".encode(), None, None) for lead in gone])

    def _wrap(self, tenant: str, lead: str, dek: bytes) -> str:
        return wrap(self.current, self.ring[self.current], os.urandom(NONCE_BYTES), dek, key_aad(tenant, lead))

    async def _write(self, tenant: str, keys: list[tuple[str, str]], now_ms: int) -> None:
        records = []
        for lead, w in keys:
            ev = {"event_id": new_event_id(now_ms, os.urandom(10)), "tenant": tenant, "occurred_at": now_ms,
                  "schema": "privacy.data_key@1", "causation_id": None, "source": SOURCE, "lead_id": lead,
                  "wrapped": w}
            records.append((self.topic, f"{tenant}/{lead}".encode(), self.codec.encode("privacy.data_key", ev), None))
        await self.producer.send_many(records)
