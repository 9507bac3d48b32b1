"""A batch that fails midway for a moment (Kafka or Redis gone) is retried by run_batch in the
same process; the retry carries on from its own claims. Before, it took them for another
worker's: the sends waited for the lease (5 minutes) and were then reported failed with
"outcome unknown", though they had never been given to a provider. A daily alert's count
against the lead's daily cap is not taken twice either."""
from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from email.parser import BytesHeaderParser

import pytest

from domain.identity import new_event_id
from domain.lead_input import LeadIn
from domain.submission import build_submitted
from runtime.deps import build
from runtime.sending import build_send_batch
from schemas.codec import default_codec
from stack.isolated import IsolatedPlatform
from streams.link_log import KafkaLinkLog
from streams.producer import AsyncProducer, ProduceError
from streams.settings import load_tenants
from streams.topic_tail import TopicTail
from tests.integration.conftest import IDS, wait_for

CODEC = default_codec()


@pytest.fixture(scope="module")
def iso():
    with IsolatedPlatform(redis_db=13, agents=("intake", "planner", "jobs")) as p:
        p.poll_feeds()
        wait_for(lambda: p.redis.hlen("ls:jobs:jobsnearby") >= 6000, 90, what="the feeds' jobs in Redis")
        yield p


def _lead(p: IsolatedPlatform, uid: str) -> str:
    """A lead decided by the real intake, scheduled by the real planner; its id."""
    tenant = load_tenants(p.settings.tenants_file).tenants["jobsnearby"]
    lead = LeadIn.model_validate({"email": f"midway.{uid}@example.com", "partner": "ziprecruiter",
                                  "list": "daily-jobs", "location": {"zip": "10001", "country": "US"},
                                  "interests": {"keywords": ["nurse"], "categories": ["nursing"]}})
    now = int(time.time() * 1000)
    sub = build_submitted(lead, tenant, new_event_id(now, uid.encode().ljust(10, b"0")[:10]), now, "test", ids=IDS)
    p.produce("leads.submitted", [(sub["lead_id"].encode(), CODEC.encode("lead.submitted", sub))])
    return sub["lead_id"]


def _request(p: IsolatedPlatform, topic: str, lead_id: str) -> dict:
    tail = TopicTail(p.settings.kafka_bootstrap, f"{p.prefix}{topic}")
    reqs = wait_for(lambda: [ev for _, ev in tail.events() if ev["lead_id"] == lead_id], 90, 0.5, f"a request on {topic}")
    assert len(reqs) == 1
    return {k: int(v.timestamp() * 1000) if hasattr(v, "timestamp") else v for k, v in reqs[0].items()}


def _delivered(settings, send_id: str) -> int:
    parser, n = BytesHeaderParser(), 0
    for path in settings.mail_dir.glob("*.eml"):
        with open(path, "rb") as f:
            n += parser.parse(f).get("X-Leadstream-Send") == send_id
    return n


def _fail_then_retry(p: IsolatedPlatform, req: dict, now_ms: int, copies: int = 1):
    """The batch once with Kafka refusing its links (nothing may leave), then again (Kafka back)."""
    async def scenario():
        deps = build(p.settings)
        batch = build_send_batch(deps)
        real = batch.ports
        nowhere = AsyncProducer("127.0.0.1:9", **{"message.timeout.ms": 1500, "log_level": 0})
        batch.ports = replace(real, links=KafkaLinkLog(nowhere, deps.codec, deps.topic("sends.links")))
        with pytest.raises(ProduceError):
            await batch.run([req] * copies, now_ms)
        assert p.redis.get(f"ls:send:{req['send_id']}").startswith(b"inflight|")  # its own claim
        assert _delivered(p.settings, req["send_id"]) == 0
        batch.ports = real  # run_batch runs the same batch again
        out = await batch.run([req] * copies, now_ms + 1000)
        nowhere.close(0)
        return out
    return asyncio.run(scenario())


def _sent_once(p: IsolatedPlatform, req: dict, out) -> None:
    assert [name for name, _ in out.events] == ["send.dispatched"]
    assert _delivered(p.settings, req["send_id"]) == 1
    assert p.redis.get(f"ls:send:{req['send_id']}").startswith(b"sent|")
    links = TopicTail(p.settings.kafka_bootstrap, f"{p.prefix}sends.links").events()
    assert [ev["send_id"] for _, ev in links].count(req["send_id"]) == 1
    assert p.redis.llen(f"ls:hist:{req['tenant']}:{req['lead_id']}") >= 1


def test_a_welcome_retried_after_kafka_refused_its_links_goes_once_and_reports_no_unknown_outcome(iso, uid):
    req = _request(iso, "sends.priority", _lead(iso, uid))
    out = _fail_then_retry(iso, req, int(time.time() * 1000))
    _sent_once(iso, req, out)


def test_a_daily_alert_retried_the_same_way_takes_its_daily_cap_once(iso, uid):
    lid = _lead(iso, uid)
    member = f"{lid}|daily-jobs"
    due = int(wait_for(lambda: iso.redis.zscore("ls:due:jobsnearby", member), 60, what="the lead's schedule"))
    _request(iso, "sends.priority", lid)  # its welcome went to the priority topic (not sent here)
    iso.plan(due)
    req = _request(iso, "sends.bulk", lid)
    out = _fail_then_retry(iso, req, due)
    _sent_once(iso, req, out)
    cap = f"ls:cap:jobsnearby:email:{lid}:{req['local_date']}"
    assert iso.redis.get(cap) == b"1"  # the first attempt's count, not taken again


def test_two_copies_of_a_request_in_one_batch_go_out_once_also_when_the_batch_is_retried(iso, uid):
    """A request delivered twice into one batch (an upstream batch redelivered): the second copy
    finds the first one's claim and waits, in the retried attempt as in the first; it is never
    taken for the batch's own earlier claim."""
    req = _request(iso, "sends.priority", _lead(iso, uid))
    out = _fail_then_retry(iso, req, int(time.time() * 1000), copies=2)
    assert sorted(name for name, _ in out.events) == ["send.deferred", "send.dispatched"]
    assert [ev["reason"] for name, ev in out.events if name == "send.deferred"] == ["in_flight_elsewhere"]
    assert _delivered(iso.settings, req["send_id"]) == 1


def test_two_batches_one_sender_works_on_at_once_send_a_request_in_both_once(iso, uid):
    """A bulk sender works on two batches at once (agents/sender.py); a request in both (an
    upstream batch redelivered) goes out once: each batch claims as its own owner, so the
    other waits for the claim or re-emits what the first recorded."""
    req = _request(iso, "sends.priority", _lead(iso, uid))

    async def scenario():
        deps = build(iso.settings)
        first = build_send_batch(deps)
        second = first.twin()
        assert second.owner != first.owner and second.picker.indexes is first.picker.indexes
        now = int(time.time() * 1000)
        return await asyncio.gather(first.run([req], now), second.run([req], now))
    events = [ev for out in asyncio.run(scenario()) for ev in out.events]
    assert _delivered(iso.settings, req["send_id"]) == 1
    assert {name for name, _ in events} <= {"send.dispatched", "send.deferred"}
    assert len({ev["event_id"] for name, ev in events if name == "send.dispatched"}) == 1
