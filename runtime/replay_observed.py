"""What the providers' webhooks left in Redis, rebuilt from engagement.observed (part of
`runtime.replay --redis`):

  ls:whfirst:{provider}:{event}  when each provider event of the last 7 days first came: a
                         provider's retry of a webhook without a time of its own (Twilio, some
                         SMS gateways) keeps deciding the same event id, not a new observation
  ls:soft:{tenant}:{lead}        each lead's soft bounces within its brand's window (a lead is
                         suppressed after the brand's limit of them)

Merged into what Redis holds: a first time is written only where there is none, a soft bounce
is added by its event id (a set: adding it again changes nothing).
"""
from __future__ import annotations

from typing import Callable

from agents.engagement import soft_bounce
from domain.engagement import event_ms
from projections.redis_engagement import FIRST_RECEIVED_TTL_S
from projections.redis_bulk import merge_sorted_sets
from runtime.replay_sent import decoded
from streams.topics import ENGAGEMENT_OBSERVED

CHUNK = 5000


def observed_state(events, windows_ms: dict[str, int], now_ms: int) -> tuple[dict, dict]:
    """({whfirst key: (first ms, ms left)}, {soft key: ({event id: ms}, ms left)}) of the
    webhook observations; windows_ms: each brand's soft-bounce window."""
    firsts: dict[str, tuple[int, int]] = {}
    softs: dict[str, tuple[dict[str, int], int]] = {}
    for name, ev in events:
        if name != "webhook.observation":
            continue
        at = event_ms(ev["occurred_at"])
        left = FIRST_RECEIVED_TTL_S * 1000 - (now_ms - at)
        key = f"ls:whfirst:{ev['provider']}:{ev['provider_event_id']}"
        if left > 0 and (key not in firsts or at < firsts[key][0]):
            firsts[key] = (at, left)
        window = windows_ms.get(ev["tenant"], 0)
        if soft_bounce(ev) and now_ms - at < window:
            key = f"ls:soft:{ev['tenant']}:{ev['lead_id']}"
            members, ttl = softs.get(key, ({}, 0))
            members[ev["event_id"]] = at
            softs[key] = (members, max(ttl, window - (now_ms - at)))
    return firsts, softs


async def rebuild_observed(deps, read_topics: Callable, tick: Callable[[str, int, int], None], now_ms: int) -> dict:
    windows = {t.id: t.engagement.soft_bounce_window_days * 86_400_000 for t in deps.tenants.tenants.values()}
    total, msgs = read_topics(deps, [deps.topic(ENGAGEMENT_OBSERVED)])
    bad = [0]
    firsts, softs = observed_state((ev for _, ev in decoded(deps, msgs, total, "engagement.observed", tick, bad)),
                                   windows, now_ms)
    r = deps.redis
    items = list(firsts.items())
    for i in range(0, len(items), CHUNK):
        pipe = r.pipeline(transaction=False)
        for k, (at, left) in items[i:i + CHUNK]:
            pipe.set(k, at, nx=True, px=left)
        await pipe.execute()
    await merge_sorted_sets(r, softs)
    return {"webhook_first_times": len(firsts), "soft_bounce_leads": len(softs), "observed_undecodable": bad[0]}
