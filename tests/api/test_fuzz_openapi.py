"""Schema-driven fuzzing of every API operation from its own OpenAPI description
(schemathesis), on a private platform (its own topics, Redis database and ClickHouse database,
so the writes it makes touch nothing else): no input gives a 5xx or a response that breaks the
schema the API publishes for it; a brand admin's every request naming another brand is refused;
and the tracking front answers any path, method and body without a 5xx. Examples come from a
fixed seed, so a run is repeatable."""
from __future__ import annotations

import os
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error, response_schema_conformance

from stack.isolated import IsolatedPlatform
from tests.api.people import BRAND_ADMIN, demo_password
from tests.api.test_trigger_stats import admin_key

EXAMPLES = int(os.environ.get("LEADSTREAM_FUZZ_EXAMPLES", "12"))  # per operation (~110): more for a long hunt
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck),
                database=None)


@pytest.fixture(scope="module")
def fuzzed():
    with IsolatedPlatform(redis_db=60, agents=(), fronts=("api", "tracking"),
                          env={"LEADSTREAM_API_RATE_PER_KEY": "0", "LEADSTREAM_API_RATE_PER_TENANT": "0"}) as p:
        # the brand admin signs in first: the fuzzing's own sign-ins may lock the account after
        r = httpx.post(f"{p.api_url}/v1/session", json={"email": BRAND_ADMIN, "password": demo_password(BRAND_ADMIN)})
        assert r.status_code == 200, r.text
        p.brand_session = {"cookies": dict(r.cookies), "headers": {"X-CSRF-Token": r.json()["csrf"]}}
        yield p


@pytest.fixture(scope="module")
def api_schema(fuzzed):
    return schemathesis.openapi.from_url(f"{fuzzed.api_url}/openapi.json")


@pytest.fixture(scope="module")
def brand_session(fuzzed) -> dict:
    return fuzzed.brand_session


def _each_operation(api_schema, only=lambda op: True):
    return [r.ok() for r in api_schema.get_all_operations() if only(r.ok())]


def _fuzz(operations, call) -> list[str]:
    """Run `call(case)` on generated cases of each operation; what failed, one line each."""
    failures = []
    for op in operations:
        @FUZZ
        @given(case=op.as_strategy())
        def run(case):
            call(case)
        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected: every operation is tried
            failures.append(f"{op.label}: " + " ".join(str(exc).split())[:700])
    return failures


def test_no_input_gives_a_server_error_or_breaks_the_published_schema(api_schema):
    auth = {"Authorization": f"Bearer {admin_key()}"}

    def call(case):
        response = case.call(headers=auth, timeout=30)
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
    operations = _each_operation(api_schema)
    assert len(operations) > 100
    failures = _fuzz(operations, call)
    assert not failures, "\n".join(failures)


def test_a_brand_admin_never_reaches_another_brands_data(api_schema, brand_session):
    def call(case):
        case.path_parameters = {**(case.path_parameters or {}), "tenant": "hireflow"}
        response = case.call(cookies=brand_session["cookies"], headers=brand_session["headers"], timeout=30)
        assert response.status_code in (401, 403, 404, 405, 422), (
            case.method, case.formatted_path, response.status_code, response.text[:300])
    operations = _each_operation(api_schema, lambda op: "{tenant}" in op.path)
    assert len(operations) > 30
    failures = _fuzz(operations, call)
    assert not failures, "\n".join(failures)


@given(prefix=st.sampled_from(["/c/", "/o/", "/u/", "/p/", "/", "/metrics", "/stats", "/healthz"]),
       rest=st.text(max_size=40), method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"]),
       body=st.binary(max_size=3000), content_type=st.sampled_from(["application/x-www-form-urlencoded",
                                                                     "text/plain", "application/json", ""]))
@FUZZ
def test_the_tracking_front_answers_anything_without_a_server_error(fuzzed, prefix, rest, method, body, content_type):
    url = fuzzed.tracking_url + prefix + quote(rest, safe="")
    r = httpx.request(method, url, content=body, headers={"content-type": content_type} if content_type else {},
                      timeout=30)
    assert r.status_code < 500, (method, url, r.status_code, r.text[:200])
