"""Every route of the API, called by every role, against the live API: allowed or denied as
this table says. A route the table does not know fails the test (so a new route cannot ship
without a decision about who may call it), and so does a table entry for a route that is gone.

Allowed means the call got past authentication and authorization (any answer but 401/403);
the requests are built so that an allowed call changes nothing (unknown ids, invalid bodies,
no If-Match). Each principal is also tried on a brand it has no role in: always denied.
"""
from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest import auth

OWN, OTHER = "jobsnearby", "hireflow"
ROLES = ("platform_admin", "brand_admin", "analyst", "partner", "ingest", "brand_admin_key", "anonymous")
ALL = set(ROLES) - {"anonymous"}
ADMINS = {"platform_admin"}
BRAND_ADMIN = {"platform_admin", "brand_admin", "brand_admin_key"}
READERS = BRAND_ADMIN | {"analyst"}
PUBLIC = set(ROLES)

# (method, path) -> who may call it (on their own brand)
EXPECTED: dict[tuple[str, str], set[str]] = {
    ("POST", "/webhooks/{provider}"): PUBLIC,
    ("POST", "/webhooks/crm/hubspot/{tenant}"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("POST", "/v1/session"): PUBLIC,
    ("GET", "/v1/session"): ALL,
    ("PUT", "/v1/session/password"): ALL,
    ("DELETE", "/v1/session"): ALL,
    ("POST", "/v1/leads"): BRAND_ADMIN | {"ingest", "partner"},
    ("POST", "/v1/leads/batch"): BRAND_ADMIN | {"ingest", "partner"},
    ("GET", "/v1/leads/{lead_id}"): READERS | {"ingest"},
    ("POST", "/v1/leads/{lead_id}/unsubscribe"): BRAND_ADMIN | {"ingest"},
    ("GET", "/v1/tenants"): READERS,
    ("POST", "/v1/tenants"): ADMINS,
    ("GET", "/v1/tenants/{tenant}"): READERS,
    ("PUT", "/v1/tenants/{tenant}"): BRAND_ADMIN,
    ("PATCH", "/v1/tenants/{tenant}"): BRAND_ADMIN,
    ("DELETE", "/v1/tenants/{tenant}"): ADMINS,
    ("GET", "/v1/tenants/{tenant}/webhook"): READERS,
    ("PUT", "/v1/tenants/{tenant}/webhook"): BRAND_ADMIN,
    ("DELETE", "/v1/tenants/{tenant}/webhook"): BRAND_ADMIN,
    ("GET", "/v1/tenants/{tenant}/lists/{id}/rules"): READERS,
    ("PUT", "/v1/tenants/{tenant}/lists/{id}/rules"): BRAND_ADMIN,
    ("GET", "/v1/platform/settings"): ADMINS,
    ("PUT", "/v1/platform/settings"): ADMINS,
    ("GET", "/v1/tenants/{tenant}/api-keys"): BRAND_ADMIN,
    ("POST", "/v1/tenants/{tenant}/api-keys"): BRAND_ADMIN,
    ("GET", "/v1/tenants/{tenant}/api-keys/{key_id}"): BRAND_ADMIN,
    ("DELETE", "/v1/tenants/{tenant}/api-keys/{key_id}"): BRAND_ADMIN,
    ("POST", "/v1/tenants/{tenant}/api-keys/{key_id}/rotate"): BRAND_ADMIN,
    ("GET", "/v1/platform/api-keys"): ADMINS,
    ("POST", "/v1/platform/api-keys"): ADMINS,
    ("GET", "/v1/platform/api-keys/{key_id}"): ADMINS,
    ("DELETE", "/v1/platform/api-keys/{key_id}"): ADMINS,
    ("POST", "/v1/platform/api-keys/{key_id}/rotate"): ADMINS,
    ("GET", "/v1/people"): ADMINS,
    ("POST", "/v1/people"): ADMINS,
    ("GET", "/v1/people/{email}"): ADMINS,
    ("PATCH", "/v1/people/{email}"): ADMINS,
    ("DELETE", "/v1/people/{email}"): ADMINS,
    ("GET", "/v1/tenants/{tenant}/people"): BRAND_ADMIN,
    ("POST", "/v1/tenants/{tenant}/people"): BRAND_ADMIN,
    ("GET", "/v1/tenants/{tenant}/grants"): BRAND_ADMIN,
    ("POST", "/v1/tenants/{tenant}/grants"): BRAND_ADMIN,
    ("DELETE", "/v1/tenants/{tenant}/grants/{grant_id}"): BRAND_ADMIN,
    ("GET", "/v1/platform/grants"): ADMINS,
    ("POST", "/v1/platform/grants"): ADMINS,
    ("DELETE", "/v1/platform/grants/{grant_id}"): ADMINS,
    ("GET", "/v1/audit"): BRAND_ADMIN,
    ("GET", "/v1/analytics/metrics"): READERS | {"partner"},
    ("GET", "/v1/analytics/series"): READERS | {"partner"},
    ("GET", "/v1/analytics/breakdown"): READERS | {"partner"},
    ("GET", "/v1/accounting/revenue"): BRAND_ADMIN,
    ("POST", "/v1/events"): BRAND_ADMIN | {"ingest"},
    ("POST", "/v1/events/batch"): BRAND_ADMIN | {"ingest"},
    ("POST", "/v1/activity"): BRAND_ADMIN | {"ingest"},
    ("POST", "/v1/activity/batch"): BRAND_ADMIN | {"ingest"},
    ("POST", "/v1/consent"): BRAND_ADMIN | {"ingest"},
    ("POST", "/v1/consent/batch"): BRAND_ADMIN | {"ingest"},
    ("GET", "/v1/consent"): READERS | {"ingest"},
    ("POST", "/v1/subjects/export"): BRAND_ADMIN,
    ("POST", "/v1/subjects/erase"): BRAND_ADMIN,
    ("GET", "/v1/tenants/{tenant}/segments/{segment}/members"): READERS,
    ("GET", "/v1/tenants/{tenant}/lookup"): READERS | {"ingest"},
    ("GET", "/v1/tenants/{tenant}/messages"): READERS | {"ingest"},
    ("GET", "/v1/tenants/{tenant}/messages/{send_id}"): READERS | {"ingest"},
    ("GET", "/v1/tenants/{tenant}/triggers-stats"): READERS,
    ("GET", "/v1/fleet"): ADMINS,
    ("POST", "/v1/fleet/agents/{agent}/pause"): ADMINS,
    ("POST", "/v1/fleet/agents/{agent}/resume"): ADMINS,
}
EXPECTED[("GET", "/v1/tenants/{tenant}/experiments/{experiment}/results")] = READERS
EXPECTED[("GET", "/v1/tenants/{tenant}/experiment-results")] = READERS
EXPECTED[("POST", "/v1/tenants/{tenant}/experiments/{experiment}/looks")] = BRAND_ADMIN
for _plural in ("lists", "partners", "templates", "feeds", "triggers", "segments", "experiments", "digests"):
    EXPECTED[("GET", f"/v1/tenants/{{tenant}}/{_plural}")] = READERS
    EXPECTED[("POST", f"/v1/tenants/{{tenant}}/{_plural}")] = BRAND_ADMIN
    EXPECTED[("GET", f"/v1/tenants/{{tenant}}/{_plural}/{{id}}")] = READERS
    for _m in ("PUT", "PATCH", "DELETE"):
        EXPECTED[(_m, f"/v1/tenants/{{tenant}}/{_plural}/{{id}}")] = BRAND_ADMIN

PARAMS = {"provider": "no-such-provider", "lead_id": "no-such-lead", "id": "zz-no-such", "segment": "zz-no-such",
          "experiment": "zz-no-such", "key_id": "k_000000000000",
          "email": "nobody@example.com", "grant_id": "nobody@example.com/analyst", "send_id": "no-such-send",
          "agent": "zz-no-such"}
# bodies that pass authorization and then fail validation (or name nothing): nothing changes
BODIES = {("POST", "/v1/tenants/{tenant}/api-keys"): {"role": "no-such-role"},
          ("POST", "/v1/platform/api-keys"): {"role": "no-such-role"},
          ("PUT", "/v1/platform/settings"): {"blocklist": "not-a-mapping"},
          ("PUT", "/v1/tenants/{tenant}/lists/{id}/rules"): {"dedupe": "no-such-policy"},
          ("POST", "/v1/tenants/{tenant}/api-keys/{key_id}/rotate"): {"overlap_hours": -1},
          ("POST", "/v1/platform/api-keys/{key_id}/rotate"): {"overlap_hours": -1}}


@pytest.fixture(scope="module")
def principals(settings, keys):
    """role -> (headers, cookies) for every role; a brand_admin key made for the test, revoked after."""
    from streams.settings import ROOT
    import yaml
    doc = yaml.safe_load((ROOT / "tenants" / "demo.yaml").read_text())
    admin_key = next(line.split("(plain:")[1].split(")")[0].strip()
                     for line in (ROOT / "tenants" / "demo.yaml").read_text().splitlines() if "(plain:" in line)
    out = {"platform_admin": ({**auth(admin_key), "X-Tenant": OWN}, None), "ingest": (auth(keys[OWN]), None),
           "anonymous": ({}, None)}
    api = settings.api_url
    for email, person in doc["people"].items():
        role = next(g["role"] for g in doc["grants"] if g["person"] == email)
        tenant = next((g.get("tenant") for g in doc["grants"] if g["person"] == email), None)
        if role == "platform_admin" or tenant != OWN:
            continue
        r = httpx.post(f"{api}/v1/session", json={"email": email, "password": person["demo_password"]})
        assert r.status_code == 200, r.text
        out[role] = ({"X-CSRF-Token": r.json()["csrf"]}, dict(r.cookies))
    made = httpx.post(f"{api}/v1/tenants/{OWN}/api-keys", json={"role": "brand_admin", "name": "role test"},
                      headers=out["platform_admin"][0])
    assert made.status_code == 201, made.text
    out["brand_admin_key"] = (auth(made.json()["key"]), None)
    yield out
    httpx.delete(f"{api}/v1/tenants/{OWN}/api-keys/{made.json()['id']}",
                 headers={**out["platform_admin"][0], "If-Match": f'"v{made.json()["version"]}"'})


def _routes(api) -> list[tuple[str, str]]:
    spec = api.get("/openapi.json").json()
    return sorted((m.upper(), p) for p, ops in spec["paths"].items() for m in ops)


def test_every_route_has_an_expectation_and_no_expectation_is_stale(api):
    routes = set(_routes(api))
    assert routes - set(EXPECTED) == set(), "routes with no access expectation: decide who may call them"
    assert set(EXPECTED) - routes == set(), "expectations for routes that no longer exist"


def test_every_route_declares_its_rule_in_openapi(api):
    spec = api.get("/openapi.json").json()
    missing = [(m, p) for p, ops in spec["paths"].items() for m, op in ops.items() if "x-access" not in op]
    assert missing == []


def _call(settings, principal, method: str, path: str, tenant: str) -> httpx.Response:
    headers, cookies = principal
    url = path.replace("{tenant}", tenant)
    for name, value in PARAMS.items():
        url = url.replace("{" + name + "}", value)
    headers = {**headers, "X-Tenant": tenant} if "X-Tenant" in headers else dict(headers)
    if "{tenant}" not in path and "X-Tenant" not in headers and "/v1/leads" in path:
        headers["X-Tenant"] = tenant
    body = BODIES.get((method, path), {})
    with httpx.Client(base_url=settings.api_url, cookies=cookies, timeout=30) as c:
        return c.request(method, url, headers=headers, json=body if method in ("POST", "PUT", "PATCH") else None)


CASES = [(role, route) for route in sorted(EXPECTED) for role in ROLES if route != ("DELETE", "/v1/session")]


@pytest.mark.parametrize("role, route", CASES, ids=[f"{r}-{m}-{p}" for r, (m, p) in CASES])
def test_role_on_route(settings, principals, role, route):
    method, path = route
    r = _call(settings, principals[role], method, path, OWN)
    allowed = role in EXPECTED[route]
    if allowed:
        assert r.status_code not in (401, 403), f"{role} was refused {method} {path}: {r.status_code} {r.text}"
    else:
        assert r.status_code in ((401,) if role == "anonymous" else (403, 401)), \
            f"{role} got {r.status_code} on {method} {path}: {r.text}"
    if "{tenant}" in path and role not in ("platform_admin", "anonymous") and EXPECTED[route] != PUBLIC:
        other = _call(settings, principals[role], method, path, OTHER)
        assert other.status_code == 403, f"{role} reached {method} {path} of {OTHER}: {other.status_code} {other.text}"


def test_signing_out_is_for_the_signed_in(settings, principals):
    assert _call(settings, principals["anonymous"], "DELETE", "/v1/session", OWN).status_code == 401
    r = httpx.post(f"{settings.api_url}/v1/session",
                   json={"email": "analyst@jobsnearby.example", "password": "jobsnearby-analyst-demo"})
    session = ({"X-CSRF-Token": r.json()["csrf"]}, dict(r.cookies))
    assert _call(settings, session, "DELETE", "/v1/session", OWN).status_code == 204
    assert _call(settings, session, "GET", "/v1/session", OWN).status_code == 401  # that session is over


def test_every_operation_describes_its_body_and_answer(api):
    """Partners generate clients and fuzzers drive routes from /openapi.json: every write says
    what it takes, every answer what it gives."""
    spec = api.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method in ("post", "put", "patch"):
                assert "requestBody" in op, f"{method.upper()} {path} describes no body"
            for code, answer in op["responses"].items():
                if code.startswith("2") and code != "204":
                    schema = answer.get("content", {}).get("application/json", {}).get("schema")
                    assert schema, f"{method.upper()} {path} {code} describes no answer"
                    assert schema.get("$ref") or schema.get("items") or schema.get("properties") \
                        or schema.get("additionalProperties") is not True, f"{method.upper()} {path}: untyped"
    components = spec["components"]["schemas"]
    assert {"LeadIn", "BatchIn", "LeadTaken", "LeadReadModel", "Envelope", "ListRules"} <= set(components)
