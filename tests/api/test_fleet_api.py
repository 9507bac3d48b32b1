"""The fleet routes against the live supervisor: every configured agent with its numbers,
pause and resume through the API as the supervisor's own /status shows them, platform
admins only, and a 503 that says so when no supervisor answers."""
from __future__ import annotations

import socket
from datetime import datetime
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.access import Access
from api.errors import install_error_handlers
from api.fleet import fleet_router
from scaling.config import load_scaling
from tests.api.people import ANALYST, BRAND_ADMIN, PLATFORM_ADMIN, signed_in
from tests.integration.conftest import auth

AGENT = "hygiene"  # pausing it for a moment holds back only the pruning of cold leads


@pytest.fixture(scope="module")
def admin(settings):
    with signed_in(settings.api_url, PLATFORM_ADMIN) as c:
        yield c


def test_the_fleet_lists_every_configured_agent_with_its_numbers(admin, settings):
    r = admin.get("/v1/fleet")
    assert r.status_code == 200, r.text
    body = r.json()
    assert sorted(a["agent"] for a in body["agents"]) == sorted(load_scaling(settings.scaling_file))
    datetime.fromisoformat(body["at"].replace("Z", "+00:00"))
    for a in body["agents"]:
        assert a["running"] >= 0 and all(w["restarts"] >= 0 for w in a["workers"]), a
        assert all(v is None or v >= 0 for v in (a["lag"], a["desired"], a["partitions"])), a
        assert a["limits"]["max_workers"] >= a["limits"]["min_workers"] >= 0
        for c in a["changes"]:
            assert c["direction"] in ("up", "down") and c["reason"] and c["to"] >= 0
    assert body["supervisor"]["pid"] and body["supervisor"]["ticks"] >= 0


def test_pause_then_resume_shows_in_the_supervisor(admin, supervisor):
    try:
        r = admin.post(f"/v1/fleet/agents/{AGENT}/pause", json={"reason": "fleet API test"})
        assert r.status_code == 200, r.text
        assert r.json()["agent"] == AGENT and r.json()["paused"] is True and r.json()["desired"] in (0, None)
        assert supervisor.status()["agents"][AGENT]["paused"] is True
    finally:
        r = admin.post(f"/v1/fleet/agents/{AGENT}/resume")
    assert r.status_code == 200, r.text
    assert r.json()["paused"] is False
    assert supervisor.status()["agents"][AGENT]["paused"] is False
    supervisor.wait(lambda a: any(w["ready"] for w in a["workers"]), AGENT, 90, f"{AGENT} to be ready again")


def test_an_unknown_agent_is_404(admin):
    r = admin.post("/v1/fleet/agents/no-such-agent/pause")
    assert r.status_code == 404 and "no-such-agent" in r.json()["message"]


def test_only_platform_admins_see_or_steer_the_fleet(settings, api, keys):
    for person in (BRAND_ADMIN, ANALYST):
        with signed_in(settings.api_url, person) as c:
            assert c.get("/v1/fleet").status_code == 403
            assert c.post(f"/v1/fleet/agents/{AGENT}/pause").status_code == 403
    assert api.get("/v1/fleet", headers=auth(keys["jobsnearby"])).status_code == 403
    assert api.post(f"/v1/fleet/agents/{AGENT}/resume", headers=auth(keys["jobsnearby"])).status_code == 403
    assert api.get("/v1/fleet").status_code == 401


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_supervisor_is_a_503_that_says_so(settings):
    app = FastAPI()
    install_error_handlers(app)
    deps = SimpleNamespace(settings=settings.model_copy(update={"supervisor_port": _closed_port()}))
    app.include_router(fleet_router(deps, lambda: Access(None, None)))
    with TestClient(app) as c:
        for r in (c.get("/v1/fleet"), c.post(f"/v1/fleet/agents/{AGENT}/pause")):
            assert r.status_code == 503 and "supervisor" in r.json()["message"], r.text
