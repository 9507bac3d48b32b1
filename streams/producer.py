"""An asyncio face on confluent-kafka's producer: produce many, await their delivery once."""
from __future__ import annotations

import asyncio
import threading
from typing import Iterable, Sequence

from confluent_kafka import KafkaError, KafkaException, Producer

Record = tuple[str, bytes | None, bytes, Sequence[tuple[str, bytes]] | None]  # topic, key, value, headers


class ProduceError(Exception):
    """Kafka did not take (all of) a batch: nothing of it may be acknowledged upstream."""


class _Batch:
    __slots__ = ("pending", "error", "future", "loop", "lock")

    def __init__(self, n: int, loop: asyncio.AbstractEventLoop):
        self.pending = n
        self.error: KafkaError | None = None
        self.future: asyncio.Future = loop.create_future()
        self.loop = loop
        self.lock = threading.Lock()

    def delivered(self, err: KafkaError | None, _msg) -> None:
        with self.lock:
            if err is not None and self.error is None:
                self.error = err
            self.pending -= 1
            done = self.pending == 0
        if done:
            self.loop.call_soon_threadsafe(self._finish)

    def _finish(self) -> None:
        if self.future.done():
            return
        if self.error is not None:
            self.future.set_exception(ProduceError(str(self.error)))
        else:
            self.future.set_result(None)


class AsyncProducer:
    """Idempotent producer; a background thread serves delivery reports."""

    def __init__(self, bootstrap: str, **overrides: str | int):
        conf = {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                "linger.ms": 5, "compression.type": "lz4", "batch.num.messages": 10000,
                "queue.buffering.max.messages": 500000, "message.timeout.ms": 30000,
                "message.max.bytes": 4194304}
        conf.update(overrides)
        self._producer = Producer(conf)
        self._running = True
        self._thread = threading.Thread(target=self._serve, name="kafka-delivery", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while self._running:
            self._producer.poll(0.05)

    def connect(self, timeout: float) -> None:
        """Reach the brokers and read their metadata now (the idempotent producer asks for its
        producer id meanwhile); raises KafkaException when they do not answer within timeout."""
        self._producer.list_topics(timeout=timeout)

    def produce_many(self, records: Iterable[Record]) -> asyncio.Future:
        """Queue every record; the future resolves when all are acknowledged by Kafka."""
        records = list(records)
        loop = asyncio.get_running_loop()
        batch = _Batch(len(records), loop)
        if not records:
            batch.future.set_result(None)
            return batch.future
        produce = self._producer.produce
        try:
            for i, (topic, key, value, headers) in enumerate(records):
                produce(topic, value, key, headers=headers, on_delivery=batch.delivered)
        except (BufferError, KafkaException) as exc:
            with batch.lock:  # the ones not queued will never report
                batch.pending -= len(records) - i
                batch.error = batch.error or KafkaError(KafkaError._FAIL, str(exc))
                done = batch.pending == 0
            if done:
                batch._finish()
        return batch.future

    async def send_many(self, records: Iterable[Record], timeout: float | None = None) -> None:
        """Produce and wait for delivery; raises ProduceError (or TimeoutError)."""
        fut = self.produce_many(records)
        if timeout is None:
            await fut
        else:
            await asyncio.wait_for(asyncio.shield(fut), timeout)

    def close(self, timeout: float = 10.0) -> int:
        """Flush what is queued; returns how many messages were still undelivered."""
        left = self._producer.flush(timeout)
        self._running = False
        self._thread.join(timeout=1)
        return left
