"""Writes configuration events: to the compacted topic and the history topic, in one transaction.

Either both topics get a change or neither does (a Kafka transaction), so the history never
tells of a change that did not happen and the current state never lacks its history. Calls
block (confluent-kafka's transactional API); the API runs them in a thread.
"""
from __future__ import annotations

import threading
import uuid

from confluent_kafka import KafkaException, Producer

from schemas.codec import Codec


class ConfigWriteError(Exception):
    """Kafka did not take the change: nothing of it was applied."""


class ConfigWriter:
    """One transactional producer per process; one transaction per call of write()."""

    def __init__(self, bootstrap: str, topic: str, history_topic: str, codec: Codec, timeout_s: float = 15.0):
        self.topic, self.history_topic, self.codec, self.timeout_s = topic, history_topic, codec, timeout_s
        self._conf = {"bootstrap.servers": bootstrap, "transactional.id": f"leadstream-config-{uuid.uuid4().hex}",
                      "enable.idempotence": True, "acks": "all", "linger.ms": 0,
                      "transaction.timeout.ms": 60000, "message.max.bytes": 4194304}
        self._producer: Producer | None = None
        self._lock = threading.Lock()

    def _ready(self) -> Producer:
        if self._producer is None:
            producer = Producer(self._conf)
            try:
                producer.init_transactions(self.timeout_s)
            except KafkaException as exc:
                raise ConfigWriteError(f"Kafka did not start a configuration transaction: {exc}") from exc
            self._producer = producer
        return self._producer

    def write(self, events: list[tuple[str, dict]]) -> list[int]:
        """Write the events (name, event) atomically; returns each one's offset in the compacted topic."""
        if not events:
            return []
        with self._lock:
            producer = self._ready()
            offsets: dict[int, int] = {}

            def delivered(i: int):
                def report(err, msg):
                    if err is None:
                        offsets[i] = msg.offset()
                return report
            try:
                producer.begin_transaction()
                for i, (name, ev) in enumerate(events):
                    value, key = self.codec.encode(name, ev), ev["entity_key"].encode()
                    producer.produce(self.history_topic, value, key)
                    producer.produce(self.topic, value, key, on_delivery=delivered(i))
                if producer.flush(self.timeout_s):  # serves the delivery reports (the offsets)
                    raise KafkaException(f"configuration events undelivered after {self.timeout_s:.0f}s")
                producer.commit_transaction(self.timeout_s)
            except KafkaException as exc:
                self._abort(producer)
                raise ConfigWriteError(f"Kafka did not take the configuration change: {exc}") from exc
            if len(offsets) != len(events):
                raise ConfigWriteError("Kafka committed the change but reported no offset for some events")
            return [offsets[i] for i in range(len(events))]

    def _abort(self, producer: Producer) -> None:
        try:
            producer.abort_transaction(self.timeout_s)
        except KafkaException:
            # the producer is unusable (fenced or timed out): start a fresh one next time
            self._producer = None

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(5)
