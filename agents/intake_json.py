"""JSON intake agent: the queue path for partners who write to Kafka directly, and the leads
the API held while no data key could be had.

A message on leads.intake.json is {"tenant": "...", "lead": {...the API's lead body...}}; one on
product.intake.json is {"tenant": "...", "event": {...the events API's body...}}, taken as the
API takes it (services/product_intake.py) onto product.events.
A JSON lead is checked like an API request and re-keyed by lead_id onto leads.submitted (the
named re-keying step), its personal fields sealed with the lead's data key; anything malformed
goes to the dead-letter topic with the reason and its values blanked (domain/redaction.py). A
lead.submitted on leads.held (taken by the API with Redis away) goes on to leads.submitted as
it is, sealed now. A lead of an erased person (the do-not-contact list) is refused and counted
(leadstream_leads_refused_total), never written: not even a dead letter may hold their address
again. The three topics are raw input, clear: every forget_interval_s what the group has read
of them is deleted (streams/forgetting.py).
"""
from __future__ import annotations

import asyncio
import logging
import time

from domain.identity import derived_event_id
from domain.input_checks import queue_message
from domain.lead_input import LeadIn
from domain.redaction import redacted_json
from domain.submission import SubmissionError, build_submitted
from schemas.codec import DecodeError
from services.product_intake import Queued, take_queued
from streams import metrics
from streams.batching import oldest_ms, run_batch
from streams.dead_letter import dead_letter
from streams.forgetting import Forgetter
from streams.topics import INTAKE_JSON, LEADS_HELD, PRODUCT_EVENTS, PRODUCT_INTAKE, SUBMITTED

SOURCE = "queue"
log = logging.getLogger(__name__)


def register(app, deps) -> None:
    s = deps.settings
    topic = app.topic(*[deps.topic(t) for t in (INTAKE_JSON, LEADS_HELD, PRODUCT_INTAKE)], value_serializer="raw",
                      key_serializer="raw")
    forgetter = Forgetter(s.kafka_bootstrap, s.topic_prefix, "intake_json")

    @app.agent(topic, name="intake_json")
    async def intake_json(stream):
        async for events in stream.take_events(s.batch_size, within=s.batch_seconds):
            msgs = [(e.message.topic, e.message.partition, e.message.offset, e.message.key,
                     e.message.value, int(e.message.timestamp * 1000)) for e in events]
            await run_batch("intake_json", lambda: rekey(deps, msgs),
                            oldest_event_ms=oldest_ms(events))

    @app.timer(interval=s.forget_interval_s)
    async def forget_read_input() -> None:
        try:
            await asyncio.to_thread(forgetter.forget)
        except Exception as exc:  # noqa: BLE001 - the next tick tries again; nothing is lost by waiting
            log.warning("raw input read but not forgotten yet: %r", exc)


async def rekey(deps, msgs: list[tuple]) -> int:
    """Turn each JSON lead into a lead.submitted keyed by its lead_id, each JSON product event
    into a product.tracked."""
    now_ms = int(time.time() * 1000)
    products = [m for m in msgs if m[0].endswith(PRODUCT_INTAKE)]
    out: list = await _products(deps, products, now_ms) if products else []
    subs: list[dict] = []
    submitted = deps.topic(SUBMITTED)
    for topic, partition, offset, key, value, ts_ms in msgs:
        if topic.endswith(PRODUCT_INTAKE):
            continue
        # Id and time come from the message's position and timestamp: a redelivered
        # message yields the identical event, which the intake then skips.
        event_id = derived_event_id(f"{topic}/{partition}/{offset}", "lead.submitted", ts_ms)
        try:
            sub = held(deps, value) if topic.endswith(LEADS_HELD) else parse(deps, value, event_id, ts_ms)
        except ValueError as exc:
            out.append(dead_letter(topic, partition, offset, key, kept(topic, value), str(exc), "intake_json", now_ms))
            continue
        subs.append(sub)
    hits = await deps.do_not_contact().erased([(s["tenant"], s["lead_id"]) for s in subs])
    for sub in [sub for sub, hit in zip(subs, hits) if hit]:  # counted, never written (not even a dead letter)
        metrics.LEADS_REFUSED.labels(sub["tenant"], "queue").inc()
    taken = [("lead.submitted", sub) for sub, hit in zip(subs, hits) if not hit]
    out += [(submitted, sub["lead_id"].encode(), deps.codec.encode("lead.submitted", sub), None)
            for sub in await deps.sealer().seal(taken, now_ms)]  # personal fields: the lead's data key
    await deps.producer.send_many(out)
    return len(msgs)


async def _products(deps, msgs: list[tuple], now_ms: int) -> list:
    taken = await take_queued(deps, [Queued(f"{t}/{p}/{o}", ts, v) for t, p, o, _, v, ts in msgs], now_ms)
    out = [dead_letter(*msgs[i][:4], kept(msgs[i][0], msgs[i][4]), reason, "intake_json", now_ms)
           for i, reason in taken.refused]
    topic = deps.topic(PRODUCT_EVENTS)
    return out + [(topic, (d["lead_id"] or d["event_id"]).encode(), deps.codec.encode("product.tracked", d), None)
                  for _, d in taken.events]


def kept(topic: str, value: bytes | None) -> bytes:
    """What a dead letter keeps of refused raw input: the JSON with its values blanked (a
    partner's, personal, clear); nothing of a held lead that did not decode."""
    return b"" if topic.endswith(LEADS_HELD) else redacted_json(value)


def held(deps, value: bytes | None) -> dict:
    """A lead the API took clear: the lead.submitted as it was made (its id, time and source)."""
    try:
        name, ev = deps.codec.decode(value or b"")
    except DecodeError as exc:
        raise ValueError(f"not a lead.submitted: {exc}") from exc
    if name != "lead.submitted":
        raise ValueError(f"not a lead.submitted: {name}")
    return ev


def parse(deps, value: bytes | None, event_id: str, now_ms: int) -> dict:
    """The lead.submitted event for one JSON message; ValueError says what is wrong."""
    tenant, lead = queue_message(value, "lead", LeadIn, deps.tenants.tenants)
    try:
        return build_submitted(lead, tenant, event_id, now_ms, SOURCE, strict=False, ids=deps.lead_ids)
    except SubmissionError as exc:
        raise ValueError(f"invalid lead: {exc.field}: {exc}") from exc

