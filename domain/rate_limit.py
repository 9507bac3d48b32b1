"""Token buckets, pure: each caller (an API key, a person, a tenant) may make `rate` requests a
second on average and `burst` at once; instants come in. A refused request is told how long
to wait (Retry-After). Bounded: past `max_callers` the longest-idle caller's bucket is dropped
(it comes back full, which only ever lets a caller through)."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class Limiter:
    """Buckets by caller; `wait(caller, now)` takes one token or says how long until one."""

    def __init__(self, rate: float, burst: float, max_callers: int = 100_000):
        if rate <= 0 or burst < 1:
            raise ValueError("a limiter needs rate > 0 and burst >= 1")
        self.rate, self.burst, self.max_callers = rate, burst, max_callers
        self._buckets: dict[str, _Bucket] = {}

    def wait(self, caller: str, now: float) -> float:
        """0 when the request may go (its token taken), else the seconds until it may."""
        bucket = self._buckets.pop(caller, None)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            if len(self._buckets) >= self.max_callers:
                self._buckets.pop(next(iter(self._buckets)))
        bucket.tokens = min(self.burst, bucket.tokens + max(0.0, now - bucket.at) * self.rate)
        bucket.at = now
        self._buckets[caller] = bucket  # most recently seen last
        if bucket.tokens >= 1 - 1e-9:  # float sums of refills
            bucket.tokens = max(0.0, bucket.tokens - 1)
            return 0.0
        return (1 - bucket.tokens) / self.rate


def retry_after(seconds: float) -> str:
    """A Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
