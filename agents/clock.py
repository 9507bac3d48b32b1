"""What time the timer-driven agents act at: now, plus the test clock's offset (Redis's
ls:clockskew, read only when LEADSTREAM_TEST_CLOCK is on; refused in production)."""
from __future__ import annotations

import time


async def skew_ms(deps) -> int:
    """The test clock's offset in ms (0 unless LEADSTREAM_TEST_CLOCK is on)."""
    if not deps.settings.test_clock:
        return 0
    return int(await deps.redis.get("ls:clockskew") or 0)


async def agent_now_ms(deps) -> int:
    return int(time.time() * 1000) + await skew_ms(deps)
