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
from typing import Awaitable, Callable

import redis.exceptions
from clickhouse_driver import errors as ch_errors

from streams.producer import ProduceError

log = logging.getLogger("leadstream.batch")

TRANSIENT = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
             redis.exceptions.BusyLoadingError, ch_errors.NetworkError, ch_errors.SocketTimeoutError,
             ProduceError, asyncio.TimeoutError, ConnectionError, OSError, EOFError)
CRASH_EXIT_CODE = 70


async def run_batch(name: str, fn: Callable[[], Awaitable[int]], max_backoff: float = 10.0) -> int:
    """Run fn until it succeeds; returns what it returns."""
    delay = 0.2
    attempt = 0
    while True:
        try:
            return await fn()
        except TRANSIENT as exc:
            attempt += 1
            log.warning("%s: transient failure (attempt %d), retrying in %.1fs: %r",
                        name, attempt, delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff)
        except Exception:
            log.exception("%s: unexpected error, crashing the worker so the batch is redelivered", name)
            logging.shutdown()
            os._exit(CRASH_EXIT_CODE)
