"""The sender's Redis state rebuilt from the topics (part of `runtime.replay --redis`):
its at-most-once marks from sends.events, and the retry agent's held requests from sends.retry.

Marks.
After Redis was emptied, a send request delivered again (a batch whose offsets were not
committed, a replayed topic) would find no mark and be sent a second time. So every send id
dispatched, or failed for good, within the marks' lifetime (MARK_TTL_S) gets its settled mark
back: "sent|{event}" / "failed|{event}" holding the very event, so a redelivered request
re-emits that event instead of sending, with the lifetime it has left. Written with NX: a mark
that is there (a live claim) is kept. Dispatched wins over failed for one send id.

Held requests. Every deferral puts the request, one attempt later, on sends.retry; the retry
agent keeps the ones due later in its delay queue (ls:retryq). A send's latest attempt that
the sender never acted on (no event on sends.events caused by it) is still waiting: it is put
back in the queue with its due time. One already sent back to its topic but not yet acted on
may be put back too; the send id's mark makes sending it twice impossible.
"""
from __future__ import annotations

import time
from datetime import datetime
from typing import Callable

import orjson

from agents.retry import PREFIX as RETRY_PREFIX, QUEUE as RETRY_QUEUE, TTL_S as RETRY_TTL_S
from domain.sending import topic_for
from projections.redis_bulk import set_missing
from projections.redis_delays import DelayQueue
from projections.redis_sends import HIST_TTL_S, MARK_TTL_S, mark_key
from runtime.replay_sent import decoded as _decoded, rebuild_links, write_sent
from streams.topics import SEND_EVENTS, SENDS_RETRY

SETTLED = {"send.dispatched": "sent", "send.failed": "failed"}


def _ms(v) -> int:
    return int(v.timestamp() * 1000) if isinstance(v, datetime) else int(v)


def _as_produced(ev: dict) -> dict:
    """The event as the sender produced it (times as epoch ms), so it can be encoded again."""
    return {k: _ms(v) if isinstance(v, datetime) else v for k, v in ev.items()}


def settled_sends(decoded, now_ms: int) -> dict[str, tuple[str, dict]]:
    """send id -> (event name, event) of the sends settled within the marks' lifetime."""
    out: dict[str, tuple[str, dict]] = {}
    for name, ev in decoded:
        if name not in SETTLED or now_ms - _ms(ev["occurred_at"]) >= MARK_TTL_S * 1000:
            continue
        sid = ev["send_id"]
        if name == "send.failed" and out.get(sid, ("",))[0] == "send.dispatched":
            continue
        out[sid] = (name, _as_produced(ev))
    return out


def waiting_retries(requests, acted_on: set[str], now_ms: int) -> list[tuple[str, int, bytes]]:
    """(id, due ms, payload) of each send's latest deferred attempt the sender never acted on.
    requests: (message key, raw value, decoded request) of sends.retry, in any order."""
    latest: dict[str, tuple[int, bytes | None, bytes, dict]] = {}
    for key, value, req in requests:
        sid, attempt = req["send_id"], req.get("attempt", 0)
        if sid not in latest or attempt > latest[sid][0]:
            latest[sid] = (attempt, key, value, req)
    out = []
    for _, key, value, req in latest.values():
        due = _ms(req["not_before"]) if req.get("not_before") is not None else now_ms
        if req["event_id"] in acted_on or now_ms - due >= RETRY_TTL_S * 1000:
            continue
        out.append((req["event_id"], due, topic_for(req).encode() + b"\n" + (key or b"") + b"\n" + value))
    return out


async def rebuild_sends(deps, read_topics: Callable, tick: Callable[[str, int, int], None],
                        local_date_of: Callable[[dict], str], now_ms: int | None = None) -> dict:
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    bad, acted_on, dispatched = [0], set(), []

    def events():
        total, msgs = read_topics(deps, [deps.topic(SEND_EVENTS)])
        for _, (name, ev) in _decoded(deps, msgs, total, "sends.events", tick, bad):
            acted_on.add(ev.get("causation_id") or "")
            if name == "send.dispatched" and now_ms - _ms(ev["occurred_at"]) < HIST_TTL_S * 1000:
                dispatched.append(ev)
            yield name, ev
    settled = settled_sends(events(), now_ms)
    marks = await _write_marks(deps, settled, now_ms)
    sent = await write_sent(deps.redis, dispatched, local_date_of, now_ms)
    links = await rebuild_links(deps, read_topics, tick, now_ms)
    total, msgs = read_topics(deps, [deps.topic(SENDS_RETRY)])
    # keyed by lead id, like every send topic
    requests = [(req["lead_id"].encode(), value, req)
                for value, (_, req) in _decoded(deps, msgs, total, "sends.retry", tick, bad)]
    waiting = waiting_retries(requests, acted_on, now_ms)
    await DelayQueue(deps.redis, RETRY_QUEUE, RETRY_PREFIX, RETRY_TTL_S).schedule(waiting)
    return {"send_marks": marks, "retries_waiting": len(waiting), "send_topics_undecodable": bad[0], **sent, **links}


async def _write_marks(deps, settled: dict[str, tuple[str, dict]], now_ms: int) -> int:
    return await set_missing(deps.redis, [
        (mark_key(sid), f"{SETTLED[name]}|{orjson.dumps({'name': name, 'event': ev}).decode()}",
         MARK_TTL_S * 1000 - (now_ms - ev["occurred_at"])) for sid, (name, ev) in settled.items()])
