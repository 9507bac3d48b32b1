"""A worker killed mid-batch, Redis or ClickHouse down mid-stream: nothing lost, nothing twice."""
from __future__ import annotations

import os
import signal
import time

import orjson
import pytest

from domain.identity import new_event_id
from domain.lead_input import LeadIn
from domain.submission import build_submitted
from schemas.codec import default_codec
from stack.services import start, stop
from streams.settings import ROOT
from tests.integration.conftest import IDS, auth, lead_id, wait_decisions, wait_for

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _count(ch, db, partner, etype):
    return ch.execute(f"SELECT count(), uniqExact(event_id) FROM {db}.events FINAL "
                      f"WHERE tenant = 'hireflow' AND partner = %(p)s AND event_type = %(t)s",
                      {"p": partner, "t": etype})[0]


def _produce_leads(producer, settings, book, partner: str, n: int) -> None:
    tenant = book.tenants["hireflow"]
    enc = default_codec().encode
    now = int(time.time() * 1000)
    for i in range(n):
        lead = LeadIn(email=f"k{i}.{partner}@example.com", partner=partner, list="nurses")
        sub = build_submitted(lead, tenant, new_event_id(now, os.urandom(10)), now, "test", ids=IDS)
        producer.produce(f"{settings.topic_prefix}leads.submitted", enc("lead.submitted", sub),
                         key=sub["lead_id"].encode())
        if i % 10000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0


def test_intake_worker_killed_mid_batch_is_restarted_and_loses_nothing_nor_counts_twice(
        producer, settings, book, supervisor, ch, rds, uid):
    n, partner, db = 30_000, f"kill-{uid}", settings.clickhouse_database
    supervisor.pause("intake")
    try:
        _produce_leads(producer, settings, book, partner, n)
    finally:
        supervisor.resume("intake")
    wait_for(lambda: _count(ch, db, partner, "lead.accepted")[0] > 2000, 120, 0.05,
             "the worker to be part-way through")
    victim = next(w for w in supervisor.workers("intake") if w["pid"])
    os.kill(victim["pid"], signal.SIGKILL)
    done_at_kill = _count(ch, db, partner, "lead.accepted")[0]
    assert done_at_kill < n, "the kill came too late to test anything"
    # the supervisor notices and starts the same slot again (new pid, one restart more)
    supervisor.wait(lambda a: any(w["name"] == victim["name"] and w["ready"] and w["pid"] != victim["pid"]
                                  and w["restarts"] == victim["restarts"] + 1 for w in a["workers"]),
                    "intake", 90, f"{victim['name']} to be restarted")
    wait_for(lambda: _count(ch, db, partner, "lead.accepted")[0] >= n, 180, 0.5, f"{n} accepted leads")
    time.sleep(2)  # let any redelivered duplicates arrive before counting
    assert _count(ch, db, partner, "lead.accepted") == (n, n)
    # a redelivered submission must be skipped, not decided again as a duplicate
    assert _count(ch, db, partner, "lead.resubmitted") == (0, 0)
    daily = ch.execute(f"SELECT uniqExactMerge(events) FROM {db}.daily_lead_counts "
                       f"WHERE tenant = 'hireflow' AND partner = %(p)s AND event_type = 'lead.accepted'",
                       {"p": partner})[0][0]
    assert daily == n
    states = rds.mget([f"ls:lead:hireflow:{lead_id('hireflow', 'email', f'k{i}.{partner}@example.com')}"
                       for i in range(n)])
    assert all(s is not None for s in states)
    assert {orjson.loads(s)["submissions"] for s in states} == {1}


def _submit(api, keys, uid, n, tag):
    leads = [{"email": f"{tag}{i}.{uid}@example.com", "partner": "p", "list": "nurses"} for i in range(n)]
    r = api.post("/v1/leads/batch", json={"leads": leads}, headers=auth(keys["hireflow"]))
    assert r.status_code == 202, r.text
    return [x["event_id"] for x in r.json()["leads"]]


def _restarts(supervisor, agent: str) -> dict[str, int]:
    return {w["name"]: w["restarts"] for w in supervisor.workers(agent)}


def _crashed(supervisor, agent: str, before: dict[str, int]) -> list[str]:
    """Workers that exited on their own since `before`: restarting, or restarted (one restart
    more). A worker the supervisor stopped because the lag fell (scaled down) is no crash: the
    test compared pids and failed in CI when intake went from 2 workers to 1 during it."""
    return [w["name"] for w in supervisor.workers(agent)
            if w["state"] == "restarting" or w["restarts"] > before.get(w["name"], 0)]


@pytest.mark.parametrize("down, agent", [("redis", "intake"), ("clickhouse", "analytics")])
def test_a_service_down_mid_stream_delays_but_loses_nothing(api, keys, uid, ch, settings, services,
                                                            supervisor, down, agent):
    db = settings.clickhouse_database
    before = _submit(api, keys, uid, 20, "before")
    wait_decisions(ch, db, before)
    before_restarts = _restarts(supervisor, agent)
    stop(services[down])
    try:
        during = _submit(api, keys, uid, 50, "during")  # ingress needs neither Redis nor ClickHouse
        time.sleep(4)
        assert not _crashed(supervisor, agent, before_restarts), f"the {agent} workers must retry, not crash"
    finally:
        start(services[down], ENV)
    if down == "redis":
        assert not ch.execute(f"SELECT count() FROM {db}.events WHERE causation_id IN %(c)s",
                              {"c": tuple(during)})[0][0], "decided without its state store"
    rows = wait_decisions(ch, db, during, timeout=90)
    assert [r[0] for r in rows] == ["lead.accepted"] * 50
    n = ch.execute(f"SELECT count(), uniqExact(event_id) FROM {db}.events FINAL WHERE causation_id IN %(c)s",
                   {"c": tuple(during)})[0]
    assert n == (50, 50)
    assert not _crashed(supervisor, agent, before_restarts)
