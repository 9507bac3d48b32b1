"""The local supervisor: python -m scaling.supervisor [AGENT ...]

Every few seconds it measures each agent's consumer-group lag, asks the policy how many
workers that agent needs, and starts or gracefully stops worker processes to match; it
restarts crashed workers with backoff and logs every change with its reason and lag.
HTTP on <supervisor_host>:<supervisor_port>: GET /status (JSON), GET /metrics (Prometheus),
POST /agents/{agent}/pause and /resume (hold an agent at zero workers, e.g. for a replay).
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from scaling.config import AgentScaling, load_scaling
from scaling.fleet import LocalFleet
from scaling.lag import GroupLag, LagProbe
from scaling.stores import check_stores
from scaling.policy import Decision, Observation, PolicyState, decide
from scaling.targets import write_targets
from streams import metrics as m
from streams.logs import configure_logging
from streams.sentry import init_sentry
from streams.settings import ROOT, Settings, get_settings

log = logging.getLogger("leadstream.supervisor")


class Supervisor:
    """Measures, decides and acts for every configured agent."""

    def __init__(self, settings: Settings, agents: dict[str, AgentScaling], fleet: LocalFleet,
                 probe: LagProbe, alerts=None):
        self.s, self.agents, self.fleet, self.probe, self.alerts = settings, agents, fleet, probe, alerts
        self.states = {a: PolicyState() for a in agents}
        self.last: dict[str, Decision] = {}
        self.lags: dict[str, GroupLag] = {}
        self.changes: dict[str, list[dict]] = {a: [] for a in agents}
        self.paused: set[str] = set()
        self.errors: dict[str, str] = {}
        self.ticks = 0
        self.config = None  # the configuration view (kept current; scaling settings may come from it)
        fleet.on_restart = lambda slot: m.WORKER_RESTARTS.labels(slot.agent).inc()
        for agent in agents:  # every agent's series exists from the start: increase() sees the first restart
            m.WORKER_RESTARTS.labels(agent)
        self._published: list[dict] | None = None

    async def tick(self) -> None:
        """One round: tend the processes, measure every group, decide, act."""
        self.fleet.tend()
        lags = await asyncio.gather(*[asyncio.to_thread(self._measure, a) for a in self.agents])
        now = time.monotonic()
        for agent, lag in zip(self.agents, lags):
            if lag is None:
                continue
            try:
                self._apply(agent, lag, now)
            except Exception as exc:  # the backend failed (e.g. the Kubernetes API): next tick
                self.errors[agent] = f"cannot scale: {exc}"
                log.warning("%s: cannot apply the decision: %s", agent, exc)
        self._publish_targets()
        self.ticks += 1
        m.JOB_LAST_SUCCESS.labels("scaling_tick").set(time.time())

    def _publish_targets(self) -> None:
        """The workers as Prometheus scrape targets (file-based discovery), when they change."""
        if not self.s.prometheus_targets_file or not hasattr(self.fleet, "scrape_targets"):
            return
        targets = self.fleet.scrape_targets(self.s.metrics_host if self.s.metrics_host != "0.0.0.0" else "127.0.0.1")
        if targets != self._published:
            write_targets(targets, Path(self.s.prometheus_targets_file))
            self._published = targets

    def _measure(self, agent: str) -> GroupLag | None:
        conf = self.agents[agent]
        try:
            lag = self.probe.measure(conf.group(self.s.topic_prefix),
                                     [f"{self.s.topic_prefix}{t}" for t in conf.topics])
        except Exception as exc:  # Kafka unreachable: keep the workers as they are
            self.errors[agent] = f"lag unknown: {exc}"
            log.warning("%s: cannot measure lag, keeping %d workers: %s", agent,
                        self.fleet.running(agent), exc)
            return None
        self.errors.pop(agent, None)
        return lag

    def _apply(self, agent: str, lag: GroupLag, now: float) -> None:
        conf, running = self.agents[agent], self.fleet.running(agent)
        obs = Observation(now, lag.total, lag.committed, lag.partition_count() or 1, running,
                          tuple((f"{p.topic}/{p.partition}", p.committed if p.committed is not None else -1, p.lag)
                                for p in lag.partitions))
        decision, self.states[agent] = decide(conf, obs, self.states[agent])
        self.lags[agent], self.last[agent] = lag, decision
        target = 0 if agent in self.paused else decision.desired
        self._export(agent, lag, decision, target)
        if decision.direction != "hold":
            m.SCALING_DECISIONS.labels(agent, decision.direction).inc()
            log.info("%s: %s %d -> %d workers: %s", agent, decision.direction, decision.previous,
                     decision.desired, decision.reason)
            self.changes[agent] = (self.changes[agent] + [{
                "at": time.time(), "direction": decision.direction, "from": decision.previous,
                "to": decision.desired, "lag": decision.lag, "reason": decision.reason}])[-20:]
        if decision.alert:
            log.error("%s", decision.alert)
        if decision.restart and target and hasattr(self.fleet, "restart"):
            log.error("%s: restarting its %d worker(s): %s", agent, running, decision.reason)
            m.STALL_RESTARTS.labels(agent).inc()
            self.fleet.restart(agent)
        if self.alerts is not None:
            self.alerts(agent, decision)
        if target != running:
            self.fleet.scale(agent, target)

    def _export(self, agent: str, lag: GroupLag, d: Decision, target: int) -> None:
        m.AGENT_LAG.labels(agent).set(lag.total)
        m.WORKERS_DESIRED.labels(agent).set(target)
        m.WORKERS_RUNNING.labels(agent).set(self.fleet.running(agent))
        m.GROUP_STALLED.labels(agent).set(1 if d.stalled else 0)
        for p in lag.partitions:
            m.CONSUMER_LAG.labels(lag.group, p.topic, str(p.partition)).set(p.lag)

    def status(self) -> dict:
        """Per agent: lag, desired, running, workers, the last decision and recent changes."""
        out = {}
        for agent, conf in self.agents.items():
            d, lag = self.last.get(agent), self.lags.get(agent)
            out[agent] = {
                "group": conf.group(self.s.topic_prefix), "lag": lag.total if lag else None,
                "partitions": lag.partition_count() if lag else None,
                "desired": (0 if agent in self.paused else d.desired) if d else None,
                "running": self.fleet.running(agent), "paused": agent in self.paused,
                "stalled": bool(d and d.stalled), "error": self.errors.get(agent),
                "last_decision": {"direction": d.direction, "reason": d.reason} if d else None,
                "changes": self.changes[agent], "workers": self.fleet.describe(agent),
                "config": conf.model_dump(exclude={"agent"}),
            }
        return {"ticks": self.ticks, "pid": os.getpid(), "agents": out}


class ClusterFleet:
    """The Kubernetes backend in the fleet's place: the cluster starts, restarts and reaps
    the pods, the supervisor only sets each Deployment's replicas."""

    def __init__(self, backend):
        self.backend, self.slots, self.on_restart = backend, {}, None
        self.known: dict[str, int] = {}

    def running(self, agent: str) -> int:
        """The Deployment's replicas; the last known count while the API does not answer."""
        from scaling.kubernetes import ScaleError
        try:
            self.known[agent] = self.backend.running(agent)
        except ScaleError as exc:
            log.warning("%s: replicas unknown (%s); last known %s", agent, exc, self.known.get(agent))
        return self.known.get(agent, 0)

    def scale(self, agent: str, n: int) -> int:
        self.known[agent] = self.backend.scale(agent, n)
        return self.known[agent]

    def tend(self) -> list:
        return []

    def describe(self, agent: str) -> list[dict]:
        return []

    def stop_all(self) -> None:
        """Leave the Deployments as they are: stopping the supervisor must not stop the work."""


def build_app(sup: Supervisor) -> web.Application:
    """The supervisor's small HTTP face."""
    async def status(_req):
        doc = sup.status()
        if sup.config is not None:
            doc["config_version"] = sup.config.book.version
        return web.json_response(doc)

    async def metrics(_req):
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def pause(req):
        return await _hold(req, True)

    async def resume(req):
        return await _hold(req, False)

    async def _hold(req, paused: bool):
        agent = req.match_info["agent"]
        if agent not in sup.agents:
            return web.json_response({"error": f"no agent {agent!r}; one of {sorted(sup.agents)}"},
                                     status=404)
        (sup.paused.add if paused else sup.paused.discard)(agent)
        sup.fleet.scale(agent, 0 if paused else max(sup.fleet.running(agent), 1))
        return web.json_response({"agent": agent, "paused": paused})

    app = web.Application()
    app.add_routes([web.get("/status", status), web.get("/metrics", metrics),
                    web.post("/agents/{agent}/pause", pause), web.post("/agents/{agent}/resume", resume)])
    return app


async def run(s: Settings, only: list[str]) -> None:
    agents = load_scaling(s.scaling_file)
    unknown = [a for a in only if a not in agents]
    if unknown:
        sys.exit(f"unknown agent(s) {unknown}; configured in {s.scaling_file}: {sorted(agents)}")
    if only:
        agents = {a: agents[a] for a in only}
    run_dir, log_dir = s.run_dir, s.log_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    fleet = _fleet(s, agents, run_dir, log_dir)
    sup = Supervisor(s, agents, fleet, LagProbe(s.kafka_bootstrap), alerts=StallAlerts(s.alert_webhook_url) if s.alert_webhook_url else None)
    from schemas.codec import default_codec
    from streams.config_view import shared_view
    from streams.topics import CONFIG
    sup.config = shared_view(s.kafka_bootstrap, s.topic_prefix + CONFIG, default_codec(), wait=False)
    runner = web.AppRunner(build_app(sup), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, s.supervisor_host, s.supervisor_port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("supervising %s on :%d, every %.1fs", ", ".join(agents), s.supervisor_port, s.scaling_interval_s)
    stats = asyncio.create_task(every(30.0, lambda: redis_stats(s.redis_url), stop))
    stores = asyncio.create_task(every(5.0, lambda: check_stores(s), stop))
    try:
        while not stop.is_set():
            await sup.tick()
            try:
                await asyncio.wait_for(stop.wait(), s.scaling_interval_s)
            except asyncio.TimeoutError:
                pass
    finally:
        log.info("stopping every worker")
        stats.cancel()
        stores.cancel()
        await asyncio.to_thread(fleet.stop_all)
        await runner.cleanup()


def redis_stats(url: str) -> None:
    """Export Redis memory and key counts per key family (a periodic job of the supervisor)."""
    import redis
    from projections.redis_keys import FAMILIES
    r = redis.Redis.from_url(url, socket_timeout=5)
    try:
        m.REDIS_MEMORY.labels(url.rsplit("@", 1)[-1]).set(r.info("memory")["used_memory"])
        for f in FAMILIES:
            m.REDIS_KEYS.labels(f.name).set(sum(1 for _ in r.scan_iter(f.pattern, count=10000)))
        m.JOB_LAST_SUCCESS.labels("redis_stats").set(time.time())
    except redis.RedisError as exc:
        log.warning("redis stats: %s", exc)
    finally:
        r.close()


async def every(seconds: float, fn, stop: asyncio.Event) -> None:
    """Run a blocking job in a thread every `seconds` until stop is set."""
    while not stop.is_set():
        await asyncio.to_thread(fn)
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except asyncio.TimeoutError:
            pass


def _fleet(s: Settings, agents: dict, run_dir, log_dir):
    """Worker processes here (local), or Deployments' replicas (kubernetes, in-cluster)."""
    if s.scaling_backend == "kubernetes":
        from scaling.kubernetes import ClusterAccess, DeploymentScaler, KubernetesBackend
        return ClusterFleet(KubernetesBackend(DeploymentScaler(ClusterAccess.in_cluster())))
    base = s.worker_metrics_base_port
    return LocalFleet(run_dir, log_dir, _worker_env(),
                      {a: (base + 10 * i if base else 0) for i, a in enumerate(agents)},
                      clock=time.monotonic)


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class StallAlerts:
    """Posts a stalled group to the Slack-compatible webhook, and its recovery; off the loop."""

    def __init__(self, url: str):
        from scaling.alerts import AlertSender
        self.sender = AlertSender(url)

    def __call__(self, agent: str, d: Decision) -> None:
        from scaling.alerts import Alert
        key = f"stalled:{agent}"
        if d.alert:
            alert = Alert(name="ConsumerGroupStalled", severity="critical", summary=d.alert,
                          details={"agent": agent, "lag": d.lag, "reason": d.reason}, key=key)
            asyncio.get_running_loop().run_in_executor(None, self.sender.send, alert)
        elif not d.stalled and key in self.sender.firing():
            asyncio.get_running_loop().run_in_executor(None, self.sender.resolve, key)


def main(argv: list[str]) -> None:
    s = get_settings()
    configure_logging("supervisor", s.log_format)
    init_sentry(s.sentry_dsn, s.sentry_environment, "supervisor")
    asyncio.run(run(s, argv))


if __name__ == "__main__":
    main(sys.argv[1:])
