"""Kafka plumbing of the lead-id migration (runtime/rekey.py): whole topics read with their
records' keys, timestamps and headers, topics made again as the catalogue says, copies
produced and counted, consumer groups' positions read and moved."""
from __future__ import annotations

import time
from typing import Iterator

from confluent_kafka import (OFFSET_BEGINNING, Consumer, ConsumerGroupTopicPartitions, KafkaError, Message, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

from streams.topics import TopicSpec


class Kafka:
    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self.admin = AdminClient({"bootstrap.servers": bootstrap})

    def exists(self, topic: str) -> bool:
        return topic in self.admin.list_topics(timeout=10).topics

    def ends(self, topic: str) -> dict[int, tuple[int, int]]:
        """partition -> (low, high) watermarks."""
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "leadstream-rekey"})
        try:
            md = c.list_topics(topic, timeout=10).topics[topic]
            return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in md.partitions}
        finally:
            c.close()

    def count(self, topic: str) -> int:
        return sum(hi - lo for lo, hi in self.ends(topic).values())

    def read(self, topic: str) -> Iterator[Message]:
        """Every record of the topic, partition by partition in offset order."""
        ends = {p: hi for p, (lo, hi) in self.ends(topic).items() if hi > lo}
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "leadstream-rekey",
                      "enable.auto.commit": False, "enable.partition.eof": True,
                      "isolation.level": "read_committed"})
        try:
            for p, hi in sorted(ends.items()):
                c.assign([TopicPartition(topic, p, OFFSET_BEGINNING)])
                done = False
                while not done:
                    for m in c.consume(5000, timeout=1.0):
                        if m.error():
                            if m.error().code() == KafkaError._PARTITION_EOF:
                                done = True
                            continue
                        if m.offset() < hi:
                            yield m
                        if m.offset() + 1 >= hi:
                            done = True
        finally:
            c.close()

    def create(self, topic: str, spec: TopicSpec, default_partitions: int, timeout_s: float = 60.0) -> None:
        """The topic made empty as the catalogue says (a deletion still under way is waited for)."""
        deadline = time.monotonic() + timeout_s
        while True:
            futures = self.admin.create_topics([NewTopic(topic, spec.partitions or default_partitions, 1,
                                                         config=spec.config())], operation_timeout=30)
            try:
                for fut in futures.values():
                    fut.result()
                break
            except Exception as exc:
                if "marked for deletion" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        self._wait(topic, present=True)

    def delete(self, topic: str) -> None:
        if not self.exists(topic):
            return
        for fut in self.admin.delete_topics([topic], operation_timeout=30).values():
            try:
                fut.result()
            except Exception as exc:
                if "UNKNOWN_TOPIC" not in str(exc):
                    raise
        self._wait(topic, present=False)

    def _wait(self, topic: str, present: bool, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.exists(topic) != present:
            if time.monotonic() > deadline:
                raise RuntimeError(f"topic {topic} still {'missing' if present else 'there'} after {timeout_s:.0f} s")
            time.sleep(0.2)

    def producer(self) -> Producer:
        """Partitions records by key as the platform's producers do (librdkafka's default)."""
        return Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 20, "compression.type": "lz4", "message.max.bytes": 4194304,
                         "queue.buffering.max.messages": 500000})

    def group_positions(self, topics: set[str]) -> dict[str, dict[str, dict[int, int]]]:
        """group -> topic -> partition -> committed offset, for every group with one on these topics."""
        groups = [g.group_id for g in self.admin.list_consumer_groups().result().valid]
        out: dict[str, dict[str, dict[int, int]]] = {}
        for g in groups:
            res = self.admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(g)])[g].result()
            for tp in res.topic_partitions or []:
                if tp.topic in topics and tp.offset >= 0:
                    out.setdefault(g, {}).setdefault(tp.topic, {})[tp.partition] = tp.offset
        return out

    def move_to_end(self, group: str, topic: str) -> None:
        parts = [TopicPartition(topic, p, hi) for p, (_, hi) in self.ends(topic).items()]
        self.admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, parts)])[group].result()


def flushed(producer: Producer, what: str) -> None:
    left = producer.flush(120)
    if left:
        raise RuntimeError(f"{left} record(s) of {what} not acknowledged by Kafka in 120 s")
