"""The use case of changing the configuration: decide, claim, write, wait until applied.

Used by the management API and by `./dev config import`. A batch of changes is decided in
order against one snapshot (each seeing the ones before it), checked whole, claimed (no other
writer may write the same versions), written in one Kafka transaction, and returned once this
process's own view has applied it, so a read right after a write sees the write.
"""
from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import Protocol

from domain.config_changes import Change, Entity, Refused, decide, evolve
from domain.config_entities import Ref
from domain.identity import new_event_id


class View(Protocol):
    def snapshot(self) -> dict[str, Entity]: ...
    def wait_for(self, offset: int, timeout_s: float = 10.0) -> bool: ...


class Writer(Protocol):
    def write(self, events: list[tuple[str, dict]]) -> list[int]: ...


class Claims(Protocol):
    async def claim(self, wanted: list[tuple[str, int]], owner: str) -> list[tuple[str, int]]: ...
    async def release(self, held: list[tuple[str, int]]) -> None: ...


@dataclass(frozen=True)
class Applied:
    """What became of one change: the entity's version and data now (data None: deleted)."""

    ref: Ref
    version: int
    data: dict | None
    changed: bool
    event_id: str | None = None


class ConfigService:
    """Applies changes to the configuration; owns nothing but the order of the steps."""

    def __init__(self, view: View, writer: Writer, claims: Claims, owner: str | None = None):
        self.view, self.writer, self.claims = view, writer, claims
        self.owner = owner or f"{os.uname().nodename}:{os.getpid()}"

    def current(self, ref: Ref) -> Entity | None:
        """The entity as this process knows it now (None if it never existed)."""
        return self.view.snapshot().get(ref.key)

    async def apply(self, changes: list[Change], wait_s: float = 10.0) -> list[Applied]:
        """Make the changes, all or none; raises Refused (nothing applied) or ConfigWriteError."""
        state = self.view.snapshot()
        now_ms = int(time.time() * 1000)
        events, applied, creates = [], [], set()
        for change in changes:
            decided = decide(state, change, now_ms, new_event_id(now_ms, os.urandom(10)))
            if decided is None:
                e = state[change.ref.key]
                applied.append(Applied(change.ref, e.version, e.data, False))
                continue
            name, ev = decided
            if change.op == "create":
                creates.add(ev["entity_key"])
            evolve(state, ev)
            events.append((name, ev))
            e = state[change.ref.key]
            applied.append(Applied(change.ref, e.version, e.data, True, ev["event_id"]))
        wanted = [(ev["entity_key"], ev["version"]) for _, ev in events]
        taken = await self.claims.claim(wanted, self.owner)
        if taken:
            key, version = taken[0]
            if key in creates:
                raise Refused(409, "already_exists", f"{key} is being created by someone else right now")
            raise Refused(412, "version_mismatch", f"{key} was changed by someone else at the same time: "
                                                   f"read it again and retry")
        try:
            offsets = await asyncio.to_thread(self.writer.write, events)
        except Exception:
            await self.claims.release(wanted)
            raise
        if offsets:
            await asyncio.to_thread(self.view.wait_for, max(offsets), wait_s)
        return applied
