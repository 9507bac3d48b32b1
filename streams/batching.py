"""Running one batch of an agent: transient failures are retried, bugs crash the worker.

Faust acknowledges a batch's offsets once the batch function returns, so it must return
only after every effect is durable. A transient failure (Kafka, Redis or ClickHouse down or
slow) is retried with backoff, forever: lag grows, nothing is lost. Anything else is a bug:
the process exits at once, without acknowledging, so the batch is redelivered on restart.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Awaitable, Callable

import redis.exceptions
from clickhouse_driver import errors as ch_errors

from streams import metrics
from streams.producer import ProduceError

log = logging.getLogger("leadstream.batch")


class NotYetProjected(Exception):
    """What this batch reads is not written yet (another agent's projection trails its
    events by a moment): retry the batch with backoff."""


TRANSIENT = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
             redis.exceptions.BusyLoadingError, ch_errors.NetworkError, ch_errors.SocketTimeoutError,
             ProduceError, asyncio.TimeoutError, ConnectionError, OSError, EOFError, NotYetProjected)
CRASH_EXIT_CODE = 70


async def run_batch(name: str, fn: Callable[[], Awaitable[int]], max_backoff: float = 10.0,
                    oldest_event_ms: int | None = None) -> int:
    """Run fn until it succeeds; returns what it returns (the messages processed).

    oldest_event_ms: the event time of the batch's oldest event, for the end-to-end latency.
    """
    delay = 0.2
    attempt = 0
    started = time.perf_counter()
    while True:
        try:
            n = await fn()
            _observe(name, n, started, oldest_event_ms)
            return n
        except TRANSIENT as exc:
            attempt += 1
            metrics.BATCH_FAILURES.labels(name).inc()
            log.warning("%s: transient failure (attempt %d), retrying in %.1fs: %r",
                        name, attempt, delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff)
        except Exception:
            log.exception("%s: unexpected error, crashing the worker so the batch is redelivered", name)
            logging.shutdown()
            os._exit(CRASH_EXIT_CODE)


def _observe(agent: str, n: int, started: float, oldest_event_ms: int | None) -> None:
    metrics.EVENTS_PROCESSED.labels(agent).inc(n)
    metrics.BATCH_SIZE.labels(agent).observe(n)
    metrics.BATCH_SECONDS.labels(agent).observe(time.perf_counter() - started)
    if oldest_event_ms:
        metrics.END_TO_END_SECONDS.labels(agent).observe(max(time.time() - oldest_event_ms / 1000, 0))


def oldest_ms(events) -> int | None:
    """The Kafka timestamp (ms) of the oldest message of a batch of Faust events."""
    return int(min(e.message.timestamp for e in events) * 1000) if events else None
