"""Moving a log to keyed lead ids (the migration `./dev privacy rekey`): what one record becomes.
Pure: the runtime reads the topics, finds each old id's new one and the leads' data keys.

A record keeps everything but the lead ids it holds: its key ("L" or "tenant/L"), every string
of its value that is an old id, at any depth (lead_id fields, lists of members), and the sealed
fields, whose authenticated data names the lead: opened under the old id, sealed again under the
new one with the same data key. A personal field written before sealing existed is sealed now;
a person erased before it (no key any more) has such clear fields emptied.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

from domain.sealing import (NOTHING_KEPT, PERSONAL_FIELDS, SEALED_PROPERTIES, SealError, emptied_clear, has_sealed,
                            open_event, seal_event)

MIGRATION = "keyed-lead-ids"


def remapped(value, ids: Mapping[str, str]):
    """The value with every string that is an old lead id replaced by the new one, at any depth."""
    if isinstance(value, str):
        return ids.get(value, value) if len(value) == 24 else value
    if isinstance(value, dict):
        return {k: remapped(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [remapped(v, ids) for v in value]
    return value


def remapped_key(key: bytes | None, ids: Mapping[str, str]) -> bytes | None:
    """A record key naming a lead ("L", or "tenant/L" on the key topics) under the new id."""
    if key is None:
        return None
    try:
        text = key.decode()
    except UnicodeDecodeError:
        return key
    head, sep, last = text.rpartition("/")
    new = ids.get(last)
    return key if new is None else f"{head}{sep}{new}".encode()


@dataclass(frozen=True)
class LeadKey:
    """What the migration knows of a lead's data key: the key itself, or that it was destroyed."""

    dek: bytes | None
    destroyed: bool = False


def rekeyed_event(name: str, ev: dict, ids: Mapping[str, str], key: LeadKey, nonce: Callable[[], bytes],
                  keep: frozenset[str] = NOTHING_KEPT) -> dict:
    """The event under the new lead ids, its personal fields sealed under the new id (with the
    lead's own key) or, the key destroyed, its sealed fields left unreadable and its clear ones
    emptied. An event without a lead id or personal fields only has its ids replaced. `keep`:
    the free properties (of product events) the brand keeps clear."""
    if (name not in PERSONAL_FIELDS and name not in SEALED_PROPERTIES) or "lead_id" not in ev:
        return remapped(ev, ids)
    if key.dek is None:
        return emptied_clear(name, remapped(ev, ids)) if key.destroyed else remapped(ev, ids)
    try:
        opened = open_event(name, ev, key.dek) if has_sealed(name, ev) else ev
    except SealError:  # sealed for another lead or field: unreadable before, left so
        opened = ev
    return seal_event(name, remapped(opened, ids), key.dek, nonce, keep)
