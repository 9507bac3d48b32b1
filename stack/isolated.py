"""A private platform beside the live one: own topic prefix, Redis database and ClickHouse
database, and a supervisor of its own running the chosen agents. Used by the sending tests,
the send and plan benchmarks, and the demo's morning, so their schedules and sends never mix
with the live stack's leads. The outside world (SMTP sink, provider stand-ins, job feeds)
is the live stack's.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import redis
import yaml
from confluent_kafka import Producer

from scaling.client import SupervisorClient
from scaling.drill import delete_topics, free_port, stop_process_group
from streams.settings import ROOT, get_settings

SEND_AGENTS = ("intake", "planner", "jobs", "sender_priority", "sender_bulk", "retry", "analytics")


class IsolatedPlatform:
    """Start with `with IsolatedPlatform(redis_db=5) as p:`; everything is removed on exit."""

    def __init__(self, redis_db: int, agents: tuple[str, ...] = SEND_AGENTS, env: dict | None = None,
                 max_workers: int = 1, keep: bool = False, fronts: tuple[str, ...] = (), metrics: bool = False,
                 fixed: dict[str, int] | None = None):
        base = get_settings()
        self.tag = uuid.uuid4().hex[:8]
        self.prefix = f"iso-{self.tag}."
        self.agents, self.keep, self.fronts = agents, keep, fronts
        self.port = free_port()
        self.tracking_port, self.api_port = free_port(), free_port()
        self.tracking_url = f"http://127.0.0.1:{self.tracking_port}"
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.tmp = Path(tempfile.mkdtemp(prefix="leadstream-iso-"))
        redis_url = base.redis_url.rsplit("/", 1)[0] + f"/{redis_db}"
        ch_db = f"iso_{self.tag}"
        scaling = {a: {"topics": _topics_of(a), "min_workers": 1, "max_workers": max_workers,
                       "lag_per_worker": 100_000, "activation_lag": 1, "scale_down_window_s": 30,
                       "stall_after_s": 300} for a in agents}
        for a, n in (fixed or {}).items():  # these agents run exactly n workers from the start
            scaling[a].update(min_workers=n, max_workers=n)
        (self.tmp / "agents.yaml").write_text(yaml.safe_dump({"agents": scaling}))
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "LEADSTREAM_TOPIC_PREFIX": self.prefix,
                    "LEADSTREAM_REDIS_URL": redis_url, "LEADSTREAM_CLICKHOUSE_DATABASE": ch_db,
                    "LEADSTREAM_SUPERVISOR_PORT": str(self.port),
                    "LEADSTREAM_WORKER_METRICS_BASE_PORT": str(free_block(10 * len(agents)) if metrics else 0),
                    "LEADSTREAM_SCALING_FILE": str(self.tmp / "agents.yaml"),
                    "LEADSTREAM_SCALING_INTERVAL_S": "1", "LEADSTREAM_PLAN_INTERVAL_S": "3600",
                    "LEADSTREAM_RUN_DIR": str(self.tmp), "LEADSTREAM_LOG_DIR": str(self.tmp),
                    "LEADSTREAM_TRACKING_PORT": str(self.tracking_port), "LEADSTREAM_TRACKING_BASE_URL": self.tracking_url,
                    "LEADSTREAM_TRACKING_INTERNAL_PORT": str(free_port()),
                    "LEADSTREAM_API_PORT": str(self.api_port), "LEADSTREAM_SPOOL_DIR": str(self.tmp / "spool"),
                    # the stack's Toxiproxy forwards to the stack's stand-ins, not to a private one
                    "LEADSTREAM_MAILGUN_URL": "",
                    **(env or {})}
        self.settings = base.model_copy(update={"topic_prefix": self.prefix, "redis_url": redis_url,
                                                "clickhouse_database": ch_db})
        self.redis = redis.Redis.from_url(redis_url)
        self.supervisor = SupervisorClient(self.port)
        self.proc: subprocess.Popen | None = None
        self.front_procs: dict[str, subprocess.Popen] = {}

    def __enter__(self) -> "IsolatedPlatform":
        self.redis.flushdb()
        self._run("-m", "runtime.bootstrap")
        self.start_workers()
        for name in self.fronts:
            self.start_front(name)
        for a in self.agents:
            self.supervisor.wait(lambda s: any(w["ready"] for w in s["workers"]), a, 120, f"{a} to be ready")
        return self

    def start_workers(self) -> None:
        """The supervisor, which starts the platform's workers."""
        self.proc = subprocess.Popen([sys.executable, "-m", "scaling.supervisor", *self.agents], env=self.env,
                                     cwd=ROOT, stdout=open(self.tmp / "supervisor.log", "ab"),
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def stop_workers(self) -> None:
        """The supervisor and its workers stopped (a replay runs with the workers stopped)."""
        stop_process_group(self.proc)
        self.proc = None

    def replay(self, *args: str) -> str:
        """`runtime.replay` over this platform's topics and stores (with the workers stopped)."""
        return self._run("-m", "runtime.replay", *args)

    def start_front(self, name: str, env: dict | None = None) -> subprocess.Popen:
        """Start the tracking front ("tracking") or the ingress API ("api") of this platform."""
        cmd = {"tracking": ["-m", "api.tracking"],
               "api": ["-m", "uvicorn", "runtime.api:app_from_env", "--factory", "--host", "127.0.0.1",
                       "--port", str(self.api_port), "--no-access-log", "--log-level", "warning"]}[name]
        url = self.tracking_url if name == "tracking" else self.api_url
        proc = subprocess.Popen([sys.executable, *cmd], env={**self.env, **(env or {})}, cwd=ROOT,
                                stdout=open(self.tmp / f"{name}.log", "ab"), stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.front_procs[name] = proc
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    return proc
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {self.log(name)[-2000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not answer in 60 s: {self.log(name)[-2000:]}")

    def stop_front(self, name: str) -> None:
        proc = self.front_procs.pop(name, None)
        if proc is not None:
            stop_process_group(proc)

    def __exit__(self, *exc) -> None:
        self.stop()
        if not self.keep:
            self.cleanup()

    def stop(self) -> None:
        for name in list(self.front_procs):
            self.stop_front(name)
        stop_process_group(self.proc)

    def cleanup(self) -> None:
        """Drop the topics, the ClickHouse database and the Redis database."""
        delete_topics(self.settings.kafka_bootstrap, self.prefix)
        from projections.clickhouse import connect
        s = self.settings
        connect(s.clickhouse_host, s.clickhouse_port).execute(f"DROP DATABASE IF EXISTS {s.clickhouse_database}")
        self.redis.flushdb()

    def plan(self, at_ms: int) -> str:
        """One planning pass as if it were this instant (the admin command)."""
        iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at_ms / 1000)) + f".{at_ms % 1000:03d}Z"
        return self._run("-m", "runtime.plan_once", "--at", iso)

    def poll_feeds(self) -> str:
        """Poll every tenant's feeds now (the admin command)."""
        return self._run("-m", "runtime.poll_feeds")

    def produce(self, topic: str, records: list[tuple[bytes, bytes]]) -> None:
        p = Producer({"bootstrap.servers": self.settings.kafka_bootstrap, "linger.ms": 5})
        for key, value in records:
            p.produce(f"{self.prefix}{topic}", value, key)
        assert p.flush(30) == 0, "records left unproduced"

    def lag(self, agent: str) -> int:
        """The agent's consumer-group lag now (committed offsets against end offsets): 0 means
        every record on its topics has been handled and its effects written."""
        from scaling.config import load_scaling
        from scaling.lag import LagProbe
        conf = load_scaling()[agent]
        return LagProbe(self.settings.kafka_bootstrap).measure(
            conf.group(self.prefix), [f"{self.prefix}{t}" for t in conf.topics]).total

    def log(self, name: str = "supervisor") -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def _run(self, *args: str) -> str:
        out = subprocess.run([sys.executable, *args], env=self.env, cwd=ROOT, capture_output=True, text=True,
                             timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {out.stderr or out.stdout}")
        return out.stdout


def free_block(n: int) -> int:
    """The first of n consecutive loopback ports that are free now (workers' /metrics)."""
    import socket
    for _ in range(50):
        base = free_port()
        if base + n >= 65535:
            continue
        socks = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {n} consecutive free ports found")


def _topics_of(agent: str) -> list[str]:
    from scaling.config import load_scaling
    return list(load_scaling()[agent].topics)
