"""A consumer loop without Faust, for agents that must read transactional topics
read_committed (Faust reads committed-only data only under exactly-once processing).

Same contract as the Faust agents: batches; a transient failure is retried with backoff
(streams.batching.run_batch); offsets are committed only after the batch's effects are
durable; SIGTERM finishes the batch in hand and leaves the group.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path
from typing import Awaitable, Callable

from confluent_kafka import Consumer, KafkaError

from streams.batching import run_batch

log = logging.getLogger("leadstream.plain")
Message = tuple[str, int, int, bytes | None, bytes | None]  # topic, partition, offset, key, value


async def run_plain(agent: str, group: str, topics: list[str], bootstrap: str,
                    process: Callable[[list[Message]], Awaitable[int]], batch_size: int = 500,
                    batch_seconds: float = 0.5) -> None:
    """Consume `topics` in `group` until SIGTERM, handing batches to `process`."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                         "session.timeout.ms": 10000, "heartbeat.interval.ms": 2000})
    consumer.subscribe(topics)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ready = os.environ.get("LEADSTREAM_READY_FILE")
    try:
        while not stop.is_set():
            msgs = await asyncio.to_thread(consumer.consume, batch_size, batch_seconds)
            if ready:
                Path(ready).write_text(str(os.getpid()))
                ready = None
            batch = []
            for m in msgs:
                if m.error() is not None:
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        log.warning("%s: consumer error: %s", agent, m.error())
                    continue
                batch.append((m.topic(), m.partition(), m.offset(), m.key(), m.value()))
            if batch:
                await run_batch(agent, lambda: process(batch))
            if msgs:
                # the positions, not offset + 1: read_committed skips transaction markers
                await asyncio.to_thread(consumer.commit, offsets=consumer.position(consumer.assignment()),
                                        asynchronous=False)
    finally:
        consumer.close()
