"""Projections are rebuilt from the topics and come out identical."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from stack.services import start, stop
from streams.settings import ROOT
from tests.integration.conftest import auth, read_model, wait_decisions


def _snapshot_redis(rds) -> dict:
    out = {k: rds.get(k) for k in rds.scan_iter("ls:lead:*", count=5000)}
    for k in rds.scan_iter("ls:optout:*"):
        out[k] = sorted(rds.smembers(k))
    return out


def _clickhouse_counts(ch, db: str) -> tuple:
    events = ch.execute(f"SELECT event_type, count(), uniqExact(event_id) FROM {db}.events FINAL "
                        f"WHERE event_type LIKE 'lead.%' GROUP BY event_type ORDER BY event_type")
    daily = ch.execute(f"SELECT tenant, event_type, reason, uniqExactMerge(events) FROM {db}.daily_lead_counts "
                       f"GROUP BY tenant, event_type, reason ORDER BY tenant, event_type, reason")
    history = ch.execute(f"SELECT entity_key, version, op, actor, data, change FROM {db}.config_history FINAL "
                         f"ORDER BY entity_key, version")
    return events, daily, history


@pytest.fixture
def workers_stopped(services):
    """The supervisor, and with it every worker, stopped for the replay; started again after."""
    stop(services["supervisor"], timeout=60)
    yield
    start(services["supervisor"], {**os.environ, "PYTHONPATH": str(ROOT)})


def _some_traffic(api, keys, uid, ch, settings):
    leads = [{"email": f"r{i}.{uid}@example.com", "partner": "ziprecruiter", "list": "daily-jobs"} for i in range(20)]
    leads += [{"email": f"r0.{uid}@example.com", "partner": "indeed-xml", "list": "warehouse"},
              {"email": f"r1.{uid}@mailinator.com", "partner": "indeed-xml", "list": "warehouse"}]
    r = api.post("/v1/leads/batch", json={"leads": leads}, headers=auth(keys["jobsnearby"])).json()
    wait_decisions(ch, settings.clickhouse_database, [x["event_id"] for x in r["leads"]])
    lid = r["leads"][5]["lead_id"]
    read_model(api, keys["jobsnearby"], lid)
    u = api.post(f"/v1/leads/{lid}/unsubscribe", headers=auth(keys["jobsnearby"])).json()
    wait_decisions(ch, settings.clickhouse_database, [u["event_id"]])
    read_model(api, keys["jobsnearby"], lid, lambda d: d["status"] == "unsubscribed")


def test_emptied_redis_and_clickhouse_are_rebuilt_identically(api, keys, uid, ch, settings, rds, workers_stopped):
    before_redis = _snapshot_redis(rds)
    before_ch = _clickhouse_counts(ch, settings.clickhouse_database)
    assert len(before_redis) > 20 and before_ch[0] and before_ch[2]  # lead events and configuration changes
    for k in list(rds.scan_iter("ls:lead:*", count=5000)):
        rds.delete(k)
    assert not list(rds.scan_iter("ls:lead:*"))
    out = subprocess.run([sys.executable, "-m", "runtime.replay"], cwd=ROOT, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "replay done" in out.stdout and "redis" in out.stdout
    assert _snapshot_redis(rds) == before_redis
    assert _clickhouse_counts(ch, settings.clickhouse_database) == before_ch


@pytest.fixture(autouse=True)
def _traffic_first(request, api, keys, ch, settings):
    # Make sure there is varied traffic (accepted, rejected, merged, unsubscribed) to replay,
    # decided while the workers still run.
    import uuid
    _some_traffic(api, keys, uuid.uuid4().hex[:8], ch, settings)
