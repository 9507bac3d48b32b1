"""What was sent, rebuilt from the topics after a Redis wipe (part of `runtime.replay --redis`):

  ls:link:{code}         every tracked link of the last 90 days, from sends.links (the sender
                         makes them durable there before a message leaves), so a click on an
                         email sent before the wipe still finds where it goes
  ls:hist:{tenant}:{lead}      each lead's last 50 sends (send.dispatched, 90 days)
  ls:sentjobs:{tenant}:{lead}  the jobs sent to each lead in the last 14 days (the sender does
                         not send a job again within that)
  ls:pmsg:{provider}:{id}      the send behind each provider message id of the last 30 days
                         (provider webhooks are matched to their send by it)
  ls:cap:{tenant}:{channel}:{lead}:{local date}  daily alerts sent to each lead on its local
                         days of the last two (the per-lead daily cap)
  ls:daycap:{tenant}:{channel}:{UTC day}  a brand's sends per channel on the UTC days of the
                         last two (its daily volume); what the sender took but did not send
                         (a failure) is not in the topics, so this is a lower bound

Links and provider message ids are written only where Redis has none (NX). A history or a set
of jobs sent that Redis already holds is merged with the replayed one, not skipped: after a wipe
the workers go on sending until someone acts, so a lead's history may already hold a send made
after the wipe while the ones before it are only in the topics. Running it against a Redis that
kept its state changes nothing, and every key keeps the longer of its lifetime and the one the
topics give it.
"""
from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime
from typing import Callable, Iterable

import orjson

from domain.links import LINKS_EVENT, records_of
from domain.sending import DAILY_CAPPED, RESEND_JOBS_AFTER_MS, is_reply
from projections.redis_bulk import lists_where_absent, merge_sorted_sets, raise_counts, set_missing
from projections.redis_sends import (CAP_TTL_S, HIST_KEEP, HIST_TTL_S, LINK_TTL_S, PMSG_TTL_S, SENTJOBS_TTL_S,
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
    by_lead: dict[str, dict[str, dict]] = defaultdict(dict)
    for d in dispatched:  # one entry a send: a worker killed before its commit emits it again
        if now_ms - _ms(d["occurred_at"]) < HIST_TTL_S * 1000:
            seen = by_lead[f"ls:hist:{d['tenant']}:{d['lead_id']}"]
            if d["send_id"] not in seen or _ms(d["occurred_at"]) < _ms(seen[d["send_id"]]["occurred_at"]):
                seen[d["send_id"]] = d
    out = {}
    for key, by_send in by_lead.items():
        sends = sorted(by_send.values(), key=lambda d: (_ms(d["occurred_at"]), d["send_id"]), reverse=True)
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


def daily_counts(dispatched: Iterable[dict], local_date_of: Callable[[dict], str],
                 now_ms: int) -> dict[str, tuple[int, int]]:
    """key -> (sends counted; ms left to live) of the per-lead daily caps and the brands' daily
    volumes the sends of the last two days took. local_date_of(dispatched): the lead's local
    date of that send, as the planner named it."""
    counts: dict[str, int] = defaultdict(int)
    newest: dict[str, int] = {}
    counted: set[str] = set()
    for d in dispatched:
        at = _ms(d["occurred_at"])
        if now_ms - at >= CAP_TTL_S * 1000 or d["send_id"] in counted:  # a send emitted twice counts once
            continue
        counted.add(d["send_id"])
        keys = []
        if d["kind"] in DAILY_CAPPED:
            keys.append(f"ls:cap:{d['tenant']}:{d['channel']}:{d['lead_id']}:{local_date_of(d)}")
        if not is_reply(d):
            keys.append(f"ls:daycap:{d['tenant']}:{d['channel']}:{time.strftime('%Y-%m-%d', time.gmtime(at / 1000))}")
        for k in keys:
            counts[k] += 1
            newest[k] = max(newest.get(k, 0), at)
    return {k: (n, CAP_TTL_S * 1000 - (now_ms - newest[k])) for k, n in counts.items()}


def merged_history(held: list[bytes], replayed: list[bytes]) -> list[bytes]:
    """A lead's history as Redis holds it joined with the replayed one: each send once (Redis's
    entry where both have it), newest first, at most HIST_KEEP."""
    by_send = {orjson.loads(e)["send_id"]: e for e in replayed}
    by_send.update((orjson.loads(e)["send_id"], e) for e in held)

    def newest(e: bytes) -> tuple[int, str]:
        doc = orjson.loads(e)
        return doc["at"], doc["send_id"]
    return sorted(by_send.values(), key=newest, reverse=True)[:HIST_KEEP]


async def _merge_histories(redis, hist: dict[str, tuple[list[bytes], int]]) -> int:
    """Each history Redis lacks written as replayed (the usual case after a wipe: one call per
    thousand leads); the ones it holds merged with the replayed ones."""
    keys = await lists_where_absent(redis, hist)
    changed = sum(1 for entries, _ in hist.values() if entries) - len(keys)
    for i in range(0, len(keys), CHUNK):
        chunk = keys[i:i + CHUNK]
        pipe = redis.pipeline(transaction=False)
        for k in chunk:
            pipe.lrange(k, 0, -1)
            pipe.pttl(k)
        got = await pipe.execute()
        pipe = redis.pipeline(transaction=True)
        for n, k in enumerate(chunk):
            held, ttl = got[2 * n], got[2 * n + 1]
            entries, left = hist[k]
            merged = merged_history(held, entries)
            if merged == held:
                continue
            pipe.delete(k)
            pipe.rpush(k, *merged)
            pipe.pexpire(k, max(1, left, ttl))
            changed += 1
        await pipe.execute()
    return changed


async def write_sent(redis, dispatched: list[dict], local_date_of: Callable[[dict], str], now_ms: int) -> dict:
    """History, jobs sent and daily counts merged into what Redis holds; provider message ids
    where Redis has none."""
    hist, jobs, pmsgs = histories(dispatched, now_ms), sent_jobs(dispatched, now_ms), provider_messages(dispatched, now_ms)
    # a count is raised to the topics' where Redis holds fewer (the workers may have counted
    # sends made after a wipe: those are in the topics too)
    return {"histories": await _merge_histories(redis, hist), "sent_jobs": await merge_sorted_sets(redis, jobs, gt=True),
            "daily_counts": await raise_counts(redis, daily_counts(dispatched, local_date_of, now_ms)),
            "provider_messages": await set_missing(redis, [(k, v, left) for k, (v, left) in pmsgs.items()])}


async def rebuild_links(deps, read_topics: Callable, tick: Callable[[str, int, int], None],
                        now_ms: int) -> dict:
    """Every link record of the last 90 days from sends.links, where Redis has none."""
    total, msgs = read_topics(deps, [deps.topic(SEND_LINKS)])
    written, bad, items = 0, [0], []
    for _, (name, ev) in decoded(deps, msgs, total, "sends.links", tick, bad):
        created = _ms(ev["occurred_at"])
        left = LINK_TTL_S * 1000 - (now_ms - created)
        if name != LINKS_EVENT or left <= 0:
            continue
        items += [(f"ls:link:{rec['code']}", orjson.dumps(rec), left) for rec in records_of(ev, created)]
        if len(items) >= CHUNK:
            written, items = written + await set_missing(deps.redis, items), []
    written += await set_missing(deps.redis, items)
    return {"links": written, "link_topic_undecodable": bad[0]}
