"""Engagement agent: what the tracking front and the providers observed -> what it was.

engagement.observed (engagement.hit, webhook.observation) ->
  engagement.events  opened / clicked (human, bot or proxy, and why), unsubscribed, replied, complained
  sends.events       send.delivered / send.bounced
  leads.submitted    lead.unsubscribe_requested (one-click, SMS STOP, hard bounce, complaint, soft bounces)
  sends.priority     the answer to an SMS reply (STOP / HELP / START confirmations, more jobs)

Per batch: decode, open the ips sealed with the leads' data keys, one Redis round trip for the
messages' recent clicks and the soft-bounce counts, decide in order (domain.engagement), seal
the ips of what it decided again, produce and wait for Kafka, then move the per-lead counters
(only for event ids not counted before) and save the recent clicks.
"""
from __future__ import annotations

import time

from domain.bots import BotPolicy, SendActivity
from domain.engagement import Policy, decide_hit, decide_observation, engagement_counts, event_ms
from domain.sealing import ip_kept
from domain.sms_replies import classify_reply
from projections.redis_engagement import EngagementStore
from schemas.codec import DecodeError
from services.privacy.erased import without_erased
from streams.batching import oldest_ms, run_batch
from streams.dead_letter import dead_letter
from streams.topics import ENGAGEMENT_EVENTS, ENGAGEMENT_OBSERVED, SEND_EVENTS, SENDS_PRIORITY, SUBMITTED

ROLE_TOPIC = {"engagement": ENGAGEMENT_EVENTS, "lead_input": SUBMITTED, "send_events": SEND_EVENTS,
              "priority": SENDS_PRIORITY}


def register(app, deps) -> None:
    s = deps.settings
    topic = app.topic(deps.topic(ENGAGEMENT_OBSERVED), value_serializer="raw", key_serializer="raw")

    @app.agent(topic, name="engagement")
    async def engagement(stream):
        async for events in stream.take_events(s.batch_size, within=s.batch_seconds):
            msgs = [(e.message.topic, e.message.partition, e.message.offset, e.message.key,
                     e.message.value) for e in events]
            await run_batch("engagement", lambda: process(deps, msgs), oldest_event_ms=oldest_ms(events))


def policy_of(tenant) -> Policy:
    e = tenant.engagement
    return Policy(bots=BotPolicy(min_click_delay_s=e.min_click_delay_s, burst_window_s=e.burst_window_s),
                  soft_bounce_limit=e.soft_bounce_limit,
                  soft_bounce_window_ms=e.soft_bounce_window_days * 86_400_000,
                  more_keywords=tuple(e.more_keywords))


async def process(deps, msgs: list[tuple]) -> int:
    """Decide a batch of observations; returns how many were processed."""
    store = EngagementStore(deps.redis)
    now_ms = int(time.time() * 1000)
    out, todo = [], []
    for topic, partition, offset, key, value in msgs:
        try:
            name, ev = deps.codec.decode(value or b"")
            tenant = deps.tenants.tenants[ev["tenant"]]
        except (DecodeError, KeyError) as exc:
            out.append(dead_letter(topic, partition, offset, key, value, f"engagement: {exc!r}", "engagement", now_ms))
            continue
        todo.append((name, ev, tenant))
    todo = await without_erased(deps, todo, "engagement")
    opened = await deps.sealer().open([(name, ev) for name, ev, _ in todo])  # the ip the bot filter reads
    todo = [(name, ev, tenant) for (name, ev), (_, _, tenant) in zip(opened, todo)]
    acts = await store.activities(sorted({ev["send_id"] for n, ev, _ in todo if n == "engagement.hit" and ev["send_id"]}))
    softs = [(ev["tenant"], ev["lead_id"], ev["event_id"], event_ms(ev["occurred_at"])) for n, ev, _ in todo
             if n == "webhook.observation" and soft_bounce(ev)]
    counts = dict(zip([s[2] for s in softs], await _soft_counts(store, softs, todo)))
    decided = []
    for name, ev, tenant in todo:
        policy = policy_of(tenant)
        if name == "engagement.hit":
            activity, recent = acts.get(ev["send_id"]) or (SendActivity(), {})
            outs, activity, recent = decide_hit(ev, activity, policy, recent)
            if ev["send_id"]:
                acts[ev["send_id"]] = (activity, recent)
        elif name == "webhook.observation" and ev["lead_id"]:
            intent = classify_reply(ev["text"], policy.more_keywords) if ev["kind"] == "reply" else None
            outs = decide_observation(ev, counts.get(ev["event_id"], 0), policy, intent)
        else:
            outs = []  # an observation no lead could be found for: kept on its topic, nothing to decide
        decided.extend(outs)
    kept = await deps.sealer().seal([(n, ev) for _, n, ev in decided], now_ms)  # the ip sealed again
    out += [(deps.topic(ROLE_TOPIC[role]), ev["lead_id"].encode(), deps.codec.encode(n, ip_kept(ev)), None)
            for (role, n, _), ev in zip(decided, kept)]
    await deps.producer.send_many(out)
    await store.apply(counter_updates(decided))
    await store.save_activities({sid: a for sid, a in acts.items() if a[0].recent_clicks or a[0].honeypot_at_ms})
    return len(msgs)


def soft_bounce(ev: dict) -> bool:
    return ev["kind"] in ("bounced", "failed") and ev["bounce_type"] != "hard" and bool(ev["lead_id"])


async def _soft_counts(store, softs, todo) -> list[int]:
    if not softs:
        return []
    by_tenant = {t.id: t for _, _, t in todo}
    window = max(by_tenant[s[0]].engagement.soft_bounce_window_days for s in softs) * 86_400_000
    return await store.soft_bounces(softs, window)


def counter_updates(decided: list) -> list[dict]:
    """The per-lead counter moves of the decided opens and clicks."""
    ups = []
    for role, name, ev in decided:
        inc = engagement_counts(name, ev)
        if not inc:
            continue
        at = event_ms(ev["occurred_at"])
        human_first = not ev["is_bot"] and ev.get("revision", 0) == 0
        what = "open" if name == "engagement.opened" else "click"
        ups.append({"seen": f"{ev['event_id']}:{ev.get('revision', 0)}", "key": (ev["tenant"], ev["lead_id"]),
                    "inc": inc, "max": {"last_human_ms": at, f"last_human_{what}_ms": at} if human_first else {}})
    return ups

