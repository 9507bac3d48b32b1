"""What the sender needs from a delivery channel: message types, outcomes, two interfaces.

Every adapter answers one `Outcome` per message, in the order given, so one failing message
never hides or loses the others. The failure policy lives here, not in each adapter:
permanent = the message as it stands can never be delivered (bad address, rejected content,
4xx auth/validation, SMTP 5xx); transient = try again later or elsewhere (connection, timeout,
5xx, SMTP 4xx, 429 throttling with a `retry_after_s`).
"""
from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Any, Awaitable, Callable, Protocol, Sequence, TypeVar, runtime_checkable

import httpx

from domain.messages import EmailMessage, Outcome, SmsMessage  # noqa: F401 (the adapters' types)

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_THROTTLE_S = 1.0  # when a provider throttles without saying for how long
MAX_ERROR_CHARS = 300  # provider error bodies end up in events: keep them short


@runtime_checkable
class Provider(Protocol):
    """What every adapter is: named, sends one kind of message, one outcome each, in order.
    (The sending use case names the two kinds it needs: services/sending/ports.py.)"""

    name: str

    async def send_many(self, messages: Sequence[Any]) -> list[Outcome]: ...

    async def close(self) -> None: ...


def delivered(send_id: str, provider: str, provider_id: str | None) -> Outcome:
    """The outcome of a message the provider accepted."""
    return Outcome(send_id=send_id, ok=True, provider=provider, provider_id=provider_id)


def failed(
    send_id: str, provider: str, error: str, *, permanent: bool, retry_after_s: float | None = None
) -> Outcome:
    """The outcome of a message the provider did not take."""
    return Outcome(
        send_id=send_id, ok=False, provider=provider, error=error[:MAX_ERROR_CHARS],
        permanent=permanent, retry_after_s=retry_after_s,
    )


def json_field(response: "httpx.Response", name: str) -> str | None:
    """A field of a success answer's JSON, or None if the body is not what was documented.

    The provider took the message either way: raising here would resend it and duplicate it.
    """
    try:
        value = response.json().get(name)
    except (ValueError, AttributeError):
        return None
    return None if value is None else str(value)


def http_failure(
    send_id: str, provider: str, status: int, detail: str, *,
    retry_after_s: float | None = None, throttled: bool = False,
) -> Outcome:
    """Classify a provider's HTTP error answer: 429/408/5xx transient, any other 4xx permanent."""
    error = f"HTTP {status}: {detail}".strip()
    if status == 429 or throttled:
        return failed(send_id, provider, error, permanent=False,
                      retry_after_s=retry_after_s if retry_after_s is not None else DEFAULT_THROTTLE_S)
    if status == 408 or status >= 500:
        return failed(send_id, provider, error, permanent=False, retry_after_s=retry_after_s)
    return failed(send_id, provider, error, permanent=True)


def transport_failure(send_id: str, provider: str, exc: BaseException) -> Outcome:
    """A connection error or timeout: the provider may be fine a moment later."""
    return failed(send_id, provider, f"{type(exc).__name__}: {exc}", permanent=False)


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


async def map_bounded(
    items: Sequence[T], fn: Callable[[T], Awaitable[R]], limit: int | asyncio.Semaphore,
) -> list[R]:
    """`fn` over every item, at most `limit` at once, results in input order.

    Pass the adapter's own Semaphore as `limit` so concurrent callers share one bound.
    A TaskGroup, not gather: an unexpected exception (a bug) cancels the rest and propagates,
    so the worker crashes and the batch is retried instead of half-recorded.
    """
    slots = limit if isinstance(limit, asyncio.Semaphore) else asyncio.Semaphore(max(1, limit))

    async def one(item: T) -> R:
        async with slots:
            return await fn(item)

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(item)) for item in items]
    return [task.result() for task in tasks]


class HttpAdapter:
    """What every HTTP provider adapter shares: one kept-alive client, a bound on requests in
    flight that concurrent callers share, and `send_many` as one `_send_one` per message with the
    outcomes in order (adapters that batch override it)."""

    def __init__(self, name: str, *, timeout: float, max_in_flight: int,
                 clock: Callable[[], float] = time.time, **client: Any) -> None:
        self.name = name
        self.clock = clock
        self._slots = asyncio.Semaphore(max_in_flight)  # shared by concurrent send_many calls
        limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
        self._client = httpx.AsyncClient(timeout=timeout, limits=limits, **client)

    async def send_many(self, messages: Sequence[Any]) -> list[Outcome]:
        """One request per message, at most `max_in_flight` at once; one outcome each, in order."""
        return await map_bounded(list(messages), self._send_one, self._slots)

    async def _send_one(self, message: Any) -> Outcome:
        raise NotImplementedError

    async def close(self) -> None:
        """Close the kept-alive connections."""
        await self._client.aclose()
