"""The local backend: worker processes per agent, started, stopped gracefully, restarted.

A worker is `python -m runtime.worker AGENT`, a child of the supervisor. Stopping sends
SIGTERM (Faust finishes the batch, commits and leaves the group), then SIGKILL after a
grace period. A worker that exits without being asked to is restarted with backoff.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

log = logging.getLogger("leadstream.fleet")

BACKOFF_FIRST_S, BACKOFF_MAX_S, HEALTHY_AFTER_S = 1.0, 30.0, 60.0
# glibc gives each thread that allocates an arena of its own (up to 8 per core), and memory freed
# in one is rarely given back: a worker's to_thread calls and the Kafka client's threads made RSS
# creep. Two arenas (the usual setting for Python services); the environment may say otherwise.
WORKER_ENV_DEFAULTS = {"MALLOC_ARENA_MAX": "2"}


class WorkerBackend(Protocol):
    """What the supervisor needs from whatever runs the workers (processes, Deployments)."""

    def running(self, agent: str) -> int: ...

    def scale(self, agent: str, n: int) -> int: ...


@dataclass
class Slot:
    """One worker process of an agent."""

    agent: str
    index: int
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    stop_requested_at: float | None = None
    restarts: int = 0  # consecutive quick crashes: sets the backoff
    total_restarts: int = 0
    restart_at: float | None = None  # a crashed worker waits for this time
    last_exit: int | None = None
    restart_requested_at: float | None = None  # asked to restart (a stalled group): SIGTERM sent

    @property
    def name(self) -> str:
        return f"worker-{self.agent.replace('_', '-')}-{self.index}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class LocalFleet:
    """Worker processes on this machine; implements WorkerBackend."""

    run_dir: Path
    log_dir: Path
    env: dict[str, str]
    metrics_ports: dict[str, int]  # agent -> first metrics port of its slots (0: none)
    clock: callable = None
    grace_s: float = 30.0
    slots: dict[str, list[Slot]] = field(default_factory=dict)
    on_restart: callable = None
    command: callable = None  # agent -> argv of its worker (default: python -m runtime.worker AGENT)

    def running(self, agent: str) -> int:
        """Workers alive and not asked to stop."""
        return sum(1 for s in self.slots.get(agent, []) if s.alive and s.stop_requested_at is None)

    def scale(self, agent: str, n: int) -> int:
        """Start or gracefully stop workers until n are running; returns n."""
        slots = self.slots.setdefault(agent, [])
        active = [s for s in slots if s.stop_requested_at is None and (s.alive or s.restart_at)]
        for s in sorted(active, key=lambda s: -s.index)[:max(len(active) - n, 0)]:
            self._stop(s)
        for _ in range(n - len(active)):
            self._start(self._free_slot(agent))
        return n

    def restart(self, agent: str) -> int:
        """Restart the agent's running workers (SIGTERM; SIGKILL after the grace period; started
        again as after an exit). Returns how many were asked."""
        now, asked = self.clock(), 0
        for s in self.slots.get(agent, []):
            if s.alive and s.stop_requested_at is None and s.restart_requested_at is None:
                s.restart_requested_at = now
                _signal(s.proc, signal.SIGTERM)
                asked += 1
        return asked

    def tend(self) -> list[Slot]:
        """Reap exits: finish stops, schedule restarts of crashes, start the due ones.
        Returns the slots that crashed since the last call."""
        now = self.clock()
        crashed = []
        for agent, slots in self.slots.items():
            for s in list(slots):
                if s.proc is not None and s.proc.poll() is not None:
                    s.last_exit, s.proc = s.proc.returncode, None
                    if s.stop_requested_at is not None:
                        slots.remove(s)
                        continue
                    if s.restart_requested_at is not None:  # as asked: started again at once
                        s.restart_requested_at, s.restart_at = None, now
                        log.warning("%s stopped to be restarted (exit code %s)", s.name, s.last_exit)
                        continue
                    crashed.append(s)
                    healthy = now - s.started_at >= HEALTHY_AFTER_S
                    s.restarts = 0 if healthy else s.restarts + 1
                    s.restart_at = now + min(BACKOFF_FIRST_S * 2 ** s.restarts, BACKOFF_MAX_S)
                    log.warning("%s exited with code %s; restarting in %.0fs", s.name, s.last_exit,
                                s.restart_at - now)
                elif s.alive and now - _asked_at(s, now) > self.grace_s:
                    log.warning("%s did not stop within %.0fs: SIGKILL", s.name, self.grace_s)
                    _signal(s.proc, signal.SIGKILL)
                if s.proc is None and s.restart_at is not None and now >= s.restart_at:
                    s.total_restarts += 1
                    if self.on_restart:
                        self.on_restart(s)
                    self._start(s)
        return crashed

    def stop_all(self, timeout: float = 30.0) -> None:
        """SIGTERM every worker, wait, SIGKILL what is left."""
        import time
        everyone = [s for slots in self.slots.values() for s in slots]
        for s in everyone:
            self._stop(s)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(s.alive for s in everyone):
            time.sleep(0.1)
        for s in everyone:
            if s.alive:
                _signal(s.proc, signal.SIGKILL)
                s.proc.wait(5)
        self.slots.clear()

    def describe(self, agent: str) -> list[dict]:
        """Each worker of the agent: name, pid, state, ready, restarts, metrics port."""
        out = []
        for s in sorted(self.slots.get(agent, []), key=lambda s: s.index):
            state = ("stopping" if s.stop_requested_at is not None else
                     "running" if s.alive else "restarting" if s.restart_at else "exited")
            out.append({"name": s.name, "pid": s.proc.pid if s.alive else None, "state": state,
                        "ready": self._ready_file(s).exists() and s.alive, "restarts": s.total_restarts,
                        "last_exit": s.last_exit, "metrics_port": self._metrics_port(s) or None})
        return out

    def scrape_targets(self, host: str = "127.0.0.1") -> list[dict]:
        """The running workers' /metrics, as Prometheus file-based discovery lists them."""
        return [{"targets": [f"{host}:{self._metrics_port(s)}"], "labels": {"agent": s.agent, "worker": s.name}}
                for agent in sorted(self.slots) for s in sorted(self.slots[agent], key=lambda s: s.index)
                if s.alive and self._metrics_port(s)]

    def _free_slot(self, agent: str) -> Slot:
        used = {s.index for s in self.slots[agent]}
        slot = Slot(agent, next(i for i in range(len(used) + 1) if i not in used))
        self.slots[agent].append(slot)
        return slot

    def _start(self, s: Slot) -> None:
        ready = self._ready_file(s)
        ready.unlink(missing_ok=True)
        env = {**WORKER_ENV_DEFAULTS, **self.env, "LEADSTREAM_READY_FILE": str(ready), "LEADSTREAM_WORKER_SLOT": str(s.index),
               "LEADSTREAM_METRICS_PORT": str(self._metrics_port(s)),
               "LEADSTREAM_SUPERVISOR_PID": str(os.getpid())}
        with open(self.log_dir / f"{s.name}.log", "ab") as logf:
            s.proc = subprocess.Popen((self.command or worker_command)(s.agent), env=env,
                                      stdout=logf, stderr=subprocess.STDOUT)
        s.started_at, s.restart_at, s.stop_requested_at = self.clock(), None, None
        log.info("started %s (pid %d)", s.name, s.proc.pid)

    def _stop(self, s: Slot) -> None:
        if s.stop_requested_at is not None:
            return
        s.stop_requested_at = self.clock()
        s.restart_at = None
        if s.alive:
            _signal(s.proc, signal.SIGTERM)
            log.info("stopping %s (pid %d)", s.name, s.proc.pid)
        elif s in self.slots.get(s.agent, []):
            self.slots[s.agent].remove(s)

    def _ready_file(self, s: Slot) -> Path:
        return self.run_dir / f"{s.name}.ready"

    def _metrics_port(self, s: Slot) -> int:
        base = self.metrics_ports.get(s.agent, 0)
        return base + s.index if base else 0


def _signal(proc: subprocess.Popen, sig: int) -> None:
    # workers share the supervisor's process group: stopping the supervisor's group (./dev
    # down) reaches them too, so none is orphaned; here only the one worker is signalled
    try:
        os.kill(proc.pid, sig)
    except ProcessLookupError:
        pass


def worker_command(agent: str) -> list[str]:
    return [sys.executable, "-m", "runtime.worker", agent]


def _asked_at(s: Slot, now: float) -> float:
    """When the worker was asked to stop or restart (now: it was not)."""
    return s.stop_requested_at if s.stop_requested_at is not None else (
        s.restart_requested_at if s.restart_requested_at is not None else now)
