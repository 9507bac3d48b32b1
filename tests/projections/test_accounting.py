"""The accounting report end to end: our clicks in the real ClickHouse, each brand's backend the
real partner-reports stand-in (a process of its own) steered to answer well, lose clicks, be
down, slow, broken, stale or different. Outcomes are asserted, never durations."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta

import httpx
import pytest
import yaml

from domain.accounting import Status, Tolerance, Unavailable
from domain.partner_reports import Figures, Period
from projections.accounting import accounting_report, fetch_report, report_as_dict
from projections.clickhouse import connect
from streams.settings import get_settings
from tests.integration.conftest import drop_topics, seed_config_topic
from tests.projections.accounting_stack import (PLAN, ROOT, SINCE, UNREACHABLE, UNTIL, Standin, book, human_totals,
                                                seed)

DB = f"acc_proj_{os.getpid()}"
PERIOD = Period(SINCE, UNTIL)
TIMEOUT_S = 3.0  # generous for the healthy backends on a loaded machine; the slow one sleeps 60 s


@pytest.fixture(scope="module")
def ch():
    s = get_settings()
    client = connect(s.clickhouse_host, s.clickhouse_port)
    yield client
    client.execute(f"DROP DATABASE IF EXISTS {DB}")
    client.disconnect()


@pytest.fixture(scope="module")
def written(ch):
    return seed(ch, DB)


@pytest.fixture(scope="module")
def standin(written):
    proc = Standin(DB, get_settings().clickhouse_port)
    proc.steer_all()
    yield proc
    proc.stop()


def run(standin, scope=None, **kw):
    s = get_settings()
    return asyncio.run(accounting_report(lambda: connect(s.clickhouse_host, s.clickhouse_port), DB,
                                         book(standin.url), PERIOD, scope=scope, timeout_s=TIMEOUT_S, **kw))


@pytest.fixture(scope="module")
def report(standin):
    return run(standin)


@pytest.fixture(scope="module")
def rows(report):
    return {r.tenant: r for r in report.rows}


def test_every_brand_has_a_row_with_our_own_figures(rows, written):
    assert set(rows) == {*PLAN, UNREACHABLE, "ghost"}
    for tenant, row in rows.items():
        assert (row.ours.clicks, row.ours.revenue_cents) == human_totals(written, tenant), tenant
        if row.ours.brand_cents is not None:
            assert row.ours.brand_cents + row.ours.platform_cents == row.ours.revenue_cents


def test_matched(rows):
    r = rows["matched"]
    assert r.status is Status.MATCHED and r.theirs == r.ours.figures and r.difference.revenue_cents == 0
    assert r.as_of is not None and r.day_differences == ()


def test_a_backend_that_loses_a_few_clicks(rows, ch):
    r = rows["lossy"]
    # the stand-in loses the clicks whose event id hashes to 0 modulo 64: count them independently
    ((lost, lost_cents),) = ch.execute(
        f"SELECT countIf(cityHash64(event_id) % 64 = 0), sumIf(cpc_cents, cityHash64(event_id) % 64 = 0) "
        f"FROM {DB}.engagement FINAL WHERE tenant = 'lossy' AND is_bot = 0 AND slot != 'honeypot' "
        f"AND day <= toDate('2025-11-26')")
    assert lost > 0, "the fixture must make the backend lose something"
    assert r.theirs == Figures(r.ours.clicks - lost, r.ours.revenue_cents - lost_cents)
    assert (r.difference.clicks, r.difference.revenue_cents) == (-lost, -lost_cents)
    assert r.day_differences and all(d.theirs.clicks <= d.ours.clicks for d in r.day_differences)
    within = Tolerance().allows(lost, r.ours.clicks, 0) and Tolerance().allows(lost_cents, r.ours.revenue_cents, 0)
    assert r.status is (Status.WITHIN_TOLERANCE if within else Status.MISMATCH)


def test_different_figures_are_a_mismatch(rows):
    r = rows["differs"]
    assert r.status is Status.MISMATCH and r.reason == "beyond_tolerance"
    assert r.theirs == Figures(2, 90)
    assert r.difference.revenue_cents == 90 - r.ours.revenue_cents
    assert r.difference.platform_cents == 45 - r.ours.platform_cents  # their 0.90 split 50/50


@pytest.mark.parametrize("brand, reason, words", [
    ("down", "http_error", "HTTP 503"),
    ("erring", "http_error", "HTTP 500"),
    ("slow", "timeout", f"within {TIMEOUT_S:g}s"),
    ("broken", "malformed", "not JSON"),
    (UNREACHABLE, "unreachable", "Connect"),
])
def test_a_backend_that_fails_makes_only_its_brand_unavailable(rows, brand, reason, words):
    r = rows[brand]
    assert r.status is Status.UNAVAILABLE and r.reason == reason and words in r.detail, r.detail
    assert r.theirs is None and r.stale is None and r.difference is None
    assert r.ours.clicks > 0  # our side is still reported


def test_the_slow_backend_was_asked_and_the_others_answered_meanwhile(rows, standin):
    assert standin.requests("slow") >= 1
    assert {t for t, r in rows.items() if r.status in (Status.MATCHED, Status.WITHIN_TOLERANCE, Status.MISMATCH)} \
        == {"matched", "lossy", "differs"}


def test_figures_from_before_the_end_of_the_period_are_stale_not_current(rows):
    r = rows["stale"]
    assert r.status is Status.STALE and r.reason == "before_period_end"
    assert r.as_of.isoformat() == "2025-11-26T18:00:00+00:00"
    assert r.stale == r.ours.figures  # the figures are shown, apart ...
    assert r.theirs is None and r.difference is None  # ... never as current ones


def test_figures_older_than_max_age_are_stale(rows, standin):
    assert rows["old"].status is Status.STALE and rows["old"].reason == "too_old"
    relaxed = {r.tenant: r for r in run(standin, scope=frozenset({"old"}), max_age=timedelta(hours=6)).rows}
    assert relaxed["old"].status is Status.MATCHED


def test_not_configured_brands_are_never_asked(rows, standin):
    r = rows["unconfigured"]
    assert r.status is Status.NOT_CONFIGURED and r.reason == "no_report_url"
    assert standin.requests("unconfigured") == 0
    ghost = rows["ghost"]
    assert ghost.status is Status.NOT_CONFIGURED and ghost.reason == "not_in_tenant_file"
    assert ghost.ours.brand_share is None and ghost.ours.platform_cents is None and ghost.ours.clicks == 3


def test_totals_are_over_the_brands_that_answered_and_say_who_is_left_out(report, rows):
    current = ["matched", "lossy", "differs"]
    assert sorted(report.reconciled.tenants) == sorted(current)
    assert report.reconciled.ours == sum((rows[t].ours.figures for t in current), Figures())
    assert report.reconciled.theirs == sum((rows[t].theirs for t in current), Figures())
    assert {e.tenant: e.reason for e in report.excluded} == {
        "down": "http_error", "erring": "http_error", "slow": "timeout", "broken": "malformed",
        UNREACHABLE: "unreachable", "stale": "before_period_end", "old": "too_old",
        "unconfigured": "no_report_url", "ghost": "not_in_tenant_file"}
    assert not report.complete
    earned = report.earned
    assert earned.revenue_cents == sum(r.ours.revenue_cents for r in rows.values())
    assert earned.unsplit_cents == rows["ghost"].ours.revenue_cents
    assert earned.brand_cents + earned.platform_cents + earned.unsplit_cents == earned.revenue_cents


def test_a_scoped_report_asks_and_shows_only_its_brands(standin):
    before = {b: standin.requests(b) for b in PLAN if PLAN[b] is not None}
    scoped = run(standin, scope=frozenset({"matched", "nobody"}))
    assert [r.tenant for r in scoped.rows] == ["matched"] and scoped.complete
    assert scoped.earned.revenue_cents == scoped.rows[0].ours.revenue_cents
    after = {b: standin.requests(b) for b in before}
    assert {b for b in before if after[b] != before[b]} == {"matched"}
    text = json.dumps(report_as_dict(scoped))
    assert all(other not in text for other in ("lossy", "ghost", "differs", "Lossy"))


def test_a_backend_back_up_is_current_again(standin):
    standin.steer("down", mode="down", fail_next=1, undercount_every=0)
    first, second = (run(standin, scope=frozenset({"down"})).rows[0] for _ in range(2))
    assert first.status is Status.UNAVAILABLE and second.status is Status.MATCHED
    standin.steer("down", **PLAN["down"])


def test_the_command_line(standin, tmp_path, request):
    tenants = {"tenants": {t: {"name": t.title(), "api_key_sha256": [], "lists": {},
                               "revenue": {"brand_share": 0.7,
                                           "report_url": "" if PLAN[t] is None else f"{{reports_url}}/reports/{t}"}}
                           for t in ("matched", "down", "unconfigured")}}
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump(tenants))
    # the command reads the platform's configuration: a private one holding these brands
    prefix = f"acc-{uuid.uuid4().hex[:8]}."
    settings = get_settings().model_copy(update={"reports_url": standin.url})
    seed_config_topic(settings, prefix, path)
    request.addfinalizer(lambda: drop_topics(settings, prefix))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LEADSTREAM_TOPIC_PREFIX": prefix,
           "LEADSTREAM_REPORTS_URL": standin.url, "COLUMNS": "160"}
    args = [sys.executable, "-m", "projections.accounting", "--since", str(SINCE), "--until", str(UNTIL),
            "--database", DB, "--timeout", "2"]
    out = subprocess.run([*args, "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert {b["tenant"]: b["status"] for b in doc["brands"]} == {
        "matched": "matched", "down": "unavailable", "unconfigured": "not_configured", "lossy": "not_configured",
        "differs": "not_configured", "slow": "not_configured", "broken": "not_configured", "erring": "not_configured",
        "stale": "not_configured", "old": "not_configured", UNREACHABLE: "not_configured", "ghost": "not_configured"}
    assert doc["reconciled"]["tenants"] == ["matched"] and doc["complete"] is False
    table = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert table.returncode == 0, table.stderr
    assert "left out of the reconciled totals" in table.stdout and "down (unavailable: http_error)" in table.stdout


@pytest.mark.parametrize("url", ["http://[not-a-host/reports/x", "reports.example/x", "ftp://127.0.0.1/x"])
async def test_a_report_url_that_is_no_url_makes_its_brand_unavailable(url):
    async with httpx.AsyncClient() as http:
        outcome = await fetch_report(http, "x", url, PERIOD, 1.0)
    assert isinstance(outcome, Unavailable) and outcome.code == "unreachable", outcome
