"""A supervisor that dies without stopping its workers (SIGKILL, or an abort inside a native
library) leaves no worker running: each worker sees its parent change and stops itself."""
from __future__ import annotations

import os
import signal
import time

from scaling.drill import Drill
from streams.settings import get_settings


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # an exited child not yet reaped by init is a zombie
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_the_workers_of_a_killed_supervisor_stop_themselves():
    with Drill(get_settings(), lag_per_worker=1000, min_workers=1, max_workers=1, window_s=5) as drill:
        workers = [w["pid"] for w in drill.client.status()["agents"]["intake"]["workers"] if w["ready"]]
        assert workers, "the drill's supervisor started no worker"
        os.kill(drill.proc.pid, signal.SIGKILL)  # the supervisor alone, not its process group
        drill.proc.wait(10)
        deadline = time.monotonic() + 90
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = [p for p in workers if _alive(p)]
        for p in left:  # do not leave them behind whatever the outcome
            os.kill(p, signal.SIGKILL)
        assert not left, f"workers {left} ran on without their supervisor"
        log = (drill.tmp / "worker-intake-0.log").read_text(errors="replace")
        assert "its supervisor is gone" in log and "Signal received: 15" in log, log[-2000:]  # a graceful stop
