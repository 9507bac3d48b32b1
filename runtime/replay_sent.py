"""What was sent, rebuilt from the topics after a Redis wipe (part of `runtime.replay --redis`):

  ls:link:{code}         every tracked link of the last 90 days, from sends.links (the sender
                         makes them durable there before a message leaves), so a click on an
                         email sent before the wipe still finds where it goes
  ls:hist:{tenant}:{lead}      each lead's last 50 sends (send.dispatched, 90 days)
  ls:sentjobs:{tenant}:{lead}  the jobs sent to each lead in the last 14 days (the sender does
                         not send a job again within that)
  ls:pmsg:{provider}:{id}      the send behind each provider message id of the last 30 days
                         (provider webhooks are matched to their send by it)

Each is written only where Redis has nothing for it (NX, or a list or set that is missing), so
running it against a Redis that kept its state changes nothing, and every key gets the lifetime
it has left.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Callable, Iterable

import orjson

from domain.links import LINKS_EVENT, records_of
from domain.sending import RESEND_JOBS_AFTER_MS
from projections.redis_sends import (HIST_KEEP, HIST_TTL_S, LINK_TTL_S, PMSG_TTL_S, SENTJOBS_TTL_S,
                                     history_entry, provider_message)
from schemas.codec import DecodeError
from streams.topics import SEND_LINKS

CHUNK = 5000


def decoded(deps, msgs, total: int, what: str, tick, bad: list[int]):
    """(raw value, (name, event)) of each message that decodes; counts the others in bad[0]."""
    for _, _, _, value in msgs:
        tick(what, 1, total)
        try:
            yield value, deps.codec.decode(value or b"")
        except DecodeError:
            bad[0] += 1


def _ms(v) -> int:
    return int(v.timestamp() * 1000) if isinstance(v, datetime) else int(v)


def histories(dispatched: Iterable[dict], now_ms: int) -> dict[str, tuple[list[bytes], int]]:
    """key -> (entries newest first, at most HIST_KEEP; ms left to live) of each lead with a
    send within the history's lifetime."""
    by_lead: dict[str, list[dict]] = defaultdict(list)
    for d in dispatched:
        if now_ms - _ms(d["occurred_at"]) < HIST_TTL_S * 1000:
            by_lead[f"ls:hist:{d['tenant']}:{d['lead_id']}"].append(d)
    out = {}
    for key, sends in by_lead.items():
        sends.sort(key=lambda d: (_ms(d["occurred_at"]), d["send_id"]), reverse=True)
        newest = _ms(sends[0]["occurred_at"])
        out[key] = ([history_entry(d, _ms(d["occurred_at"])) for d in sends[:HIST_KEEP]],
                    HIST_TTL_S * 1000 - (now_ms - newest))
    return out


def sent_jobs(dispatched: Iterable[dict], now_ms: int) -> dict[str, tuple[dict[str, int], int]]:
    """key -> ({job key: when sent}; ms left to live) of the jobs sent in the resend window."""
    out: dict[str, tuple[dict[str, int], int]] = {}
    for d in dispatched:
        at = _ms(d["occurred_at"])
        if not d.get("job_keys") or now_ms - at >= RESEND_JOBS_AFTER_MS:
            continue
        key = f"ls:sentjobs:{d['tenant']}:{d['lead_id']}"
        jobs, ttl = out.get(key, ({}, 0))
        for k in d["job_keys"]:
            jobs[k] = max(jobs.get(k, 0), at)
        out[key] = (jobs, max(ttl, SENTJOBS_TTL_S * 1000 - (now_ms - at)))
    return out


def provider_messages(dispatched: Iterable[dict], now_ms: int) -> dict[str, tuple[bytes, int]]:
    """key -> (what the provider's message id stands for; ms left to live)."""
    out = {}
    for d in dispatched:
        left = PMSG_TTL_S * 1000 - (now_ms - _ms(d["occurred_at"]))
        value = provider_message(d)
        if value is not None and left > 0:
            out[f"ls:pmsg:{d['provider']}:{d['provider_id']}"] = (value, left)
    return out


async def write_sent(redis, dispatched: list[dict], now_ms: int) -> dict:
    """History, jobs sent and provider message ids, where Redis has none."""
    hist, jobs, pmsgs = histories(dispatched, now_ms), sent_jobs(dispatched, now_ms), provider_messages(dispatched, now_ms)
    written = {"histories": 0, "sent_jobs": 0, "provider_messages": 0}
    for keys, what in ((list(hist), "histories"), (list(jobs), "sent_jobs")):
        for i in range(0, len(keys), CHUNK):
            chunk = keys[i:i + CHUNK]
            pipe = redis.pipeline(transaction=False)
            for k in chunk:
                pipe.exists(k)
            missing = [k for k, there in zip(chunk, await pipe.execute()) if not there]
            pipe = redis.pipeline(transaction=False)
            for k in missing:
                if what == "histories":
                    entries, left = hist[k]
                    pipe.rpush(k, *entries)
                else:
                    members, left = jobs[k]
                    pipe.zadd(k, members)
                pipe.pexpire(k, max(1, left))
            await pipe.execute()
            written[what] += len(missing)
    items = list(pmsgs.items())
    for i in range(0, len(items), CHUNK):
        pipe = redis.pipeline(transaction=False)
        for k, (value, left) in items[i:i + CHUNK]:
            pipe.set(k, value, nx=True, px=left)
        written["provider_messages"] += sum(1 for ok in await pipe.execute() if ok)
    return written


async def rebuild_links(deps, read_topics: Callable, tick: Callable[[str, int, int], None],
                        now_ms: int) -> dict:
    """Every link record of the last 90 days from sends.links, where Redis has none."""
    total, msgs = read_topics(deps, [deps.topic(SEND_LINKS)])
    written, bad = 0, [0]
    pipe, queued = deps.redis.pipeline(transaction=False), 0
    for _, (name, ev) in decoded(deps, msgs, total, "sends.links", tick, bad):
        created = _ms(ev["occurred_at"])
        left = LINK_TTL_S * 1000 - (now_ms - created)
        if name != LINKS_EVENT or left <= 0:
            continue
        for rec in records_of(ev, created):
            pipe.set(f"ls:link:{rec['code']}", orjson.dumps(rec), nx=True, px=left)
            queued += 1
        if queued >= CHUNK:
            written += sum(1 for ok in await pipe.execute() if ok)
            pipe, queued = deps.redis.pipeline(transaction=False), 0
    if queued:
        written += sum(1 for ok in await pipe.execute() if ok)
    return {"links": written, "link_topic_undecodable": bad[0]}
