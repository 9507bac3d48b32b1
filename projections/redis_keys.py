"""The catalogue of every Redis key family the platform writes, and how each is bounded.

A family is either bounded by something finite (one key per lead, one per tenant, a fixed
set) or a cache with a TTL. The supervisor exports key counts per family, and a test scans
Redis after a run: every key must belong to a family here, and each family must keep its
promise.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass


@dataclass(frozen=True)
class KeyFamily:
    name: str
    pattern: str  # Redis glob
    bound: str  # what bounds it: "per_lead", "per_tenant", "single" or "ttl"
    max_ttl_s: int | None = None  # for bound == "ttl": every key carries a TTL at most this
    holds: str = ""


FAMILIES = (
    KeyFamily("lead", "ls:lead:*", "per_lead", holds="each lead's read model (projection of leads.events)"),
    KeyFamily("optout", "ls:optout:*", "per_tenant", holds="a tenant's opted-out addresses"),
    KeyFamily("blocklist", "ls:block", "single", holds="the global blocklist from the tenant file"),
)


def family_of(key: str) -> KeyFamily | None:
    """The family a key belongs to, or None for a key nobody declared."""
    for f in FAMILIES:
        if fnmatch.fnmatchcase(key, f.pattern):
            return f
    return None
