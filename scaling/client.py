"""A small client of the supervisor's HTTP face, for ./dev and the tests."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request


class SupervisorClient:
    """GET /status, POST pause/resume on the supervisor at 127.0.0.1:port."""

    def __init__(self, port: int, timeout: float = 5.0):
        self.base = f"http://127.0.0.1:{port}"
        self.timeout = timeout

    def status(self) -> dict:
        """The supervisor's view of every agent (raises OSError when it does not answer)."""
        with urllib.request.urlopen(f"{self.base}/status", timeout=self.timeout) as r:
            return json.loads(r.read())

    def pause(self, agent: str, wait: float = 60.0) -> None:
        """Stop the agent's workers and keep them stopped; returns once none is left."""
        self._post(f"/agents/{agent}/pause")
        self.wait(lambda a: not a["workers"], agent, wait, f"{agent}'s workers to stop")

    def resume(self, agent: str, wait: float = 90.0) -> None:
        """Let the policy run the agent again; returns once a worker is ready."""
        self._post(f"/agents/{agent}/resume")
        self.wait(lambda a: any(w["ready"] for w in a["workers"]), agent, wait, f"{agent} to be ready")

    def workers(self, agent: str) -> list[dict]:
        return self.status()["agents"][agent]["workers"]

    def wait(self, ok, agent: str, timeout: float, what: str) -> dict:
        """Poll the agent's status until ok(agent_status); AssertionError after the timeout."""
        deadline, last = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            try:
                last = self.status()["agents"][agent]
                if ok(last):
                    return last
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last}")

    def _post(self, path: str) -> dict:
        req = urllib.request.Request(f"{self.base}{path}", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=self.timeout) as r:
            return json.loads(r.read())


def ready(status: dict, agents: dict) -> bool:
    """Every agent that is not paused runs at least its minimum of ready workers."""
    for name, a in status["agents"].items():
        if a["paused"]:
            continue
        ready_workers = sum(1 for w in a["workers"] if w["ready"])
        if a["desired"] is None or ready_workers < max(agents[name].min_workers, 1 if a["desired"] else 0):
            return False
    return True
