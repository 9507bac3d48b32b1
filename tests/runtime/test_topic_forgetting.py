"""Bounded forgetting on the real broker: privacy.keys (an erased lead's data key) is compacted
within an hour and its tombstones kept a day, on a topic the bootstrap creates and on one made
before the bound existed (set in place, its other settings kept)."""
from __future__ import annotations

import uuid

from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from runtime.bootstrap import ensure_forgetting
from streams.settings import get_settings
from streams.topics import DATA_KEYS, TOMBSTONES_KEPT_MS

WANT = {"max.compaction.lag.ms": "3600000", "segment.ms": "3600000", "min.cleanable.dirty.ratio": "0.01",
        "delete.retention.ms": str(TOMBSTONES_KEPT_MS)}


def configs(admin: AdminClient, topic: str) -> dict[str, str]:
    [fut] = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)]).values()
    return {k: v.value for k, v in fut.result().items()}


def test_the_key_topic_forgets_within_an_hour_on_the_live_stack():
    s = get_settings()
    got = configs(AdminClient({"bootstrap.servers": s.kafka_bootstrap}), f"{s.topic_prefix}{DATA_KEYS}")
    assert {k: got[k] for k in WANT} == WANT and got["cleanup.policy"] == "compact"


def test_a_key_topic_made_before_the_bound_gets_it_in_place():
    s = get_settings().model_copy(update={"topic_prefix": f"forget-{uuid.uuid4().hex[:8]}."})
    admin = AdminClient({"bootstrap.servers": s.kafka_bootstrap})
    topic = f"{s.topic_prefix}{DATA_KEYS}"
    [fut] = admin.create_topics([NewTopic(topic, 1, 1, config={"cleanup.policy": "compact",
                                                               "retention.ms": "-1"})]).values()
    fut.result()
    try:
        before = configs(admin, topic)
        assert before["max.compaction.lag.ms"] != WANT["max.compaction.lag.ms"]
        assert ensure_forgetting(s) == [topic]
        after = configs(admin, topic)
        assert {k: after[k] for k in WANT} == WANT
        assert after["cleanup.policy"] == "compact" and after["retention.ms"] == "-1"  # the rest kept
        assert ensure_forgetting(s) == []  # nothing left to change
    finally:
        [fut] = admin.delete_topics([topic]).values()
        fut.result()
