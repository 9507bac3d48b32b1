"""Per-key and per-tenant rate limits on the API (a private API process with low limits): over
its rate a caller gets 429 with Retry-After and the API's error document, whichever limit it
hit is named, and other callers and tenants go on being served."""
from __future__ import annotations

import time

import httpx
import pytest

from stack.isolated import IsolatedPlatform
from tests.api.test_trigger_stats import admin_key

# a key: 2 requests a second, bursts of 4; a tenant: 1 a second, bursts of 2
ENV = {"LEADSTREAM_API_RATE_PER_KEY": "2", "LEADSTREAM_API_RATE_PER_TENANT": "1"}


@pytest.fixture(scope="module")
def private_api():
    with IsolatedPlatform(redis_db=58, agents=(), fronts=("api",), env=ENV) as p:
        with httpx.Client(base_url=p.api_url, timeout=30) as c:
            yield c


def refused(r: httpx.Response) -> bool:
    if r.status_code != 429:
        return False
    assert int(r.headers["Retry-After"]) >= 1
    assert r.json()["error"] == "rate_limited"
    return True


def test_a_key_over_its_rate_gets_429_while_each_tenant_stays_under_its_own(private_api):
    auth = {"Authorization": f"Bearer {admin_key()}"}
    tenants = ["jobsnearby", "hireflow", "shiftly"] * 2  # two each: no tenant goes over its burst
    answers = [private_api.get(f"/v1/tenants/{t}/lists", headers=auth) for t in tenants]
    assert [r.status_code for r in answers[:4]] == [200] * 4  # the key's burst
    over = [r for r in answers[4:] if refused(r)]
    assert over and all("this API key or person" in r.json()["message"] for r in over)


def test_a_tenant_over_its_rate_gets_429_whichever_key_asks(private_api, keys):
    time.sleep(2.5)  # the tenants' buckets fill again
    ingest = {"Authorization": f"Bearer {keys['jobsnearby']}"}
    # the lead is invalid on purpose: the limit is checked before the body, so 422 means "let through"
    answers = [private_api.post("/v1/leads", headers=ingest, json={"email": "not-an-address"}) for _ in range(3)]
    assert [r.status_code for r in answers[:2]] == [422, 422]
    assert refused(answers[2]) and "tenant 'jobsnearby'" in answers[2].json()["message"]
    other = private_api.post("/v1/leads", headers={"Authorization": f"Bearer {keys['hireflow']}"},
                             json={"email": "not-an-address"})
    assert other.status_code == 422  # another tenant is served meanwhile
