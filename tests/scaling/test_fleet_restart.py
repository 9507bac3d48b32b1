"""The local fleet restarts a stalled agent's workers: real processes, signalled and started again.

A worker that exits on SIGTERM is started again at once (not counted as a crash); one that
ignores it is SIGKILLed after the grace period, then started again too."""
from __future__ import annotations

import sys
import time

from scaling.fleet import LocalFleet

POLITE = "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *a: sys.exit(0)); time.sleep(600)"
DEAF = ("import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "pathlib.Path(sys.argv[1]).touch(); time.sleep(600)")


def fleet(tmp_path, code: str, grace_s: float) -> LocalFleet:
    return LocalFleet(tmp_path, tmp_path, {}, {}, clock=time.monotonic, grace_s=grace_s,
                      command=lambda agent: [sys.executable, "-c", code, str(tmp_path / "deaf")])


def tend_until(f: LocalFleet, agent: str, done, timeout: float = 20.0) -> list:
    crashed, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        crashed += f.tend()
        if done():
            return crashed
        time.sleep(0.05)
    raise AssertionError(f"not done: {f.describe(agent)}")


def test_a_restart_stops_each_worker_and_starts_it_again_without_calling_it_a_crash(tmp_path):
    f = fleet(tmp_path, POLITE, grace_s=30)
    try:
        f.scale("sender_bulk", 2)
        before = {s.index: s.proc.pid for s in f.slots["sender_bulk"]}
        assert f.restart("sender_bulk") == 2 and f.restart("sender_bulk") == 0  # asked once
        crashed = tend_until(f, "sender_bulk", lambda: all(
            s.alive and s.proc.pid != before[s.index] for s in f.slots["sender_bulk"]))
        assert crashed == [] and f.running("sender_bulk") == 2
        assert sorted(s.index for s in f.slots["sender_bulk"]) == [0, 1]
        assert all(s.restart_requested_at is None and s.restarts == 0 for s in f.slots["sender_bulk"])
    finally:
        f.stop_all(10)


def test_a_worker_deaf_to_sigterm_is_killed_after_the_grace_period_and_started_again(tmp_path):
    f = fleet(tmp_path, DEAF, grace_s=1.0)
    try:
        f.scale("triggers", 1)
        [slot] = f.slots["triggers"]
        tend_until(f, "triggers", (tmp_path / "deaf").exists)  # the child has set its handler
        (tmp_path / "deaf").unlink()
        old = slot.proc.pid
        assert f.restart("triggers") == 1
        tend_until(f, "triggers", lambda: slot.alive and slot.proc.pid != old)
        assert slot.last_exit == -9 and f.running("triggers") == 1
    finally:
        for s in f.slots.get("triggers", []):
            if s.alive:
                s.proc.kill()
