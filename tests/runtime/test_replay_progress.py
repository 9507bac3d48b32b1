"""The ClickHouse rebuild's progress, counted in a child process into shared integers."""
from __future__ import annotations

import multiprocessing

from runtime.replay import Ticks, _SharedProgress


def test_the_shared_counts_add_every_task_and_finish_at_the_totals():
    ctx = multiprocessing.get_context("spawn")
    done, total = ctx.Value("q", 0), ctx.Value("q", 0)
    p = _SharedProgress(done, total)
    events = p.add_task("clickhouse: inserting every event", total=1000)
    p.advance(events, 400)
    p.update(events, completed=1000)  # the rebuild says "all" at the end: the rest is counted once
    history = p.add_task("clickhouse: the configuration history", total=7)
    p.update(history, completed=7)
    assert (done.value, total.value) == (1007, 1007)


class _Recorded:
    def __init__(self):
        self.tasks, self.advanced = {}, []

    def add_task(self, description, total=None):
        self.tasks[description] = total
        return description

    def advance(self, task, n):
        self.advanced.append((task, n))


def test_ticks_show_progress_in_steps_and_always_reach_the_total():
    shown = _Recorded()
    tick = Ticks(shown, "redis: ")
    for _ in range(4500):
        tick("sends.events", 1, 4500)
    tick("jobs", 3, 3)
    assert shown.tasks == {"redis: sends.events": 4500, "redis: jobs": 3}
    assert shown.advanced == [("redis: sends.events", 2000), ("redis: sends.events", 2000),
                              ("redis: sends.events", 500), ("redis: jobs", 3)]
