"""GET /v1/accounting/revenue against the real ClickHouse and the partner-reports stand-in (a
process of its own): the answer's shape, scoping (a brand never sees another's figures or the
platform's share of them), 422 for bad periods naming the field, 503 when ClickHouse is away."""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from fastapi import FastAPI, Header

from api.accounting import accounting_router
from api.errors import install_error_handlers
from projections.clickhouse import connect
from scaling.drill import free_port
from streams.settings import Settings, get_settings
from runtime.deps import build
from tests.projections.accounting_stack import PLAN, SINCE, UNREACHABLE, UNTIL, Standin, book, human_totals, seed

DB = f"acc_api_{os.getpid()}"
TODAY = datetime.now(timezone.utc).date()
PARAMS = {"from": SINCE.isoformat(), "to": UNTIL.isoformat()}
TIMEOUT_S = 3.0  # generous for the healthy backends on a loaded machine; the slow one sleeps 60 s


@dataclass(frozen=True)
class Scope:
    tenants: frozenset[str] | None


def scope_from_header(x_scope: str | None = Header(None)) -> Scope:
    """The test's stand-in for the real auth: no header is the platform, else the listed brands."""
    return Scope(None if x_scope is None else frozenset(t for t in x_scope.split(",") if t))


@pytest.fixture(scope="module")
def written():
    s = get_settings()
    client = connect(s.clickhouse_host, s.clickhouse_port)
    try:
        yield seed(client, DB)
    finally:
        client.execute(f"DROP DATABASE IF EXISTS {DB}")
        client.disconnect()


@pytest.fixture(scope="module")
def standin(written):
    proc = Standin(DB, get_settings().clickhouse_port)
    proc.steer_all()
    yield proc
    proc.stop()


def app_for(standin, settings: Settings) -> FastAPI:
    deps = build(settings, book(standin.url))
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(accounting_router(deps, scope_from_header, timeout_s=TIMEOUT_S))
    return app


@pytest.fixture(scope="module")
def settings():
    return replace_settings(clickhouse_database=DB)


def replace_settings(**over) -> Settings:
    return get_settings().model_copy(update=over)


@pytest.fixture
async def api(standin, settings):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app_for(standin, settings)),
                                 base_url="http://test", timeout=30) as client:
        yield client


async def test_the_platform_sees_every_brand(api, written):
    r = await api.get("/v1/accounting/revenue", params=PARAMS)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["from"], doc["to"], doc["currency"], doc["complete"]) == ("2025-11-24", "2025-11-26", "USD", False)
    brands = {b["tenant"]: b for b in doc["brands"]}
    assert set(brands) == {*PLAN, UNREACHABLE, "ghost"}
    for tenant, b in brands.items():
        assert (b["ours"]["clicks"], b["ours"]["revenue_cents"]) == human_totals(written, tenant)
    assert {t for t, b in brands.items() if b["status"] == "unavailable"} == {"down", "erring", "slow", "broken",
                                                                               UNREACHABLE}
    assert brands["slow"]["reason"] == "timeout" and brands["slow"]["theirs"] is None
    assert brands["differs"]["status"] == "mismatch" and brands["differs"]["theirs"] == {"clicks": 2, "revenue_cents": 90}
    assert set(doc["reconciled"]["tenants"]) <= {"matched", "lossy", "differs"}
    assert {e["tenant"] for e in doc["excluded"]} >= {"down", "erring", "slow", "broken", UNREACHABLE, "unconfigured",
                                                      "ghost"}
    assert doc["settings"]["timeout_s"] == TIMEOUT_S and doc["settings"]["tolerance"]["relative"] == 0.02


async def test_figures_as_of_before_the_period_ended_are_stale_never_current(api):
    doc = (await api.get("/v1/accounting/revenue", params=PARAMS)).json()
    stale = next(b for b in doc["brands"] if b["tenant"] == "stale")
    assert stale["status"] == "stale" and stale["reason"] == "before_period_end"
    assert stale["as_of"].startswith("2025-11-26T18:00:00") and stale["stale"] == {
        "clicks": stale["ours"]["clicks"], "revenue_cents": stale["ours"]["revenue_cents"]}
    assert stale["theirs"] is None and stale["difference"] is None
    assert "stale" not in doc["reconciled"]["tenants"]


async def test_a_brand_sees_only_its_own_row_and_nothing_of_the_others(api, standin):
    asked = {b: standin.requests(b) for b in PLAN if PLAN[b] is not None}
    r = await api.get("/v1/accounting/revenue", params=PARAMS, headers={"X-Scope": "matched"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert [b["tenant"] for b in doc["brands"]] == ["matched"]
    own = doc["brands"][0]
    assert own["status"] == "matched" and doc["complete"] is True
    assert doc["earned"]["platform_cents"] == own["ours"]["platform_cents"]  # its own platform share only
    assert doc["reconciled"]["tenants"] == ["matched"] and doc["excluded"] == []
    for other in ("lossy", "differs", "ghost", "down", "Lossy", "Ghost"):
        assert other not in r.text
    # and no other brand's backend was even asked
    assert {b for b in asked if standin.requests(b) != asked[b]} == {"matched"}


async def test_a_caller_with_no_brands_sees_nothing(api):
    doc = (await api.get("/v1/accounting/revenue", params=PARAMS, headers={"X-Scope": ""})).json()
    assert doc["brands"] == [] and doc["earned"]["revenue_cents"] == 0 and doc["complete"] is True


@pytest.mark.parametrize("params, field, words", [
    ({"from": "2025-13-01", "to": "2025-11-26"}, "from", "YYYY-MM-DD"),
    ({"from": "2025-11-24", "to": "26/11/2025"}, "to", "YYYY-MM-DD"),
    ({"from": "2025-11-24", "to": "2025-11-2"}, "to", "YYYY-MM-DD"),
    ({"from": "2025-11-26", "to": "2025-11-24"}, "from", "after"),
    ({"from": "2025-11-24", "to": (TODAY + timedelta(days=2)).isoformat()}, "to", "future"),
    ({"from": "2024-01-01", "to": "2025-11-26"}, "to", "at most 366"),
    ({"to": "2025-11-26"}, "query.from", "required"),
])
async def test_bad_periods_are_422_naming_the_field(api, params, field, words):
    r = await api.get("/v1/accounting/revenue", params=params)
    assert r.status_code == 422, r.text
    doc = r.json()
    assert doc["error"] == "validation_failed"
    assert [p["field"] for p in doc["problems"]] == [field] and words.lower() in doc["problems"][0]["problem"].lower()


async def test_tomorrow_is_allowed(api):
    tomorrow = TODAY + timedelta(days=1)
    r = await api.get("/v1/accounting/revenue", params={"from": TODAY.isoformat(), "to": tomorrow.isoformat()},
                      headers={"X-Scope": "unconfigured"})
    assert r.status_code == 200 and r.json()["brands"][0]["status"] == "not_configured"


async def test_clickhouse_away_is_503(standin):
    dead = replace_settings(clickhouse_database=DB, clickhouse_port=free_port())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app_for(standin, dead)), base_url="http://test") as c:
        r = await c.get("/v1/accounting/revenue", params=PARAMS)
    assert r.status_code == 503 and r.json()["error"] == "unavailable" and r.headers["retry-after"]


async def test_openapi_describes_the_answer(api):
    spec = (await api.get("/openapi.json")).json()
    op = spec["paths"]["/v1/accounting/revenue"]["get"]
    assert {p["name"] for p in op["parameters"]} >= {"from", "to"}
    assert {"200", "422", "503"} <= set(op["responses"])
    schema = spec["components"]["schemas"]["AccountingOut"]
    assert {"from", "to", "brands", "reconciled", "excluded", "earned", "complete"} <= set(schema["properties"])
    assert "stale" in spec["components"]["schemas"]["BrandOut"]["properties"]
