"""The supervisor's loop against real Kafka lag, acting through the Kubernetes backend on a
stand-in API server: it sets the replicas the policy asks for and survives API failures."""
from __future__ import annotations

import asyncio
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from scaling.config import AgentScaling
from scaling.kubernetes import ClusterAccess, DeploymentScaler, KubernetesBackend
from scaling.lag import LagProbe
from scaling.supervisor import ClusterFleet, Supervisor
from streams.settings import get_settings
from tests.scaling.k8s_standin import K8sStandin

TOKEN, NS = "sv-token", "leadstream"


@pytest.fixture
def backlog():
    """A private topic holding 45 messages that the group never consumed."""
    s = get_settings()
    prefix = f"sv-{uuid.uuid4().hex[:8]}."
    topic = f"{prefix}leads.submitted"
    admin = AdminClient({"bootstrap.servers": s.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 4, 1)])[topic].result(30)
    p = Producer({"bootstrap.servers": s.kafka_bootstrap})
    for i in range(45):
        p.produce(topic, b"x", str(i).encode())
    assert p.flush(30) == 0
    yield s.model_copy(update={"topic_prefix": prefix})
    admin.delete_topics([topic])[topic].result(30)


def supervisor(settings, standin, **conf) -> Supervisor:
    agent = AgentScaling(**{"agent": "intake", "topics": ("leads.submitted",), "lag_per_worker": 10,
                            "activation_lag": 1, "min_workers": 1, "max_workers": 8,
                            "scale_down_window_s": 60, "stall_after_s": 60, **conf})
    fleet = ClusterFleet(KubernetesBackend(DeploymentScaler(
        ClusterAccess(api_url=standin.url, namespace=NS, token=TOKEN))))
    return Supervisor(settings, {"intake": agent}, fleet, LagProbe(settings.kafka_bootstrap))


@pytest.fixture
def standin():
    api = K8sStandin(TOKEN, NS, {"leadstream-intake": 1}).start()
    yield api
    api.stop()


def test_the_lag_sets_the_deployments_replicas_capped_by_partitions(backlog, standin):
    sup = supervisor(backlog, standin)
    asyncio.run(sup.tick())
    # lag 45 / 10 per worker = 5, but the topic has 4 partitions
    assert standin.spec["leadstream-intake"] == 4
    status = sup.status()["agents"]["intake"]
    assert (status["lag"], status["desired"], status["running"]) == (45, 4, 4)
    assert "45" in status["last_decision"]["reason"] and status["changes"][-1]["to"] == 4


def test_an_unavailable_api_is_reported_and_retried_on_the_next_tick(backlog, standin):
    sup = supervisor(backlog, standin)
    standin.fail_with = 503
    asyncio.run(sup.tick())  # must not raise
    assert standin.spec["leadstream-intake"] == 1
    assert "cannot scale" in sup.status()["agents"]["intake"]["error"]
    standin.fail_with = None
    asyncio.run(sup.tick())
    assert standin.spec["leadstream-intake"] == 4


def test_workers_that_never_commit_a_partition_with_lag_are_restarted(backlog, tmp_path):
    """The group has lag on partitions its running workers never commit (here: workers that
    never consume at all, as a Faust worker that never fetched its partitions): once
    stall_after_s has passed the supervisor says so and restarts them."""
    import sys
    import time

    from scaling.fleet import LocalFleet
    polite = "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *a: sys.exit(0)); time.sleep(600)"
    fleet = LocalFleet(tmp_path, tmp_path, {}, {}, clock=time.monotonic, grace_s=10,
                       command=lambda agent: [sys.executable, "-c", polite])
    agent = AgentScaling(agent="intake", topics=("leads.submitted",), lag_per_worker=100, activation_lag=1,
                         min_workers=1, max_workers=2, scale_down_window_s=60, stall_after_s=1)
    sup = Supervisor(backlog, {"intake": agent}, fleet, LagProbe(backlog.kafka_bootstrap))
    try:
        asyncio.run(sup.tick())
        first = [s.proc.pid for s in fleet.slots["intake"]]
        assert len(first) == 1 and not sup.last["intake"].stalled
        time.sleep(1.5)
        asyncio.run(sup.tick())
        d = sup.last["intake"]
        assert d.stalled and d.restart and len(d.stuck) == 4 and d.alert
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all(s.alive and s.proc.pid not in first for s in fleet.slots["intake"]):
            fleet.tend()
            time.sleep(0.05)
        assert [s.proc.pid not in first and s.alive for s in fleet.slots["intake"]] == [True]
        assert sup.status()["agents"]["intake"]["stalled"]
    finally:
        fleet.stop_all(10)
