"""The bench's baseline (a scan of the events table) answers what the rollups answer, on the
known history of tests/projections/analytics_dataset.py: so the bench's "matched" means the
two agree, and the scan is a second, independent way to the same numbers."""
from __future__ import annotations

import os

import pytest

from bench._analytics_baseline import baseline_plan
from domain.analytics import METRICS, PUBLIC, AnalyticsScope, brand_scope, parse_request, partner_scope
from projections.analytics import Analytics, ClientPool
from projections.clickhouse import connect
from streams.settings import get_settings
from tests.projections import analytics_dataset as data

DB = f"an_test_baseline_{os.getpid()}"
ADMIN = AnalyticsScope(None, None, None)


@pytest.fixture(scope="module")
def engines():
    s = get_settings()
    client = connect(s.clickhouse_host, s.clickhouse_port)
    data.load(client, DB)
    pool = ClientPool(lambda: connect(s.clickhouse_host, s.clickhouse_port))
    yield Analytics(pool, DB, data.SHARES), Analytics(pool, DB, data.SHARES, planner=baseline_plan)
    client.execute(f"DROP DATABASE IF EXISTS {DB}")
    client.disconnect()


def having(*dims):
    return [n for n in PUBLIC if set(dims) <= METRICS[n].dimensions]


@pytest.mark.parametrize("kw, scope", [
    (dict(metrics=having()), ADMIN),
    (dict(metrics=having("list"), group_by=["tenant", "list"], granularity="hour"), ADMIN),
    (dict(metrics=having("template"), group_by=["template"], granularity="week"), brand_scope("jobsnearby")),
    (dict(metrics=having("creative", "job_source"), group_by=["creative", "job_source"]), ADMIN),
    (dict(metrics=having("provider"), group_by=["provider"], filters={"partner": ["ziprecruiter"]}), ADMIN),
    (dict(metrics=having("keyword"), group_by=["keyword"], filters={"list": ["daily-jobs"]}), ADMIN),
    (dict(metrics=["leads_accepted"], group_by=["category"], filters={"category": ["healthcare"]}), ADMIN),
    (dict(metrics=["leads_accepted", "leads_submitted"], filters={"keyword": ["nurse", "icu"]}), ADMIN),
    (dict(metrics=having("country", "state"), group_by=["country", "state"]), ADMIN),
    (dict(metrics=having("kind"), group_by=["kind"], filters={"channel": ["email"]}), ADMIN),
    (dict(metrics=["leads_accepted", "ctr_human", "opens_human_unique", "unsubscribes"], group_by=["partner"]),
     partner_scope("jobsnearby", "ziprecruiter")),
])
def test_the_scan_of_events_answers_like_the_rollups(engines, kw, scope):
    fast, slow = engines
    req = parse_request(kw.pop("metrics"), "2025-11-24", "2025-11-26", kw.pop("granularity", "day"),
                        kw.pop("group_by", ()), kw.pop("filters", {}))
    assert fast.series(req, scope) == slow.series(req, scope)
    assert fast.breakdown(req, scope) == slow.breakdown(req, scope)
