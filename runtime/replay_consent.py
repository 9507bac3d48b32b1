"""Each lead's current consent rebuilt from the ledger (part of `runtime.replay --redis`):
consent.events and the consent lead.accepted came with (collected while the leads are folded,
so leads.events is read once), folded again by the store the hygiene agent writes through. The
fold ranks records by their own time, so any order of the two gives what the live agent kept.
"""
from __future__ import annotations

from typing import Callable

from domain.consent import entry_of
from runtime.replay_forget import forget
from schemas.codec import DecodeError
from streams.topics import CONSENT_EVENTS

PREFIXES = ("ls:consent:", "ls:consentoff:")
CHUNK = 5000


class AcceptedConsents:
    """The consent each lead.accepted came with, collected during the leads' fold."""

    def __init__(self):
        self.entries: list[dict] = []

    def fold(self, name: str, ev: dict) -> None:
        if name == "lead.accepted" and ev.get("consent"):
            self.entries.append(entry_of(name, ev))


async def rebuild_consent(deps, read_topics: Callable, tick: Callable[[str, int, int], None],
                          accepted: AcceptedConsents, forgotten: bool = False) -> dict:
    """Delete every lead's current consent (unless the caller did), fold the ledger again; counts
    of what was folded."""
    if not forgotten:
        await forget(deps.redis, PREFIXES)
    store = deps.consent_store()
    for i in range(0, len(accepted.entries), CHUNK):
        await store.fold(accepted.entries[i:i + CHUNK])
    total, msgs = read_topics(deps, [deps.topic(CONSENT_EVENTS)])
    entries, folded, bad = [], len(accepted.entries), 0
    for _, _, _, value in msgs:
        tick("consent ledger", 1, total)
        try:
            name, ev = deps.codec.decode(value or b"")
        except DecodeError:
            bad += 1
            continue
        entry = entry_of(name, ev)
        if entry is not None:
            entries.append(entry)
        if len(entries) >= CHUNK:
            await store.fold(entries)
            folded, entries = folded + len(entries), []
    await store.fold(entries)
    return {"consent_records": folded + len(entries), "consent_undecodable": bad}
