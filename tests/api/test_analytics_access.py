"""The analytics API behind sign-in, on the live stack: answers equal the raw events, and a
partner (or an analyst) never reaches another partner's or brand's numbers, however the
request is crafted."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import httpx
import pytest

from tests.api.test_control_plane import _admin_key
from tests.integration.conftest import auth, wait_decisions, wait_for

OWN, OTHER = "jobsnearby", "hireflow"
TODAY = datetime.now(timezone.utc).date().isoformat()


def _session(settings, email: str, password: str) -> httpx.Client:
    c = httpx.Client(base_url=settings.api_url, timeout=30)
    r = c.post("/v1/session", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return c  # the caller closes it


@pytest.fixture(scope="module")
def partner_c(settings):
    c = _session(settings, "partner@ziprecruiter.example", "ziprecruiter-partner-demo")
    yield c
    c.close()


@pytest.fixture(scope="module")
def analyst_c(settings):
    c = _session(settings, "analyst@jobsnearby.example", "jobsnearby-analyst-demo")
    yield c
    c.close()


def _series(c: httpx.Client, metrics: str, **params) -> httpx.Response:
    return c.get("/v1/analytics/series", params={"metrics": metrics, "since": TODAY, "until": TODAY, **params},
                 headers=params.pop("headers", None))


def _total(r: httpx.Response, metric: str) -> int:
    assert r.status_code == 200, r.text
    return int(sum(g["total"] for s in r.json()["series"] if s["metric"] == metric for g in s["groups"]))


def test_answers_equal_the_raw_events(settings, api, ch):
    """A partner of its own, leads from it (accepted, rejected, a duplicate): the API's counts
    for it equal the distinct events in ClickHouse's events table."""
    admin = {**auth(_admin_key()), "X-Tenant": OWN}
    pid = f"an-{uuid.uuid4().hex[:8]}"
    assert api.post(f"/v1/tenants/{OWN}/partners", json={"id": pid}, headers=admin).status_code == 201
    uid = uuid.uuid4().hex[:8]
    leads = [{"email": f"a{i}.{uid}@example.com", "partner": pid, "list": "daily-jobs"} for i in range(12)]
    leads += [{"email": f"bad.{uid}@mailinator.com", "partner": pid, "list": "daily-jobs"},
              {"email": f"a0.{uid}@example.com", "partner": pid, "list": "warehouse"}]
    r = api.post("/v1/leads/batch", json={"leads": leads}, headers=admin)
    assert r.status_code == 202, r.text
    wait_decisions(ch, settings.clickhouse_database, [x["event_id"] for x in r.json()["leads"]])
    db = settings.clickhouse_database
    raw = dict(ch.execute(f"SELECT event_type, uniqExact(event_id) FROM {db}.events FINAL WHERE tenant = %(t)s "
                          f"AND partner = %(p)s AND event_date = today() AND event_type LIKE 'lead.%%' "
                          f"GROUP BY event_type", {"t": OWN, "p": pid}))
    assert raw == {"lead.submitted": 14, "lead.accepted": 12, "lead.rejected": 1, "lead.resubmitted": 1}
    metrics = "leads_submitted,leads_accepted,leads_rejected,leads_duplicate"
    want = {"leads_submitted": 14, "leads_accepted": 12, "leads_rejected": 1, "leads_duplicate": 1}

    def answered():
        got = api.get("/v1/analytics/series", headers=admin, params={
            "metrics": metrics, "since": TODAY, "until": TODAY, "partner": pid})
        totals = {m: _total(got, m) for m in want}
        return totals if totals == want else None
    assert wait_for(answered, 30, what="the rollups to hold the test's leads") == want
    # each rollup is its own materialized view, written one after the other for the same insert:
    # the daily table can hold the leads a moment before the hourly one does

    def hourly():
        got = api.get("/v1/analytics/series", headers=admin, params={
            "metrics": "leads_accepted", "since": TODAY, "until": TODAY, "granularity": "hour", "partner": pid})
        return _total(got, "leads_accepted") or None
    assert wait_for(hourly, 30, what="the hourly rollup to hold the test's leads") == 12


def test_a_partner_sees_only_its_own_source(partner_c, settings, ch):
    own = _series(partner_c, "leads_accepted")
    assert own.status_code == 200
    by_partner = partner_c.get("/v1/analytics/breakdown", params={
        "metrics": "leads_accepted", "since": TODAY, "until": TODAY, "group_by": "partner,tenant"})
    assert by_partner.status_code == 200, by_partner.text
    assert {(row["group"]["partner"], row["group"]["tenant"]) for row in by_partner.json()["rows"]} <= \
        {("ziprecruiter", OWN)}


@pytest.mark.parametrize("params", [
    {"partner": "careerbuilder"},                        # another partner of the same brand
    {"partner": "ziprecruiter,careerbuilder"},           # its own and another
    {"tenant": OTHER},                                   # another brand
    {"tenant": f"{OWN},{OTHER}"},
    {"headers": {"X-Tenant": OTHER}},                    # another brand by header
])
def test_a_partners_crafted_requests_are_refused(partner_c, params):
    r = _series(partner_c, "leads_accepted", **dict(params))
    assert r.status_code == 403, r.text


def test_a_partner_asks_only_for_the_metrics_the_brand_allows(partner_c):
    r = _series(partner_c, "revenue_cents")
    assert r.status_code == 403, r.text
    listed = partner_c.get("/v1/analytics/metrics").json()
    names = {m["name"] for m in listed["metrics"]}
    assert "leads_accepted" in names and "revenue_cents" not in names


def test_an_analyst_reads_their_brand_only(analyst_c):
    assert _series(analyst_c, "leads_accepted,revenue_cents").status_code == 200
    assert _series(analyst_c, "leads_accepted", tenant=OTHER).status_code == 403
    assert _series(analyst_c, "leads_accepted", headers={"X-Tenant": OTHER}).status_code == 403
    by_tenant = analyst_c.get("/v1/analytics/breakdown", params={
        "metrics": "leads_accepted", "since": TODAY, "until": TODAY, "group_by": "tenant"}).json()
    assert {row["group"]["tenant"] for row in by_tenant["rows"]} <= {OWN}
    assert analyst_c.get("/v1/accounting/revenue", params={"from": TODAY, "to": TODAY}).status_code == 403


def test_a_brand_admin_sees_its_own_accounting_only(settings):
    c = _session(settings, "brand@hireflow.example", "hireflow-brand-demo")
    try:
        r = c.get("/v1/accounting/revenue", params={"from": TODAY, "to": TODAY})
        assert r.status_code == 200, r.text
        assert {b["tenant"] for b in r.json()["brands"]} == {OTHER}
    finally:
        c.close()
