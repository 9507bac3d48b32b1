"""Hygiene agent: unsubscribe the leads that went cold; keep each lead's current consent.

It follows leads.events (accepted, resubmitted, unsubscribed) and engagement.events (human
opens and clicks) into one sorted set per tenant and channel: each active lead and the last
time a person engaged (or signed up, if never). Every `hygiene_interval_s` it asks the intake
to unsubscribe each lead older than the tenant's window (e.g. 30 days email, 14 days SMS),
with reason "inactive", and records an engagement.unsubscribed(how=inactive) fact.
It also folds the consent ledger (consent.events, and the consent a lead.accepted came with)
into each lead's current consent (projections/redis_consent.py), which the sender checks.
Machine opens and clicks never keep a lead alive. A person's click on an old message from a
lead it pruned asks the intake to subscribe it again (lead.resubscribe_requested,
reactivated_by_click) when the tenant's engagement.reactivate_on_click allows it.

    python -m runtime.prune_once --at 2026-12-31T09:00:00Z    # prune once as if it were that instant
"""
from __future__ import annotations

import hashlib
import time

from ulid import ULID

from domain.consent import entry_of
from domain.engagement import event_ms
from domain.hygiene import cold_cutoff_ms
from domain.list_rules import reactivates_on_click
from schemas.codec import DecodeError
from services.privacy.erased import without_erased
from streams.batching import oldest_ms, run_batch
from streams.topics import CONSENT_EVENTS, ENGAGEMENT_EVENTS, LEAD_EVENTS, SUBMITTED

SOURCE = "agent:hygiene"
PRUNE_BATCH = 5000
PRUNED_KEEP_MS = 365 * 86_400_000  # a click this long after pruning no longer brings a lead back


def register(app, deps) -> None:
    s = deps.settings
    topics = app.topic(deps.topic(LEAD_EVENTS), deps.topic(ENGAGEMENT_EVENTS), deps.topic(CONSENT_EVENTS),
                       value_serializer="raw", key_serializer="raw")

    @app.agent(topics, name="hygiene")
    async def hygiene(stream):
        async for events in stream.take_events(s.batch_size, within=s.batch_seconds):
            values = [e.message.value for e in events]
            await run_batch("hygiene", lambda: follow(deps, values), oldest_event_ms=oldest_ms(events))

    @app.timer(s.hygiene_interval_s)
    async def prune_cold() -> None:
        await run_batch("hygiene_prune", lambda: prune(deps, int(time.time() * 1000)))


def _key(tenant: str, channel: str) -> str:
    return f"ls:lastseen:{tenant}:{channel}"


def _pruned(tenant: str, channel: str) -> str:
    return f"ls:pruned:{tenant}:{channel}"


def last_seen_move(name: str, ev: dict) -> tuple[str, str, str, int] | None:
    """How one event moves its lead's last-seen time: (how, key, lead id, at), how being "first"
    (an acceptance: only a lead not there yet), "later" (added, or moved only forward), "engaged"
    (a person's first-revision open or click: only a lead there, only forward) or "gone"."""
    at = event_ms(ev["occurred_at"])
    if name == "lead.accepted":
        how = "first"
    elif name in ("lead.resubmitted", "lead.resubscribed"):
        how = "later"
    elif name == "lead.unsubscribed":
        how = "gone"
    elif name in ("engagement.opened", "engagement.clicked") and not ev["is_bot"] and ev["revision"] == 0:
        how = "engaged"
    else:
        return None
    return how, _key(ev["tenant"], ev["channel"]), ev["lead_id"], at


async def follow(deps, values: list[bytes | None]) -> int:
    """Move each lead's last-seen time; other agents' bad messages are theirs to dead-letter.
    A person's click from a lead this agent pruned asks for it back, where the tenant allows."""
    decoded = []
    for value in values:
        try:
            decoded.append(deps.codec.decode(value or b""))
        except DecodeError:
            continue
    pipe = deps.redis.pipeline(transaction=False)
    humans, consents = [], []
    for name, ev in await without_erased(deps, decoded, "hygiene"):
        entry = entry_of(name, ev)
        if entry is not None:
            consents.append(entry)
        move = last_seen_move(name, ev)
        if move is None:
            continue
        how, key, lead, at = move
        if how == "gone":
            pipe.zrem(key, lead)
        else:
            pipe.zadd(key, {lead: at}, nx=how == "first", gt=how != "first", xx=how == "engaged")
        if how == "engaged" and name == "engagement.clicked":
            humans.append(ev)
    await pipe.execute()
    await deps.consent_store().fold(consents)
    await _reactivate(deps, humans)
    return len(values)


def _click_reactivates(tenant, click: dict) -> bool:
    lst = tenant.lists.get(click.get("list") or "")
    return reactivates_on_click(lst.rules if lst else None, tenant.engagement.reactivate_on_click)


async def _reactivate(deps, clicks: list[dict]) -> None:
    """Ask the intake to take back the pruned leads a person clicked for (the list's rules, or
    the brand's policy, permitting)."""
    book = deps.tenants
    clicks = [c for c in clicks if c["tenant"] in book.tenants and _click_reactivates(book.tenants[c["tenant"]], c)]
    if not clicks:
        return
    pipe = deps.redis.pipeline(transaction=False)
    for c in clicks:
        pipe.zscore(_pruned(c["tenant"], c["channel"]), c["lead_id"])
    pruned = [c for c, score in zip(clicks, await pipe.execute()) if score is not None]
    if not pruned:
        return
    records = []
    for c in pruned:
        at = event_ms(c["occurred_at"])
        req = {"event_id": _event_id(at, "resubreq", c["event_id"]), "tenant": c["tenant"], "occurred_at": at,
               "schema": "lead.resubscribe_requested@1", "causation_id": c["event_id"], "source": SOURCE,
               "lead_id": c["lead_id"], "reason": "reactivated_by_click", "requested_by": SOURCE}
        records.append((deps.topic(SUBMITTED), c["lead_id"].encode(), deps.codec.encode("lead.resubscribe_requested", req), None))
    await deps.producer.send_many(records)
    pipe = deps.redis.pipeline(transaction=False)
    for c in pruned:
        pipe.zrem(_pruned(c["tenant"], c["channel"]), c["lead_id"])
    await pipe.execute()


def _event_id(at_ms: int, *parts: str) -> str:
    """A ULID fixed by its inputs: pruning the same lead at the same instant twice decides the same event."""
    digest = hashlib.sha256("|".join(parts).encode()).digest()[:10]
    return str(ULID.from_bytes(at_ms.to_bytes(6, "big") + digest))


async def prune(deps, now_ms: int) -> int:
    """Ask to unsubscribe every lead past its tenant's window; returns how many."""
    total = 0
    for tenant in deps.tenants.tenants.values():
        for channel, days in tenant.engagement.inactive_days.items():
            key = _key(tenant.id, channel)
            while True:
                cold = await deps.redis.zrangebyscore(key, "-inf", cold_cutoff_ms(now_ms, days),
                                                      start=0, num=PRUNE_BATCH, withscores=True)
                if not cold:
                    break
                await deps.producer.send_many([r for lead, seen in cold
                                               for r in _records(deps, tenant.id, channel, lead.decode(), int(seen), now_ms, days)])
                pipe = deps.redis.pipeline(transaction=True)
                pipe.zrem(key, *[lead for lead, _ in cold])
                pipe.zadd(_pruned(tenant.id, channel), {lead: now_ms for lead, _ in cold})
                pipe.zremrangebyscore(_pruned(tenant.id, channel), "-inf", now_ms - PRUNED_KEEP_MS)
                await pipe.execute()
                total += len(cold)
    return total


def _records(deps, tenant: str, channel: str, lead_id: str, seen_ms: int, now_ms: int, days: int) -> list[tuple]:
    req_id = _event_id(now_ms, "unsubreq", tenant, lead_id, str(seen_ms))
    env = {"tenant": tenant, "occurred_at": now_ms, "causation_id": None, "source": SOURCE, "lead_id": lead_id}
    request = env | {"event_id": req_id, "schema": "lead.unsubscribe_requested@1", "reason": "inactive",
                     "requested_by": f"{SOURCE}: no human open or click in {days} days"}
    fact = env | {"event_id": _event_id(now_ms, "unsubeng", tenant, lead_id, str(seen_ms)),
                  "schema": "engagement.unsubscribed@1", "causation_id": req_id, "channel": channel,
                  "send_id": "", "list": "", "template": "", "how": "inactive"}
    key = lead_id.encode()
    return [(deps.topic(SUBMITTED), key, deps.codec.encode("lead.unsubscribe_requested", request), None),
            (deps.topic(ENGAGEMENT_EVENTS), key, deps.codec.encode("engagement.unsubscribed", fact), None)]
