"""The benches' reading of how busy the machine was (bench._common.cpu_jiffies, busy_share)."""
from __future__ import annotations

import time

from bench._common import busy_share, cpu_jiffies


def test_busy_time_is_a_share_of_all_time_and_grows_while_this_process_works():
    before = cpu_jiffies()
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:  # one core busy for a moment
        sum(range(1000))
    after = cpu_jiffies()
    assert after[0] > before[0] and after[1] > before[1]
    assert 0 < busy_share(before, after) <= 1


def test_the_share_is_busy_over_all():
    assert busy_share((100, 1000), (250, 1200)) == 0.75
    assert busy_share((100, 1000), (100, 1000)) == 0  # no time passed: no division by zero
