"""Reading a topic from its beginning up to its end as it is now (tools, the demo, tests)."""
from __future__ import annotations

import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from schemas.codec import Codec, default_codec


class TopicTail:
    """Every event of one topic so far, decoded; each call to events() reads what came since."""

    def __init__(self, bootstrap: str, topic: str, codec: Codec | None = None):
        self.codec = codec or default_codec()
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"tail-{uuid.uuid4().hex}",
                                  "enable.auto.commit": False})
        parts = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self.parts = [TopicPartition(topic, n, OFFSET_BEGINNING) for n in parts]
        self.consumer.assign(self.parts)
        self.next = {n: 0 for n in parts}
        self.seen: list[tuple[str, dict]] = []

    def events(self, timeout_s: float = 30.0) -> list[tuple[str, dict]]:
        """Read up to the topic's end as it is now (its high watermarks); every event seen so far."""
        ends = {tp.partition: self.consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in self.parts}
        deadline = time.monotonic() + timeout_s
        while any(self.next[n] < end for n, end in ends.items()) and time.monotonic() < deadline:
            for m in self.consumer.consume(5000, 0.5):
                if not m.error():
                    self.next[m.partition()] = m.offset() + 1
                    self.seen.append(self.codec.decode(m.value()))
        return self.seen

    def close(self) -> None:
        self.consumer.close()
