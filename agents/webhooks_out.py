"""Outbound webhooks agent: a tenant's events -> the tenant's HTTP endpoint, signed, in order.

leads.events, sends.events, engagement.events -> POST to tenant.webhook.url (failover_url
when the primary fails), for every event whose name matches one of the tenant's
`webhook.events` patterns (fnmatch). The HTTP side -- HMAC signing, failover, backoff,
one lead's events strictly one after another -- is channels/webhooks_out.py.

Per batch: decode (undecodable -> the input topic's dead-letter topic, as everywhere), deliver
each tenant's events with deliver_in_order keyed by lead id in the order they were consumed,
then produce what ended "dead" to webhooks.outbound.dead (key lead_id, value the original
Avro bytes, headers saying where, why and after how many requests) and wait for Kafka. Only
then does the batch return and its offsets get committed: every event is delivered or
recorded as dead, nothing is lost. Delivery is at least once (a crash mid-batch delivers the
batch again); the X-Leadstream-Event-Id header lets the tenant drop the duplicates.

The body (orjson):
    {"event_id", "event": name, "tenant", "lead_id", "occurred_at": ms, "data": the whole event}
with every timestamp in `data` as epoch milliseconds, as in the schemas' examples.

A batch waits for its slowest lead, retries included, so the policy's delays stay short:
a dead endpoint costs an event at most `attempts` rounds of two requests and ~12 s of backoff.
"""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta, timezone
from fnmatch import fnmatchcase

import httpx
import orjson

from channels.webhooks_out import Delivery, Endpoint, HookPolicy, deliver_in_order
from domain.tenants import Tenant
from schemas.codec import DecodeError
from streams.batching import oldest_ms, run_batch
from streams.dead_letter import dead_letter
from streams.producer import Record
from streams.topics import ENGAGEMENT_EVENTS, LEAD_EVENTS, SEND_EVENTS, WEBHOOKS_OUT_DEAD

AGENT = "webhooks_out"
TOPICS = (LEAD_EVENTS, SEND_EVENTS, ENGAGEMENT_EVENTS)
BASE_DELAY_S = 0.5  # backoff between rounds: 0.5, 1, 2, 4, 5, 5 ... (jittered into [half, all])
MAX_DELAY_S = 5.0
TIMEOUT_S = 5.0  # per request, all of it
LEADS_AT_ONCE = 32  # per tenant: leads whose events are in flight together
BATCH_SIZE_CAP = 500  # events per batch at most: a batch waits for its slowest lead

log = logging.getLogger("leadstream.webhooks_out")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def register(app, deps) -> None:
    s = deps.settings
    topics = app.topic(*[deps.topic(t) for t in TOPICS], value_serializer="raw", key_serializer="raw")
    # one client per worker: its connections are kept alive across batches; redirects are
    # never followed (a 3xx is a permanent failure, see channels.webhooks_out.classify)
    client = httpx.AsyncClient(follow_redirects=False,
                               limits=httpx.Limits(max_connections=None, max_keepalive_connections=64))

    @app.agent(topics, name=AGENT)
    async def webhooks_out(stream):
        async for events in stream.take_events(min(s.batch_size, BATCH_SIZE_CAP), within=s.batch_seconds):
            msgs = [(e.message.topic, e.message.partition, e.message.offset, e.message.key,
                     e.message.value) for e in events]
            await run_batch(AGENT, batch(deps, client, msgs), oldest_event_ms=oldest_ms(events))


def batch(deps, client: httpx.AsyncClient, msgs: list[tuple]):
    """The batch function for run_batch. Deliveries happen once; if producing the records
    afterwards fails (Kafka), run_batch's retry produces them again without delivering again."""
    records: list[Record] | None = None

    async def run() -> int:
        nonlocal records
        if records is None:
            records = await push(deps, client, msgs)
        await deps.producer.send_many(records)
        return len(msgs)
    return run


async def push(deps, client: httpx.AsyncClient, msgs: list[tuple]) -> list[Record]:
    """Deliver what the tenants subscribed to; returns the dead-letter and dead-hook records."""
    now_ms = int(time.time() * 1000)
    out: list[Record] = []
    todo: dict[str, list[tuple[Tenant, str, dict, tuple]]] = {}  # tenant id -> its events, in order
    for msg in msgs:
        topic, partition, offset, key, value = msg
        try:
            name, ev = deps.codec.decode(value or b"")
        except DecodeError as exc:
            out.append(dead_letter(topic, partition, offset, key, value, f"undecodable: {exc}", AGENT, now_ms))
            continue
        tenant = deps.tenants.tenants.get(ev.get("tenant"))
        if tenant is not None and wants(tenant, name):
            todo.setdefault(tenant.id, []).append((tenant, name, ev, msg))
    for tid, items in todo.items():  # the brand's own endpoint gets the personal fields opened
        opened = await deps.sealer().open([(name, ev) for _, name, ev, _ in items])
        todo[tid] = [(tenant, name, ev, msg) for (name, ev), (tenant, _, _, msg) in zip(opened, items)]
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(deliver_tenant(client, items)) for items in todo.values()]
    for items, task in zip(todo.values(), tasks):
        for (tenant, name, ev, msg), result in zip(items, task.result()):
            if result.status == "dead":
                out.append(dead_hook(deps, tenant, name, ev, msg, result, now_ms))
    return out


def wants(tenant: Tenant, name: str) -> bool:
    """True when the tenant has a webhook and subscribed to events called `name`."""
    hook = tenant.webhook
    return hook is not None and any(fnmatchcase(name, pattern) for pattern in hook.events)


async def deliver_tenant(client: httpx.AsyncClient, items: list[tuple[Tenant, str, dict, tuple]]) -> list[Delivery]:
    """One tenant's events, one Delivery each, in order; one lead's events one after another."""
    hook = items[0][0].webhook
    primary = Endpoint(hook.url, hook.secret)
    failover = Endpoint(hook.failover_url, hook.secret) if hook.failover_url else None
    policy = HookPolicy(attempts=hook.attempts, base_delay_s=BASE_DELAY_S, max_delay_s=MAX_DELAY_S,
                        timeout_s=TIMEOUT_S)
    work = [(lead_of(ev, msg), ev["event_id"], body(name, ev)) for _, name, ev, msg in items]
    return await deliver_in_order(client, primary, failover, work, policy, concurrency=LEADS_AT_ONCE)


def lead_of(ev: dict, msg: tuple) -> str:
    """The lead the event is about (its Kafka key when the event has none)."""
    key = msg[3]
    return ev.get("lead_id") or (key.decode("utf-8", "replace") if key else "")


def body(name: str, ev: dict) -> bytes:
    """What the tenant receives: a small envelope around the whole event."""
    return orjson.dumps({"event_id": ev["event_id"], "event": name, "tenant": ev["tenant"],
                         "lead_id": ev.get("lead_id"), "occurred_at": ev["occurred_at"], "data": ev},
                        default=_millis, option=orjson.OPT_PASSTHROUGH_DATETIME)


def _millis(value):
    """orjson's fallback: Avro timestamp-millis come back as datetimes; send them as epoch ms."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return (aware - _EPOCH) // timedelta(milliseconds=1)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dead_hook(deps, tenant: Tenant, name: str, ev: dict, msg: tuple, result: Delivery, now_ms: int) -> Record:
    """The webhooks.outbound.dead record of an event no endpoint took: the original bytes."""
    topic, partition, offset, key, value = msg
    hook = tenant.webhook
    log.warning("webhook dead: %s %s of tenant %s after %d requests: %s", name, ev["event_id"], tenant.id,
                result.attempts, result.last_error[:300],
                extra={"agent": AGENT, "tenant": tenant.id, "topic": topic, "partition": partition,
                       "offset": offset})
    lead = lead_of(ev, msg)
    headers = [
        ("webhook.endpoint", hook.url.encode()),
        ("webhook.failover", hook.failover_url.encode()),
        ("webhook.error", result.last_error[:2000].encode()),
        ("webhook.attempts", str(result.attempts).encode()),
        ("webhook.event", name.encode()),
        ("webhook.event_id", ev["event_id"].encode()),
        ("webhook.tenant", tenant.id.encode()),
        ("webhook.topic", topic.encode()),
        ("webhook.partition", str(partition).encode()),
        ("webhook.offset", str(offset).encode()),
        ("webhook.at_ms", str(now_ms).encode()),
    ]
    return (deps.topic(WEBHOOKS_OUT_DEAD), lead.encode() if lead else key, value, headers)
