"""What a compacted topic says now: the latest record of each key, as the replay reads it."""
from __future__ import annotations

from typing import Callable

from schemas.codec import DecodeError


def latest_per_key(deps, read_topics: Callable, topic: str, tick: Callable[[str, int, int], None],
                   label: str) -> tuple[dict[bytes, dict | None], int]:
    """(key -> its latest event, None for a tombstone; how many records did not decode). An
    undecodable record leaves the key as its earlier records left it."""
    total, msgs = read_topics(deps, [deps.topic(topic)], with_keys=True)
    latest: dict[bytes, dict | None] = {}
    bad = 0
    for key, value in msgs:
        tick(label, 1, total)
        if value is None:
            latest[key] = None
            continue
        try:
            _, ev = deps.codec.decode(value)
        except DecodeError:
            bad += 1
            continue
        latest[key] = ev
    return latest, bad
