"""A worker whose supervisor is gone stops itself.

The supervisor starts each worker with LEADSTREAM_SUPERVISOR_PID. Were the supervisor to die
without stopping its workers (killed, or aborted inside a native library), they would run on
unsupervised and a new supervisor would start a second set beside them. Each worker checks
its parent once a second and, when it changed, sends itself SIGTERM: the same graceful stop
(offsets committed after effects) as `./dev down`.
"""
from __future__ import annotations

import logging
import os
import signal
import threading

log = logging.getLogger(__name__)


def watch_supervisor(interval_s: float = 1.0) -> threading.Thread | None:
    expected = os.environ.get("LEADSTREAM_SUPERVISOR_PID")
    if not expected:
        return None
    pid = int(expected)

    def watch() -> None:
        while os.getppid() == pid:
            stop.wait(interval_s)
        log.warning("its supervisor is gone (pid %d): stopping this worker", pid)
        os.kill(os.getpid(), signal.SIGTERM)

    stop = threading.Event()
    t = threading.Thread(target=watch, name="supervisor-watch", daemon=True)
    t.start()
    return t
