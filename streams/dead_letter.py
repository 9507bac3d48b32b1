"""Dead-letter records: the original bytes, the reason, and where they came from."""
from __future__ import annotations

import logging

from streams import metrics
from streams.producer import Record
from streams.topics import dlq

log = logging.getLogger("leadstream.dead_letter")


def dead_letter(topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
                reason: str, consumer: str, now_ms: int) -> Record:
    """The record that sends one bad message to its topic's dead-letter topic."""
    metrics.EVENTS_DEAD_LETTERED.labels(consumer).inc()
    log.warning("dead-lettered %s/%d@%d: %s", topic, partition, offset, reason[:300],
                extra={"agent": consumer, "topic": topic, "partition": partition, "offset": offset})
    headers = [
        ("dlq.reason", reason[:2000].encode()),
        ("dlq.topic", topic.encode()),
        ("dlq.partition", str(partition).encode()),
        ("dlq.offset", str(offset).encode()),
        ("dlq.consumer", consumer.encode()),
        ("dlq.at_ms", str(now_ms).encode()),
    ]
    return (dlq(topic), key, value if value is not None else b"", headers)
