"""Sign-in lockout: after repeated failures an account (or an address) waits, longer each time.

Pure policy; the counts live in Redis (projections/redis_sessions.py).
"""
from __future__ import annotations

FREE_FAILURES = 5  # failures per account within the window before it locks
WINDOW_S = 15 * 60  # failures are counted over this window
FIRST_LOCK_S = 30
MAX_LOCK_S = 15 * 60
ADDRESS_FAILURES = 30  # failures from one address (over any accounts) within the window


def lock_seconds(failures: int) -> int:
    """How long an account waits after its `failures`-th failure in the window (0: not locked)."""
    if failures < FREE_FAILURES:
        return 0
    return min(FIRST_LOCK_S * 2 ** (failures - FREE_FAILURES), MAX_LOCK_S)


def address_blocked(failures: int) -> bool:
    """Whether an address has failed so often that it must wait out the window."""
    return failures >= ADDRESS_FAILURES
