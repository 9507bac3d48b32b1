"""A surge into the intake agent: the supervisor scales up on lag, the backlog drains, the
workers come back down after the window, without flapping; nothing lost, nothing twice.

Runs on private topics with a supervisor of its own (scaling.drill), beside the live stack.
"""
from __future__ import annotations

import orjson
import pytest
import redis

from scaling.drill import TENANT, Drill, encoded_leads
from streams.settings import get_settings

EVENTS, LAG_PER_WORKER, MAX_WORKERS, WINDOW_S = 120_000, 20_000, 4, 8.0


@pytest.fixture(scope="module")
def surge():
    s = get_settings()
    leads = encoded_leads(s, EVENTS, "autoscale")
    r = redis.Redis.from_url(s.redis_url)
    with Drill(s, LAG_PER_WORKER, 1, MAX_WORKERS, WINDOW_S) as drill:
        result = drill.run(leads, settle_s=WINDOW_S + 40, timeout_s=400)
        states = []
        for i in range(0, EVENTS, 10000):
            keys = [f"ls:lead:{TENANT}:{k.decode()}" for k, _ in leads[i:i + 10000]]
            states += r.mget(keys)
        log = drill.supervisor_log()
    return result, states, log


def test_the_surge_scales_the_intake_up_to_its_bound_at_once(surge):
    result, _, log = surge
    assert result.drain_s is not None, f"never drained; supervisor log:\n{log[-3000:]}"
    ups = [c for c in result.decisions if c["direction"] == "up"]
    assert ups and max(c["to"] for c in ups) == MAX_WORKERS, result.decisions
    assert result.peak_workers == MAX_WORKERS
    assert result.reaction_s is not None and result.reaction_s < result.drain_s
    assert all(str(c["lag"]) in c["reason"] for c in result.decisions)  # each decision says why


def test_after_draining_it_scales_back_down_after_the_window_without_flapping(surge):
    result, _, log = surge
    downs = [c for c in result.decisions if c["direction"] == "down"]
    assert downs, f"never scaled down; decisions: {result.decisions}\n{log[-2000:]}"
    assert downs[-1]["to"] == 1 and result.scaled_back_down_s is not None
    last_up = max(c["at"] for c in result.decisions if c["direction"] == "up")
    assert downs[0]["at"] - last_up >= WINDOW_S - 0.5, "scaled down inside the stabilisation window"
    assert result.direction_changes == 1, f"flapping: {[c['direction'] for c in result.decisions]}"


def test_every_surge_lead_was_decided_exactly_once(surge):
    _, states, _ = surge
    assert sum(1 for st in states if st is None) == 0, "leads of the surge without a read model"
    assert {orjson.loads(st)["submissions"] for st in states} == {1}
    assert {orjson.loads(st)["status"] for st in states} == {"accepted"}
