"""Engagement state rebuilt from the topics (part of `runtime.replay --redis`):

  ls:lastseen:{tenant}:{channel}  each active lead's last human engagement (or sign-up): the
                         hygiene agent prunes from it, so a lead missing there would never be
                         pruned. Folded with the agent's own rule (agents.hygiene.last_seen_move)
                         from leads.events, then engagement.events.
  ls:pruned:{tenant}:{channel}    leads pruned as inactive in the last year and still out
                         (a person's click may bring them back)
  ls:eng:{tenant}:{lead}          opens and clicks (human and machine), last human times, score:
                         the counters the engagement agent moves (agents.engagement.counter_updates)
  ls:engseen:{event}:{revision}   the engagement events of the last 7 days, counted already: a
                         redelivered observation moves no counter twice

Merged into what Redis holds, never lowered: a last-seen time or a last human time moves only
forward, a counter is raised to the topics' count where Redis holds less (after a wipe the
workers may have counted a few events again; the topics hold those too), so running it
against a Redis that kept its state changes nothing, also where the topics' retention dropped
older events.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable

from agents.engagement import counter_updates
from agents.hygiene import PRUNED_KEEP_MS, _pruned, last_seen_move
from domain.engagement import event_ms, score
from projections.redis_engagement import SEEN_TTL_S, eng_key
from runtime.replay_sent import decoded
from streams.topics import ENGAGEMENT_EVENTS

CHUNK = 5000
MAX_FIELDS = ("last_human_ms", "last_human_open_ms", "last_human_click_ms")


class LastSeen:
    """The hygiene agent's sorted sets, folded in memory: key -> {lead: ms}."""

    def __init__(self) -> None:
        self.sets: dict[str, dict[str, int]] = defaultdict(dict)

    def fold(self, name: str, ev: dict) -> None:
        move = last_seen_move(name, ev)
        if move is None:
            return
        how, key, lead, at = move
        members = self.sets[key]
        if how == "gone":
            members.pop(lead, None)
        elif how == "first":
            members.setdefault(lead, at)
        elif how == "later" or lead in members:
            members[lead] = max(members.get(lead, at), at)


class Counters:
    """Each lead's engagement counters and the events counted lately."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms
        self.leads: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.seen: dict[str, int] = {}  # ls:engseen key -> ms left to live
        self.counted: set[str] = set()  # every event id:revision folded

    def fold(self, name: str, ev: dict) -> None:
        for u in counter_updates([(None, name, ev)]):
            if u["seen"] in self.counted:
                # the same event twice on the topic: a batch the agent retried after Kafka took
                # its events (Redis away before the counters moved) produces them again, and the
                # agent's ls:engseen counts them once (the chaos drill: live 1, replayed 2)
                continue
            self.counted.add(u["seen"])
            fields = self.leads[eng_key(*u["key"])]
            for f, n in u["inc"].items():
                fields[f] += n
            for f, ms in u["max"].items():
                fields[f] = max(fields[f], ms)
            left = SEEN_TTL_S * 1000 - (self.now_ms - event_ms(ev["occurred_at"]))
            if left > 0:
                self.seen[f"ls:engseen:{u['seen']}"] = left


def pruned_still_out(name: str, ev: dict, states: dict, now_ms: int) -> tuple[str, str, int] | None:
    """(key, lead, when) of a lead the hygiene agent pruned within the year and that is still out."""
    if name != "engagement.unsubscribed" or ev.get("how") != "inactive":
        return None
    at = event_ms(ev["occurred_at"])
    st = states.get((ev["tenant"], ev["lead_id"]))
    if now_ms - at >= PRUNED_KEEP_MS or st is None or st.status == "accepted":
        return None
    return _pruned(ev["tenant"], ev["channel"]), ev["lead_id"], at


async def rebuild_engagement(deps, read_topics: Callable, tick: Callable[[str, int, int], None],
                             last_seen: LastSeen, states: dict, now_ms: int) -> dict:
    """last_seen: already folded with leads.events (runtime.replay folds them in one pass)."""
    total, msgs = read_topics(deps, [deps.topic(ENGAGEMENT_EVENTS)])
    counters, pruned, bad = Counters(now_ms), defaultdict(dict), [0]
    for _, (name, ev) in decoded(deps, msgs, total, "engagement.events", tick, bad):
        last_seen.fold(name, ev)
        counters.fold(name, ev)
        out = pruned_still_out(name, ev, states, now_ms)
        if out is not None:
            pruned[out[0]][out[1]] = max(pruned[out[0]].get(out[1], 0), out[2])
    r = deps.redis
    for sets in (last_seen.sets, pruned):
        for key, members in sets.items():
            items = list(members.items())
            for i in range(0, len(items), CHUNK):
                await r.zadd(key, dict(items[i:i + CHUNK]), gt=True)
    raised = await _merge_counters(r, counters.leads)
    seen = list(counters.seen.items())
    for i in range(0, len(seen), CHUNK):
        pipe = r.pipeline(transaction=False)
        for k, left in seen[i:i + CHUNK]:
            pipe.set(k, 1, nx=True, px=left)
        await pipe.execute()
    return {"last_seen": sum(map(len, last_seen.sets.values())), "pruned": sum(map(len, pruned.values())),
            "engagement_counters": raised, "engagement_seen": len(seen), "engagement_undecodable": bad[0]}


def merged_counters(held: dict[str, int], rebuilt: dict[str, int]) -> dict[str, int]:
    """Every field the larger of the two; the score from the merged counters."""
    out = {f: max(held.get(f, 0), rebuilt.get(f, 0)) for f in set(held) | set(rebuilt) if f != "score"}
    out["score"] = score(out)
    return out


async def _merge_counters(r, leads: dict[str, dict[str, int]]) -> int:
    keys, raised = list(leads), 0
    for i in range(0, len(keys), CHUNK):
        chunk = keys[i:i + CHUNK]
        pipe = r.pipeline(transaction=False)
        for k in chunk:
            pipe.hgetall(k)
        helds = [{f.decode(): int(v) for f, v in h.items()} for h in await pipe.execute()]
        pipe = r.pipeline(transaction=False)
        for k, held in zip(chunk, helds):
            merged = merged_counters(held, leads[k])
            if merged != held:
                pipe.hset(k, mapping=merged)
                raised += 1
        await pipe.execute()
    return raised
