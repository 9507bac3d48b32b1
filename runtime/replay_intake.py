"""The intake's per-source counts rebuilt from leads.events (part of `runtime.replay --redis`):

  ls:srccap:{tenant}:{list}:{partner}:{UTC day}  the leads a partner brought to a list on each
                         UTC day of the last two: lead.accepted events, counted on the day of
                         their decision (a submission decided just after midnight counts on the
                         next day; live, on the day it was submitted). Every list is counted, not
                         only those capped now: a cap may have been set or lifted since (a few
                         keys per brand, list and partner); a cap set during the day then counts
                         the whole day's leads, never fewer than the intake counted.

Raised to the topics' count where Redis holds less, never lowered.
"""
from __future__ import annotations

from collections import defaultdict

from domain.engagement import event_ms
from domain.intake import _utc_day
from projections.redis_leads import SOURCE_CAP_TTL_S, source_cap_key as cap_key_name


class SourceCounts:
    def __init__(self, book, now_ms: int) -> None:
        self.book, self.now_ms = book, now_ms
        self.counts: dict[str, int] = defaultdict(int)
        self.newest: dict[str, int] = {}

    def fold(self, name: str, ev: dict) -> None:
        if name != "lead.accepted" or ev["tenant"] not in self.book.tenants:
            return
        at = event_ms(ev["occurred_at"])
        if self.now_ms - at < SOURCE_CAP_TTL_S * 1000:
            k = cap_key_name((ev["tenant"], ev["list"], ev["partner"], _utc_day(at)))
            self.counts[k] += 1
            self.newest[k] = max(self.newest.get(k, 0), at)

    async def write(self, r) -> int:
        keys, raised = list(self.counts), 0
        if not keys:
            return 0
        held = await r.mget(keys)
        pipe = r.pipeline(transaction=False)
        for k, h in zip(keys, held):
            if h is None or int(h) < self.counts[k]:
                pipe.set(k, self.counts[k], px=max(1, SOURCE_CAP_TTL_S * 1000 - (self.now_ms - self.newest[k])))
                raised += 1
        await pipe.execute()
        return raised
