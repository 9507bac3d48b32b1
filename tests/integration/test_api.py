"""The ingress API against the live stack: auth, validation, limits, the happy path."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx

from tests.integration.conftest import (auth, drop_topics, email_lead_id, read_model, seed_config_topic,
                                       wait_decisions, wait_for)

LEAD = {"first_name": "Ann", "partner": "ziprecruiter", "list": "daily-jobs",
        "location": {"zip": "10001", "city": "New York", "state": "NY", "country": "US"},
        "interests": {"keywords": ["nurse"], "categories": ["healthcare"]},
        "attribution": {"utm_source": "facebook"}}


def lead(uid, **over):
    return {**LEAD, "email": f"ann.{uid}@example.com", **over}


def test_a_lead_goes_from_http_to_redis_and_clickhouse(api, keys, uid, ch, settings):
    r = api.post("/v1/leads", json=lead(uid), headers=auth(keys["jobsnearby"]))
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["lead_id"] == email_lead_id("jobsnearby", f"ann.{uid}@example.com")
    assert body["channel"] == "email" and len(body["event_id"]) == 26
    [(etype, *_)] = wait_decisions(ch, settings.clickhouse_database, [body["event_id"]])
    assert etype == "lead.accepted"
    doc = read_model(api, keys["jobsnearby"], body["lead_id"])
    assert doc["status"] == "accepted" and doc["lists"] == ["daily-jobs"]
    assert doc["attribution"] == {"utm_source": "facebook"} and doc["address"] == f"ann.{uid}@example.com"
    assert "applied" not in doc
    rows = ch.execute(f"SELECT event_type, list, partner FROM {settings.clickhouse_database}.events FINAL "
                      f"WHERE lead_id = %(l)s AND event_type LIKE 'lead.%%' ORDER BY event_type",
                      {"l": body["lead_id"]})
    assert rows == [("lead.accepted", "daily-jobs", "ziprecruiter"),
                    ("lead.submitted", "daily-jobs", "ziprecruiter")]


def test_batch_returns_one_id_per_lead_in_order(api, keys, uid):
    leads = [lead(f"{uid}-{i}") for i in range(5)]
    r = api.post("/v1/leads/batch", json={"leads": leads}, headers=auth(keys["jobsnearby"]))
    assert r.status_code == 202, r.text
    assert r.json()["count"] == 5
    assert [x["lead_id"] for x in r.json()["leads"]] == [
        email_lead_id("jobsnearby", f"ann.{uid}-{i}@example.com") for i in range(5)]


def test_missing_and_unknown_keys_are_refused(api, uid):
    r = api.post("/v1/leads", json=lead(uid))
    assert r.status_code == 401 and "Authorization: Bearer" in r.json()["message"]
    assert r.headers["www-authenticate"] == "Bearer"
    r = api.post("/v1/leads", json=lead(uid), headers=auth("ls_not_a_key"))
    assert r.status_code == 401 and "unknown" in r.json()["message"]
    r = api.post("/v1/leads", json=lead(uid), headers={"Authorization": "Basic abc"})
    assert r.status_code == 401


def test_a_tenant_cannot_read_or_write_another_tenants_leads(api, keys, uid, ch, settings):
    r = api.post("/v1/leads", json=lead(uid), headers=auth(keys["jobsnearby"]))
    lid = r.json()["lead_id"]
    wait_decisions(ch, settings.clickhouse_database, [r.json()["event_id"]])
    assert read_model(api, keys["jobsnearby"], lid)["lead_id"] == lid
    other = api.get(f"/v1/leads/{lid}", headers=auth(keys["hireflow"]))
    assert other.status_code == 404
    forged = api.post("/v1/leads", json=lead(uid), headers={**auth(keys["hireflow"]), "X-Tenant": "jobsnearby"})
    assert forged.status_code == 403 and "no role in tenant 'jobsnearby'" in forged.json()["message"]
    assert api.post(f"/v1/leads/{lid}/unsubscribe", headers=auth(keys["hireflow"])).status_code == 404


def test_admin_key_names_its_tenant(api, book, uid):
    admin = _admin_key()
    assert book.is_admin_key(admin)
    assert api.post("/v1/leads", json=lead(uid), headers=auth(admin)).status_code == 400
    r = api.post("/v1/leads", json=lead(uid), headers={**auth(admin), "X-Tenant": "jobsnearby"})
    assert r.status_code == 202
    assert api.get(f"/v1/leads/{r.json()['lead_id']}", headers=auth(admin)).status_code == 400


def _admin_key() -> str:
    from streams.settings import ROOT
    for line in (ROOT / "tenants" / "demo.yaml").read_text().splitlines():
        if "(plain:" in line:
            return line.split("(plain:")[1].split(")")[0].strip()
    raise AssertionError("demo admin key not documented in tenants/demo.yaml")


def _problems(r):
    assert r.status_code == 422, r.text
    return {p["field"]: p["problem"] for p in r.json()["problems"]}


def test_malformed_json_wrong_types_and_unknown_fields_get_clear_422s(api, keys, uid):
    h = {**auth(keys["jobsnearby"]), "content-type": "application/json"}
    assert "malformed JSON" in _problems(api.post("/v1/leads", content=b'{"email": "a@b.c",', headers=h))["(body)"]
    p = _problems(api.post("/v1/leads", json=lead(uid, location={"lat": "north", "lon": 3}), headers=h))
    assert "location.lat" in p
    p = _problems(api.post("/v1/leads", json=lead(uid, favourite_colour="blue"), headers=h))
    assert p["favourite_colour"].startswith("unknown field")
    p = _problems(api.post("/v1/leads", json={k: v for k, v in lead(uid).items() if k != "email"}, headers=h))
    assert "needs an email or a phone" in p["(body)"]
    p = _problems(api.post("/v1/leads", json=lead(uid, list="no-such-list"), headers=h))
    assert "unknown list 'no-such-list'" in p["list"]
    p = _problems(api.post("/v1/leads", json=lead(uid, list="sms-alerts"), headers=h))
    assert "SMS list" in p["phone"]
    p = _problems(api.post("/v1/leads/batch", json={"leads": [lead(uid), lead(uid, partner="")]}, headers=h))
    assert "leads.1.partner" in p
    assert "(body)" in _problems(api.post("/v1/leads", content=b"", headers=h))


def test_oversized_batches_and_bodies_get_413(api, keys, uid, settings):
    h = auth(keys["jobsnearby"])
    r = api.post("/v1/leads/batch", json={"leads": [lead(f"{uid}{i}") for i in range(1001)]}, headers=h)
    assert r.status_code == 413 and "at most 1000" in r.json()["message"]
    huge = json.dumps(lead(uid, first_name="x" * 150)).encode() * (settings.max_body_bytes // 300 + 10)
    r = api.post("/v1/leads", content=huge, headers={**h, "content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"


def test_idempotency_key_makes_a_retry_reuse_its_event_ids(api, keys, uid, ch, settings):
    h = {**auth(keys["jobsnearby"]), "Idempotency-Key": f"retry-{uid}"}
    body = {"leads": [lead(f"{uid}-a"), lead(f"{uid}-b")]}
    first = api.post("/v1/leads/batch", json=body, headers=h).json()
    second = api.post("/v1/leads/batch", json=body, headers=h).json()
    assert first == second
    causes = [x["event_id"] for x in first["leads"]]
    rows = wait_decisions(ch, settings.clickhouse_database, causes)
    time.sleep(1.0)
    assert [r[0] for r in rows] == ["lead.accepted", "lead.accepted"]
    n = ch.execute(f"SELECT uniqExact(event_id) FROM {settings.clickhouse_database}.events "
                   f"WHERE causation_id IN %(c)s", {"c": tuple(causes)})[0][0]
    assert n == 2  # the retried submissions were skipped, not counted as duplicates


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _second_api(env: dict) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "runtime.api:create_app", "--factory",
                             "--port", str(port), "--log-level", "warning"],
                            env={**os.environ, **env, "LEADSTREAM_API_PORT": str(port)})
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(url), 20, what="the second API process")
    return proc, url


def test_api_answers_503_when_kafka_cannot_take_the_lead(keys, uid, settings):
    # Kafka answers (the configuration is read) but refuses the lead: its topic does not exist
    prefix = f"t503-{uid}."
    seed_config_topic(settings, prefix)
    proc, url = _second_api({"LEADSTREAM_TOPIC_PREFIX": prefix, "LEADSTREAM_PRODUCE_TIMEOUT_S": "1.5"})
    try:
        wait_for(lambda: httpx.get(f"{url}/healthz").json().get("tenants") == 3, 20, what="its configuration")
        r = httpx.post(f"{url}/v1/leads", json=lead(uid), headers=auth(keys["jobsnearby"]), timeout=10)
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "unavailable" and r.headers["retry-after"] == "5"
        assert "nothing was accepted" in r.json()["message"]
    finally:
        proc.terminate()
        proc.wait(20)
        drop_topics(settings, prefix)


def test_api_without_kafka_answers_503_never_2xx_or_401(keys, uid):
    # no Kafka at all: no configuration to check the key against, and nowhere to store the lead
    proc, url = _second_api({"LEADSTREAM_KAFKA_BOOTSTRAP": "127.0.0.1:1"})
    try:
        r = httpx.post(f"{url}/v1/leads", json=lead(uid), headers=auth(keys["jobsnearby"]), timeout=10)
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "unavailable" and "configuration" in r.json()["message"]
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 503
    finally:
        proc.terminate()
        proc.wait(20)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code in (200, 503)
    except httpx.HTTPError:
        return False


def test_openapi_docs_describe_the_endpoints(api):
    spec = api.get("/openapi.json").json()
    assert {"/v1/leads", "/v1/leads/batch", "/v1/leads/{lead_id}", "/healthz"} <= set(spec["paths"])
    assert api.get("/docs").status_code == 200
