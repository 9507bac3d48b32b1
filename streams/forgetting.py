"""Forgetting raw input once read: the records of a topic holding personal data clear (a
partner's own JSON, leads taken while no data key could be had) are deleted as soon as the
consumer group of the agent that seals them has committed past them.

A committed offset means every record before it was processed and what it became (sealed) was
acknowledged by Kafka first (the agents produce before their offsets are committed), so the
log start moves up to it with Kafka's DeleteRecords: the broker stops serving those records at
once and removes their segments from disk. Deleting below the log start is a no-op, so every
worker of the agent may run it, as may an erasure.
"""
from __future__ import annotations

import logging
import threading

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from streams.topics import forgotten_once_read

log = logging.getLogger(__name__)


def forget_once(bootstrap: str, prefix: str, agent: str) -> dict[str, int]:
    """Forgetter.forget with clients made for this one call (an erasure, the migration)."""
    forgetter = Forgetter(bootstrap, prefix, agent)
    try:
        return forgetter.forget()
    finally:
        forgetter.close()


class Forgetter:
    def __init__(self, bootstrap: str, prefix: str, agent: str, timeout_s: float = 15.0):
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        self.group = f"{prefix}leadstream-{agent}"  # the agent's Faust app id (streams/app.py)
        # the group's committed offsets read by an idle consumer of it (it never subscribes, so
        # it never joins), not the AdminClient's ListConsumerGroupOffsets: that request path
        # aborts the process when the broker drops mid-request (see scaling/lag.LagProbe); it
        # took a worker down when Kafka stopped
        self.reader = Consumer({"bootstrap.servers": bootstrap, "group.id": self.group,
                                "enable.auto.commit": False})
        self.topics = [f"{prefix}{t}" for t in forgotten_once_read(agent)]
        self.timeout_s = timeout_s
        self._lock = threading.Lock()  # one request at a time on these clients

    def forget(self) -> dict[str, int]:
        """Delete what the group has read; topic -> the new log start summed over partitions
        (records ever forgotten). Blocking: call it in a thread."""
        with self._lock:
            return self._forget()

    def close(self) -> None:
        self.reader.close()

    def _forget(self) -> dict[str, int]:
        read = self._committed()
        if not read:
            return {}
        done = self.admin.delete_records(read, request_timeout=self.timeout_s, operation_timeout=self.timeout_s)
        out: dict[str, int] = {}
        for tp, fut in done.items():
            out[tp.topic] = out.get(tp.topic, 0) + fut.result().low_watermark
        return out

    def _committed(self) -> list[TopicPartition]:
        parts = self._partitions()
        if not parts:
            return []
        return [TopicPartition(tp.topic, tp.partition, tp.offset)
                for tp in self.reader.committed(parts, timeout=self.timeout_s) if tp.offset > 0 and not tp.error]

    def _partitions(self) -> list[TopicPartition]:
        meta = self.admin.list_topics(timeout=self.timeout_s).topics
        return [TopicPartition(t, p) for t in self.topics if t in meta and not meta[t].error
                for p in meta[t].partitions]
