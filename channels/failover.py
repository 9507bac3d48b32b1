"""Failover between two providers of a channel, with a circuit breaker per provider.

Within one `send_many` call, messages whose primary outcome is transient go to the fallback;
the caller gets one outcome per message either way, so nothing is lost. Permanent failures
are returned as they are: a bad address is bad everywhere, and retrying it elsewhere only
spends money and reputation. When both providers fail transiently the outcome stays transient
with the soonest `retry_after_s` either gave, so the caller defers instead of hammering.

A `CircuitBreaker` opens after `failure_threshold` consecutive transient failures; while open
its provider is skipped (straight to the other one) until `reset_after_s` has passed, then
one message is let through as a half-open trial: success closes it, failure re-opens it.
"""
from __future__ import annotations

import time
from typing import Callable, Generic, Sequence, TypeVar

from channels.base import EmailMessage, Outcome, Provider, SmsMessage, failed

M = TypeVar("M", EmailMessage, SmsMessage)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class CircuitBreaker:
    """Counts consecutive transient failures of one provider and decides whether to use it."""

    def __init__(self, failure_threshold: int = 5, reset_after_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self.clock = clock
        self.state = CLOSED
        self.failures = 0
        self.opened_at = 0.0

    def admit(self, wanted: int) -> int:
        """How many of `wanted` messages may go to this provider now (all, one trial, or none)."""
        if self.state == CLOSED:
            return wanted
        if self.state == OPEN and self.clock() - self.opened_at >= self.reset_after_s:
            self.state = HALF_OPEN  # exactly one caller gets the trial; others see HALF_OPEN below
            return min(1, wanted)
        return 0

    def record(self, outcome: Outcome) -> None:
        """Learn from one outcome: any answer but a transient failure means the provider works."""
        if outcome.transient:
            self.failures += 1
            if self.state == HALF_OPEN or self.failures >= self.failure_threshold:
                self.state, self.opened_at = OPEN, self.clock()
        else:
            self.state, self.failures = CLOSED, 0

    def seconds_until_trial(self) -> float:
        """How long until this breaker lets a trial through (0 when it is not open)."""
        if self.state == CLOSED:
            return 0.0
        return max(0.0, self.opened_at + self.reset_after_s - self.clock())


def _combine(send_id: str, first: Outcome | None, second: Outcome | None, retry_hint: float) -> Outcome:
    """The outcome to report once both providers had their chance (None = held back by a breaker)."""
    if second is not None and not second.transient:
        return second
    tried = [o for o in (first, second) if o is not None]
    if not tried:
        return failed(send_id, "none", "both providers' circuit breakers are open", permanent=False,
                      retry_after_s=retry_hint)
    waits = [o.retry_after_s for o in tried if o.retry_after_s is not None]
    return failed(send_id, tried[-1].provider, "; ".join(f"{o.provider}: {o.error}" for o in tried),
                  permanent=False, retry_after_s=min(waits) if waits else None)


class _Failover(Generic[M]):
    """Primary first, fallback for whatever failed transiently or was skipped."""

    def __init__(self, primary: Provider, fallback: Provider,
                 breaker: CircuitBreaker | None = None, fallback_breaker: CircuitBreaker | None = None) -> None:
        self.primary, self.fallback = primary, fallback
        self.breaker = breaker or CircuitBreaker()
        self.fallback_breaker = fallback_breaker
        self.name = f"{primary.name}>{fallback.name}"

    async def send_many(self, messages: Sequence[M]) -> list[Outcome]:
        """One outcome per message, in order, after at most one try at each provider."""
        messages = list(messages)
        first = await _send_through(self.primary, self.breaker, messages)
        again = [i for i, o in enumerate(first) if o is None or o.transient]
        second = await _send_through(self.fallback, self.fallback_breaker, [messages[i] for i in again])
        outcomes = list(first)
        hint = self._retry_hint()
        for i, other in zip(again, second):
            outcomes[i] = _combine(messages[i].send_id, first[i], other, hint)
        return outcomes  # type: ignore[return-value]  # every None was in `again` and replaced

    async def close(self) -> None:
        """Close both providers."""
        await self.primary.close()
        await self.fallback.close()

    def _retry_hint(self) -> float:
        """When both breakers skip a message: the wait until the first trial is due."""
        waits = [b.seconds_until_trial() for b in (self.breaker, self.fallback_breaker) if b is not None]
        return min(waits) if waits else 0.0


async def _send_through(channel: Provider, breaker: CircuitBreaker | None,
                        messages: list) -> list[Outcome | None]:
    """Send what the breaker admits; None marks a message it held back."""
    if not messages:
        return []
    admitted = len(messages) if breaker is None else breaker.admit(len(messages))
    outcomes: list[Outcome | None] = list(await channel.send_many(messages[:admitted])) if admitted else []
    if breaker is not None:
        for outcome in outcomes:
            breaker.record(outcome)  # type: ignore[arg-type]
    return outcomes + [None] * (len(messages) - admitted)


class FailoverMailer(_Failover[EmailMessage]):
    """A Mailer that fails over from `primary` to `fallback`."""

    def __init__(self, primary: Provider, fallback: Provider, breaker: CircuitBreaker | None = None,
                 fallback_breaker: CircuitBreaker | None = None) -> None:
        super().__init__(primary, fallback, breaker, fallback_breaker)


class FailoverSms(_Failover[SmsMessage]):
    """An SmsGateway that fails over from `primary` to `fallback`."""

    def __init__(self, primary: Provider, fallback: Provider, breaker: CircuitBreaker | None = None,
                 fallback_breaker: CircuitBreaker | None = None) -> None:
        super().__init__(primary, fallback, breaker, fallback_breaker)
