"""A batch that fails midway for a moment (Kafka or Redis gone) is retried by run_batch in the
same process; the retry carries on from its own claims. Before, it took them for another
worker's: the sends waited for the lease (5 minutes) and were then reported failed with
"outcome unknown", though they had never been given to a provider."""
from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from email.parser import BytesHeaderParser

import pytest

from domain.lead_input import LeadIn
from domain.identity import new_event_id
from domain.submission import build_submitted
from runtime.deps import build
from runtime.sending import build_send_batch
from schemas.codec import default_codec
from stack.isolated import IsolatedPlatform
from streams.link_log import KafkaLinkLog
from streams.producer import AsyncProducer, ProduceError
from streams.settings import load_tenants
from streams.topic_tail import TopicTail
from tests.integration.conftest import wait_for

CODEC = default_codec()


def _welcome_request(p: IsolatedPlatform, uid: str) -> dict:
    """A lead decided by the real intake; its welcome request as the intake put it on sends.priority."""
    tenant = load_tenants(p.settings.tenants_file).tenants["jobsnearby"]
    lead = LeadIn.model_validate({"email": f"midway.{uid}@example.com", "partner": "ziprecruiter",
                                  "list": "daily-jobs", "location": {"zip": "10001", "country": "US"}})
    now = int(time.time() * 1000)
    sub = build_submitted(lead, tenant, new_event_id(now, uid.encode().ljust(10, b"0")[:10]), now, "test")
    p.produce("leads.submitted", [(sub["lead_id"].encode(), CODEC.encode("lead.submitted", sub))])
    tail = TopicTail(p.settings.kafka_bootstrap, f"{p.prefix}sends.priority")
    [(_, req)] = wait_for(lambda: tail.events(), 90, 0.5, "the welcome request")
    return {k: int(v.timestamp() * 1000) if hasattr(v, "timestamp") else v for k, v in req.items()}


def _delivered(settings, send_id: str) -> int:
    parser, n = BytesHeaderParser(), 0
    for path in settings.mail_dir.glob("*.eml"):
        with open(path, "rb") as f:
            n += parser.parse(f).get("X-Leadstream-Send") == send_id
    return n


def test_a_batch_retried_after_kafka_refused_its_links_sends_once_and_reports_no_unknown_outcome(uid):
    with IsolatedPlatform(redis_db=13, agents=("intake", "planner")) as p:
        req = _welcome_request(p, uid)

        async def scenario():
            deps = build(p.settings)
            batch = build_send_batch(deps)
            real = batch.ports
            nowhere = AsyncProducer("127.0.0.1:9", **{"message.timeout.ms": 1500, "log_level": 0})
            batch.ports = replace(real, links=KafkaLinkLog(nowhere, deps.codec, deps.topic("sends.links")))
            with pytest.raises(ProduceError):  # Kafka did not take the links: nothing may leave
                await batch.run([req], int(time.time() * 1000))
            assert p.redis.get(f"ls:send:{req['send_id']}").startswith(b"inflight|")  # its own claim
            assert _delivered(p.settings, req["send_id"]) == 0
            batch.ports = real  # Kafka is back: run_batch runs the same batch again
            out = await batch.run([req], int(time.time() * 1000))
            nowhere.close(0)
            return out
        out = asyncio.run(scenario())
        assert [name for name, _ in out.events] == ["send.dispatched"]
        assert _delivered(p.settings, req["send_id"]) == 1
        assert p.redis.get(f"ls:send:{req['send_id']}").startswith(b"sent|")
        links = TopicTail(p.settings.kafka_bootstrap, f"{p.prefix}sends.links").events()
        assert [ev["send_id"] for _, ev in links] == [req["send_id"]]
