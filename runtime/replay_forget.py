"""The Redis read models a rebuild replaces, forgotten before it writes them again.

Each family is named by a key prefix. `forget` walks the keyspace once for all the prefixes it
is given: the replay forgets every family in one pass before writing anything, since one SCAN
MATCH per family after the earlier steps had filled Redis (18 passes over a keyspace of a
million keys and more) cost it 10-15 s of waiting. A rebuild step run on its own (tests, one
family) forgets its own families the same way.
"""
from __future__ import annotations

CHUNK = 5000


async def forget(r, prefixes: tuple[str, ...]) -> int:
    """Delete every key that starts with one of `prefixes`; how many were deleted."""
    as_bytes, as_text = tuple(p.encode() for p in prefixes), tuple(prefixes)
    doomed, n = [], 0
    async for key in r.scan_iter(count=CHUNK):  # keys deleted while scanning are never returned twice
        if key.startswith(as_bytes if key.__class__ is bytes else as_text):
            doomed.append(key)
            if len(doomed) >= CHUNK:
                n += await r.delete(*doomed)
                doomed = []
    if doomed:
        n += await r.delete(*doomed)
    return n
