"""GET /v1/analytics/metrics, /series and /breakdown over HTTP (FastAPI's test client) against
the real ClickHouse: the answers, the 422 problems with their field paths, the 403s of a
partner's crafted requests, and the OpenAPI description. The scope comes from test headers
here; the API's sign-in provides it in production."""
from __future__ import annotations

import os

import pytest
from fastapi import FastAPI, Header
from fastapi.testclient import TestClient

from api.analytics import analytics_router
from api.errors import install_error_handlers
from domain.analytics import DIMENSIONS, PARTNER_DEFAULTS, AnalyticsScope, parse_request
from projections.analytics import Analytics, ClientPool
from projections.clickhouse import connect
from streams.settings import get_settings
from tests.projections import analytics_dataset as data

DB = f"an_test_analytics_api_{os.getpid()}"
RANGE = {"since": "2025-11-24", "until": "2025-11-26"}


def scope_from_headers(x_tenants: str | None = Header(None), x_partner: str | None = Header(None),
                       x_metrics: str | None = Header(None)) -> AnalyticsScope:
    """Test stand-in for the sign-in: comma-separated tenants / metrics, absent = all."""
    split = lambda v: frozenset(v.split(",")) if v is not None else None  # noqa: E731
    return AnalyticsScope(split(x_tenants), x_partner, split(x_metrics))


PARTNER = {"x-tenants": "jobsnearby", "x-partner": "ziprecruiter", "x-metrics": ",".join(sorted(PARTNER_DEFAULTS))}


@pytest.fixture(scope="module")
def engine():
    s = get_settings()
    client = connect(s.clickhouse_host, s.clickhouse_port)
    data.load(client, DB)
    yield Analytics(ClientPool(lambda: connect(s.clickhouse_host, s.clickhouse_port)), DB, data.SHARES)
    client.execute(f"DROP DATABASE IF EXISTS {DB}")
    client.disconnect()


@pytest.fixture(scope="module")
def http(engine):
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(analytics_router(None, scope_from_headers, engine=engine))
    return TestClient(app)


def test_the_catalogue_is_listed_per_scope(http):
    every = http.get("/v1/analytics/metrics").json()
    assert len(every["metrics"]) >= 60 and {d["name"] for d in every["dimensions"]} == set(DIMENSIONS)
    ctr = next(m for m in every["metrics"] if m["name"] == "ctr_human")
    assert ctr["derived"] and ctr["unit"] == "ratio" and ctr["inputs"] == ["clicks_human_unique", "sends_dispatched"]
    mine = http.get("/v1/analytics/metrics", headers=PARTNER).json()
    assert {m["name"] for m in mine["metrics"]} == set(PARTNER_DEFAULTS)


def test_a_series_answers_what_the_raw_events_count(http):
    r = http.get("/v1/analytics/series", params={**RANGE, "metrics": "leads_accepted,ctr_human",
                                                 "group_by": "tenant", "granularity": "day", "list": ["daily-jobs", "daily"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["buckets"] == ["2025-11-24T00:00:00Z", "2025-11-25T00:00:00Z", "2025-11-26T00:00:00Z"]
    assert body["filters"] == {"list": ["daily-jobs", "daily"]}
    req = parse_request(["leads_accepted"], RANGE["since"], RANGE["until"], "day", ["tenant"],
                        {"list": ["daily-jobs", "daily"]})
    want = data.expected(req, AnalyticsScope(None, None, None), series=True)
    accepted = body["series"][0]
    assert accepted["metric"] == "leads_accepted" and accepted["unit"] == "count"
    for g in accepted["groups"]:
        for p in g["points"]:
            key = (__import__("datetime").datetime.fromisoformat(p["t"][:-1]), g["group"]["tenant"])
            assert p["value"] == want.get(key, {}).get("leads_accepted", 0)
    assert body["series"][1]["unit"] == "ratio"


def test_a_breakdown_sorted_and_limited(http):
    r = http.get("/v1/analytics/breakdown", params={**RANGE, "metrics": ["sends_dispatched", "opens_human_unique"],
                                                    "group_by": ["tenant", "list"], "sort": "-opens_human_unique",
                                                    "limit": 2})
    body = r.json()
    assert r.status_code == 200 and len(body["rows"]) == 2 and body["truncated"] and body["groups"] > 2
    opens = [row["values"]["opens_human_unique"] for row in body["rows"]]
    assert opens == sorted(opens, reverse=True)
    assert body["totals"]["opens_human_unique"] >= sum(opens)


def test_invalid_requests_get_422_with_field_paths(http):
    r = http.get("/v1/analytics/series", params={**RANGE, "metrics": "leads_accepted,sends_dispatched,foo"})
    assert r.status_code == 422
    assert r.json()["problems"] == [{"field": "metrics[2]",
                                     "problem": "'foo' is not a metric; see GET /v1/analytics/metrics"}]
    r = http.get("/v1/analytics/breakdown", params={"metrics": "leads_accepted", "since": "soon", "until": "2025-11-26",
                                                    "group_by": "template"})
    assert r.status_code == 422 and {p["field"] for p in r.json()["problems"]} == {"since", "metrics[0]"}
    r = http.get("/v1/analytics/series", params={"metrics": "leads_accepted"})
    assert r.status_code == 422  # since and until are required


@pytest.mark.parametrize("params", [
    {"partner": "careers"},
    {"partner": ["ziprecruiter", "indeed-xml"]},
    {"tenant": "hireflow"},
    {"metrics": "revenue_cents"},
    {"metrics": "sends_skipped_daily_cap"},
])
def test_a_partners_crafted_requests_are_refused(http, params):
    r = http.get("/v1/analytics/breakdown", params={**RANGE, "metrics": "leads_accepted", **params}, headers=PARTNER)
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "forbidden" and r.json()["problems"]


def test_a_partners_breakdown_by_partner_and_tenant_is_its_own_row(http):
    r = http.get("/v1/analytics/breakdown", params={**RANGE, "metrics": "leads_accepted,clicks_human",
                                                    "group_by": "tenant,partner"}, headers=PARTNER)
    assert r.status_code == 200
    assert [row["group"] for row in r.json()["rows"]] == [{"tenant": "jobsnearby", "partner": "ziprecruiter"}]
    admin = http.get("/v1/analytics/breakdown", params={**RANGE, "metrics": "leads_accepted,clicks_human",
                                                        "group_by": "tenant,partner"}).json()
    assert len(admin["rows"]) >= 5
    mine = next(row for row in admin["rows"]
                if row["group"] == {"tenant": "jobsnearby", "partner": "ziprecruiter"})
    assert r.json()["rows"][0]["values"] == mine["values"]


def test_openapi_describes_the_routes_and_parameters(http):
    spec = http.get("/openapi.json").json()
    for path in ("/v1/analytics/metrics", "/v1/analytics/series", "/v1/analytics/breakdown"):
        assert path in spec["paths"]
    params = {p["name"]: p for p in spec["paths"]["/v1/analytics/series"]["get"]["parameters"]}
    assert set(DIMENSIONS) <= set(params)  # every dimension is a documented filter
    assert all(params[n].get("description") for n in ("metrics", "since", "until", "granularity", "group_by", "list"))
    assert params["since"]["required"] and params["metrics"]["required"]
    ok = spec["paths"]["/v1/analytics/series"]["get"]["responses"]
    assert {"200", "403", "422"} <= set(ok)
    assert "SeriesOut" in spec["components"]["schemas"] and "BreakdownOut" in spec["components"]["schemas"]
