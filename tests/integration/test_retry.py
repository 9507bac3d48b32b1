"""The retry agent: a request deferred for hours never holds up the requests behind it on its
partition (a START confirmation once waited behind a welcome deferred by quiet hours), and a
held request comes back at its time."""
from __future__ import annotations

import time

from schemas.codec import default_codec
from stack.isolated import IsolatedPlatform
from tests.integration.conftest import wait_for
from streams.topic_tail import TopicTail

CODEC = default_codec()


def request(n: int, not_before: int, kind: str = "welcome") -> dict:
    now = int(time.time() * 1000)
    return {"event_id": f"01RETRYTEST{n:015d}", "tenant": "jobsnearby", "occurred_at": now,
            "schema": "send.requested@4", "causation_id": None, "source": "test", "lead_id": "L-same-partition",
            "send_id": f"retry-test-{n}", "channel": "sms", "list": "sms-alerts", "kind": kind, "due_at": now,
            "local_date": "2026-12-04", "attempt": 1, "not_before": not_before, "trigger": None, "partner": ""}


def test_a_request_held_for_hours_does_not_hold_up_the_next_and_comes_back_at_its_time():
    with IsolatedPlatform(redis_db=62, agents=("retry",)) as p:
        now = int(time.time() * 1000)
        later, soon, late = request(1, now + 3_600_000), request(2, now + 1_000), request(3, now + 8_000)
        p.produce("sends.retry", [(b"L-same-partition", CODEC.encode("send.requested", r)) for r in (later, soon, late)])
        tail = TopicTail(p.settings.kafka_bootstrap, f"{p.prefix}sends.priority")
        got = wait_for(lambda: [ev["send_id"] for _, ev in tail.events()], 60, what="the request due in a second")
        assert got == ["retry-test-2"]  # not behind the one held for an hour
        wait_for(lambda: len(tail.events()) == 2, 60, what="the request due in eight seconds")
        assert [ev["send_id"] for _, ev in tail.events()] == ["retry-test-2", "retry-test-3"]
        assert p.redis.zrange("ls:retryq", 0, -1) == [b"01RETRYTEST000000000000001"]  # held, durably
        assert p.redis.exists("ls:retry:01RETRYTEST000000000000001")


def test_held_requests_lost_with_redis_come_back_from_sends_retry_but_not_one_already_acted_on():
    """Redis loses the delay queue: the replay puts back each send's latest deferred attempt
    that the sender never acted on, with its due time and the very bytes it was held with."""
    with IsolatedPlatform(redis_db=62, agents=("retry",)) as p:
        now = int(time.time() * 1000)
        hour, day, acted = request(11, now + 3_600_000), request(12, now + 86_400_000), request(13, now + 7_200_000)
        p.produce("sends.retry", [(b"L-same-partition", CODEC.encode("send.requested", r)) for r in (hour, day, acted)])
        ids = sorted(r["event_id"].encode() for r in (hour, day, acted))
        wait_for(lambda: sorted(p.redis.zrange("ls:retryq", 0, -1)) == ids, 60, what="three requests held")
        before = {i: (p.redis.zscore("ls:retryq", i), p.redis.get(b"ls:retry:" + i)) for i in ids}
        # the sender acted on the third one (deferred it again, say): its event says so
        deferred = {"event_id": "01RETRYTESTDEFERRED0000013", "tenant": "jobsnearby", "occurred_at": now,
                    "schema": "send.deferred@2", "causation_id": acted["event_id"], "source": "test",
                    "lead_id": "L-same-partition", "send_id": acted["send_id"], "channel": "sms",
                    "list": "sms-alerts", "kind": "welcome", "partner": "", "reason": "quiet_hours",
                    "retry_at": now + 9_000_000, "attempt": 1}
        p.produce("sends.events", [(b"L-same-partition", CODEC.encode("send.deferred", deferred))])
        p.stop_workers()
        p.redis.delete("ls:retryq", *[b"ls:retry:" + i for i in ids])
        out = p.replay("--redis")
        assert "replay done" in out
        kept = [i for i in ids if i != acted["event_id"].encode()]
        assert sorted(p.redis.zrange("ls:retryq", 0, -1)) == kept
        for i in kept:
            assert (p.redis.zscore("ls:retryq", i), p.redis.get(b"ls:retry:" + i)) == before[i]
