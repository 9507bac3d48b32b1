"""Consumer-group lag, measured with confluent-kafka's AdminClient.

lag of a partition = end offset - committed offset; a partition the group never committed
counts from its earliest offset (all of it is still to be done).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None  # None: never committed
    earliest: int
    end: int

    @property
    def lag(self) -> int:
        start = self.committed if self.committed is not None and self.committed >= 0 else self.earliest
        return max(self.end - max(start, self.earliest), 0)


@dataclass(frozen=True)
class GroupLag:
    group: str
    partitions: tuple[PartitionLag, ...]

    @property
    def total(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def committed(self) -> int:
        """Sum of committed offsets: it moves while the group makes progress."""
        return sum(p.committed or 0 for p in self.partitions)

    def partition_count(self) -> int:
        """The most partitions of any one topic: more workers than that would sit idle."""
        counts: dict[str, int] = {}
        for p in self.partitions:
            counts[p.topic] = counts.get(p.topic, 0) + 1
        return max(counts.values(), default=0)


class LagProbe:
    """Measures groups' lag on their topics: end offsets through one AdminClient, committed
    offsets through one idle Consumer per group (it never subscribes, so it never joins).

    Committed offsets are not read with the AdminClient's ListConsumerGroupOffsets: when the
    broker drops the connection mid-request, librdkafka (2.16) aborts the whole process in
    that coordinator request path ("rd_kafka_enq_once_del_source_return: Assertion
    `eonce->refcnt > 0' failed", librdkafka#4605, #3663); the drill's broker restart killed
    the supervisor that way. A consumer's OffsetFetch is a different path.
    """

    def __init__(self, bootstrap: str, timeout: float = 10.0):
        self.bootstrap = bootstrap
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        self.timeout = timeout
        self._readers: dict[str, Consumer] = {}
        # one request at a time: concurrent calls on one AdminClient from several threads
        # crashed the process (SIGSEGV in librdkafka) against a broker that had just started
        self._lock = threading.Lock()

    def measure(self, group: str, topics: list[str]) -> GroupLag:
        """The group's lag on every partition of these topics (KafkaException if unreachable)."""
        with self._lock:
            return self._measure(group, topics)

    def _measure(self, group: str, topics: list[str]) -> GroupLag:
        parts = self._partitions(topics)
        if not parts:
            return GroupLag(group, ())
        committed = self._committed(group, parts)
        ends = self._offsets(parts, OffsetSpec.latest())
        earliest = self._offsets(parts, OffsetSpec.earliest())
        return GroupLag(group, tuple(
            PartitionLag(t, p, committed.get((t, p)), earliest[(t, p)], ends[(t, p)]) for t, p in parts))

    def _partitions(self, topics: list[str]) -> list[tuple[str, int]]:
        md = self.admin.list_topics(timeout=self.timeout).topics
        missing = [t for t in topics if t not in md]
        if missing:
            raise LookupError(f"topics not found: {', '.join(missing)} (run ./dev up to create them)")
        return [(t, p) for t in topics for p in sorted(md[t].partitions)]

    def _committed(self, group: str, parts: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        reader = self._readers.get(group)
        if reader is None:
            reader = self._readers[group] = Consumer({
                "bootstrap.servers": self.bootstrap, "group.id": group, "enable.auto.commit": False,
                "enable.auto.offset.store": False, "log_level": 2})
        out = {}
        for tp in reader.committed([TopicPartition(t, p) for t, p in parts], timeout=self.timeout):
            if tp.error is None and tp.offset >= 0:
                out[(tp.topic, tp.partition)] = tp.offset
        return out

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()

    def _offsets(self, parts: list[tuple[str, int]], spec: OffsetSpec) -> dict[tuple[str, int], int]:
        futures = self.admin.list_offsets({TopicPartition(t, p): spec for t, p in parts},
                                          request_timeout=self.timeout)
        return {(tp.topic, tp.partition): f.result(timeout=self.timeout).offset
                for tp, f in futures.items()}
