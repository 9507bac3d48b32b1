"""The control plane against the live stack: versions and If-Match, refusals that change
nothing, the audit log, a change reaching every running process, a process started after the
change, API keys (shown once, revoked, rotated), and the import being idempotent."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from tests.integration.conftest import auth, drop_topics, seed_config_topic, wait_for

OWN = "jobsnearby"


def _admin_key() -> str:
    from streams.settings import ROOT
    return next(line.split("(plain:")[1].split(")")[0].strip()
                for line in (ROOT / "tenants" / "demo.yaml").read_text().splitlines() if "(plain:" in line)


@pytest.fixture(scope="module")
def admin(settings):
    with httpx.Client(base_url=settings.api_url, headers=auth(_admin_key()), timeout=30) as c:
        yield c


@pytest.fixture
def partner(admin):
    """A partner made for one test, deleted after."""
    pid = f"p-{uuid.uuid4().hex[:8]}"
    r = admin.post(f"/v1/tenants/{OWN}/partners", json={"id": pid, "name": "Test partner"})
    assert r.status_code == 201, r.text
    yield pid
    cur = admin.get(f"/v1/tenants/{OWN}/partners/{pid}")
    if cur.status_code == 200:
        admin.delete(f"/v1/tenants/{OWN}/partners/{pid}", headers={"If-Match": cur.headers["etag"]})


def test_versions_etags_and_if_match(admin, partner):
    url = f"/v1/tenants/{OWN}/partners/{partner}"
    r = admin.get(url)
    assert r.status_code == 200 and r.headers["etag"] == '"v1"' and r.json()["version"] == 1
    assert admin.post(f"/v1/tenants/{OWN}/partners", json={"id": partner}).status_code == 409
    assert admin.patch(url, json={"name": "x"}).status_code == 428
    stale = admin.patch(url, json={"name": "x"}, headers={"If-Match": '"v0"'})
    assert stale.status_code == 412 and "version 1" in stale.json()["message"]
    ok = admin.patch(url, json={"name": "Renamed"}, headers={"If-Match": '"v1"'})
    assert ok.status_code == 200 and ok.headers["etag"] == '"v2"' and ok.json()["data"]["name"] == "Renamed"
    again = admin.patch(url, json={"name": "Again"}, headers={"If-Match": '"v1"'})  # a second writer, too late
    assert again.status_code == 412
    assert admin.get(url).json()["data"]["name"] == "Renamed"


def test_an_invalid_change_is_422_with_the_path_and_nothing_applied(admin):
    url = f"/v1/tenants/{OWN}/lists/daily-jobs"
    before = admin.get(url)
    etag = before.headers["etag"]
    for patch, field in (({"send_time": "25:00"}, "lists.daily-jobs.send_time"),
                         ({"providers": ["carrier-pigeon"]}, "lists.daily-jobs.providers[0]"),
                         ({"cadence": "hourly"}, "lists.daily-jobs.cadence"),
                         ({"template": "no-such-template"}, "lists.daily-jobs.template"),
                         ({"rules": {"intake": {"partners": ["no-such-partner"]}}},
                          "lists.daily-jobs.rules.intake.partners[0]")):
        r = admin.patch(url, json=patch, headers={"If-Match": etag})
        assert r.status_code == 422, r.text
        assert field in [p["field"] for p in r.json()["problems"]], r.json()
    assert r.json()["message"]
    after = admin.get(url)
    assert after.headers["etag"] == etag and after.json()["data"] == before.json()["data"]


def test_deleting_what_is_in_use_is_409_and_a_delete_needs_if_match(admin):
    r = admin.get(f"/v1/tenants/{OWN}")
    assert admin.delete(f"/v1/tenants/{OWN}", headers={"If-Match": r.headers["etag"]}).status_code == 409
    assert admin.get(f"/v1/tenants/{OWN}").status_code == 200


def test_every_change_is_in_the_audit_log_with_who_where_before_and_after(admin, partner, settings):
    url = f"/v1/tenants/{OWN}/partners/{partner}"
    admin.patch(url, json={"name": "Audited"}, headers={"If-Match": '"v1"', "User-Agent": "audit-test/1"})
    key = f"partner:{OWN}/{partner}"

    def entries():
        r = admin.get("/v1/audit", params={"key": key})
        return r.json() if r.status_code == 200 and len(r.json()) >= 2 else None
    rows = wait_for(entries, 30, what="the audit entries")
    newest, first = rows[0], rows[-1]
    assert [e["version"] for e in rows] == [2, 1]
    assert newest["actor"].startswith("key:k_") and newest["actor_ip"] == "127.0.0.1"
    assert newest["user_agent"] == "audit-test/1" and newest["source"] == "api"
    assert newest["before"]["name"] == "Test partner" and newest["after"]["name"] == "Audited"
    assert {"path": "name", "before": "Test partner", "after": "Audited"} in newest["change"]
    assert first["before"] is None and first["op"] == "upserted"


def test_brand_admins_read_their_audit_only_analysts_not_at_all(settings, admin, partner):
    brand = httpx.post(f"{settings.api_url}/v1/session",
                       json={"email": "brand@hireflow.example", "password": "hireflow-brand-demo"})
    rows = httpx.get(f"{settings.api_url}/v1/audit", cookies=brand.cookies, params={"limit": 1000}).json()
    assert rows and {e["tenant"] for e in rows} == {"hireflow"}
    crafted = httpx.get(f"{settings.api_url}/v1/audit", cookies=brand.cookies, params={"tenant": OWN})
    assert crafted.status_code == 403
    analyst = httpx.post(f"{settings.api_url}/v1/session",
                         json={"email": "analyst@jobsnearby.example", "password": "jobsnearby-analyst-demo"})
    assert httpx.get(f"{settings.api_url}/v1/audit", cookies=analyst.cookies).status_code == 403


def test_secrets_never_come_back(admin):
    r = admin.get(f"/v1/tenants/{OWN}/webhook")
    assert r.status_code == 200 and r.json()["data"]["secret"] == "(secret)"
    people = admin.get("/v1/people").json()
    assert people and all("password_hash" not in p for p in people)
    assert "hook-secret" not in admin.get("/v1/audit", params={"entity": "webhook"}).text


# --- a change reaches every process --------------------------------------------------------

def _versions(settings, supervisor) -> dict[str, int]:
    """The configuration version every running process reports."""
    out = {"api": httpx.get(f"{settings.api_url}/healthz").json()["config_version"]}
    status = supervisor.status()
    out["supervisor"] = status["config_version"]
    out["tracking"] = _metric(f"http://{settings.tracking_internal_host}:{settings.tracking_internal_port}/metrics")
    for agent in status["agents"].values():
        for w in agent["workers"]:
            # a worker still starting has not opened its metrics port (nor read the configuration)
            if w["state"] == "running" and w["ready"] and w["metrics_port"]:
                out[w["name"]] = _metric(f"http://127.0.0.1:{w['metrics_port']}/metrics")
    return out


def _metric(url: str) -> int:
    text = httpx.get(url, timeout=5).text
    m = re.search(r"^leadstream_config_version (\S+)$", text, re.M)
    return int(float(m.group(1))) if m else -1


def test_a_change_reaches_every_running_process(admin, settings, supervisor, partner):
    r = admin.patch(f"/v1/tenants/{OWN}/partners/{partner}", json={"name": "Everywhere"},
                    headers={"If-Match": '"v1"'})
    target = httpx.get(f"{settings.api_url}/healthz").json()["config_version"]
    assert r.status_code == 200
    started = time.monotonic()
    versions = wait_for(lambda: (v := _versions(settings, supervisor)) and min(v.values()) >= target and v,
                        30, what="every process to apply the change")
    took = time.monotonic() - started
    print(f"\nconfiguration version {target} applied by {len(versions)} processes in {took:.2f}s: {sorted(versions)}")
    assert {"api", "supervisor", "tracking"} <= set(versions) and len(versions) >= 10


def test_a_process_started_after_the_change_has_it(admin, settings, partner):
    admin.patch(f"/v1/tenants/{OWN}/partners/{partner}", json={"name": "Late"}, headers={"If-Match": '"v1"'})
    from scaling.drill import free_port
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "runtime.api:create_app", "--factory",
                             "--port", str(port), "--log-level", "warning"], env={**os.environ})
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _get(f"{url}/healthz") == 200, 30, what="the new API process")
        r = httpx.get(f"{url}/v1/tenants/{OWN}/partners/{partner}", headers=auth(_admin_key()))
        assert r.json()["data"]["name"] == "Late" and r.headers["etag"] == '"v2"'
    finally:
        proc.terminate()
        proc.wait(20)


def _get(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0


# --- API keys ------------------------------------------------------------------------------

def _lead(uid: str) -> dict:
    return {"email": f"key.{uid}@example.com", "partner": "ziprecruiter", "list": "daily-jobs"}


def test_a_key_is_shown_once_works_and_stops_when_revoked(admin, settings):
    made = admin.post(f"/v1/tenants/{OWN}/api-keys", json={"role": "ingest", "name": "crm sync"})
    assert made.status_code == 201
    key, kid = made.json()["key"], made.json()["id"]
    listed = admin.get(f"/v1/tenants/{OWN}/api-keys").json()
    assert any(k["id"] == kid for k in listed) and key not in admin.get(f"/v1/tenants/{OWN}/api-keys").text
    with httpx.Client(base_url=settings.api_url, headers=auth(key)) as c:
        assert c.post("/v1/leads", json=_lead(uuid.uuid4().hex[:8])).status_code == 202
        assert c.get(f"/v1/tenants/{OWN}/api-keys").status_code == 403  # an ingest key manages nothing
        assert admin.delete(f"/v1/tenants/{OWN}/api-keys/{kid}", headers={"If-Match": '"v1"'}).status_code == 204
        r = c.post("/v1/leads", json=_lead(uuid.uuid4().hex[:8]))
        assert r.status_code == 401 and "revoked" in r.json()["message"]


def test_rotation_keeps_the_old_key_for_the_overlap_only(admin, settings):
    made = admin.post(f"/v1/tenants/{OWN}/api-keys", json={"role": "ingest", "name": "rotating"}).json()
    rotated = admin.post(f"/v1/tenants/{OWN}/api-keys/{made['id']}/rotate", json={"overlap_hours": 1},
                         headers={"If-Match": '"v1"'})
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()["new"]
    assert rotated.json()["old"]["expires_at_ms"] > time.time() * 1000
    for key in (made["key"], new["key"]):  # both work during the overlap
        assert httpx.post(f"{settings.api_url}/v1/leads", json=_lead(uuid.uuid4().hex[:8]),
                          headers=auth(key)).status_code == 202
    # rotating again with no overlap ends the previous key at once
    again = admin.post(f"/v1/tenants/{OWN}/api-keys/{new['id']}/rotate", json={"overlap_hours": 0},
                       headers={"If-Match": '"v1"'})
    assert again.status_code == 201
    assert httpx.post(f"{settings.api_url}/v1/leads", json=_lead("x"), headers=auth(new["key"])).status_code == 401
    assert httpx.post(f"{settings.api_url}/v1/leads", json=_lead(uuid.uuid4().hex[:8]),
                      headers=auth(again.json()["new"]["key"])).status_code == 202
    for k in (made, new, again.json()["new"]):
        cur = admin.get(f"/v1/tenants/{OWN}/api-keys/{k['id']}")
        admin.delete(f"/v1/tenants/{OWN}/api-keys/{k['id']}", headers={"If-Match": cur.headers["etag"]})


def test_a_partner_key_speaks_only_for_its_own_source(admin, settings):
    made = admin.post(f"/v1/tenants/{OWN}/api-keys", json={"role": "partner", "partner": "ziprecruiter"}).json()
    try:
        ok = httpx.post(f"{settings.api_url}/v1/leads", json=_lead(uuid.uuid4().hex[:8]), headers=auth(made["key"]))
        assert ok.status_code == 202
        other = {**_lead(uuid.uuid4().hex[:8]), "partner": "careerbuilder"}
        r = httpx.post(f"{settings.api_url}/v1/leads", json=other, headers=auth(made["key"]))
        assert r.status_code == 403 and r.json()["problems"][0]["field"] == "partner"
    finally:
        admin.delete(f"/v1/tenants/{OWN}/api-keys/{made['id']}", headers={"If-Match": '"v1"'})
    bad = admin.post(f"/v1/tenants/{OWN}/api-keys", json={"role": "partner", "partner": "no-such-partner"})
    assert bad.status_code == 422 and bad.json()["problems"][0]["field"].endswith(".partner")


# --- import ---------------------------------------------------------------------------------

def test_importing_the_same_file_twice_changes_nothing(settings, tmp_path):
    prefix = f"imp-{uuid.uuid4().hex[:8]}."
    seed_config_topic(settings, prefix)  # a private configuration: the first import
    env = {**os.environ, "LEADSTREAM_TOPIC_PREFIX": prefix, "PYTHONPATH": str(settings.tenants_file.parents[1])}
    try:
        out = subprocess.run([sys.executable, "-m", "stack.config_cli", "import", str(settings.tenants_file)],
                             env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert re.search(r": 0 created, 0 changed, \d+ unchanged", out.stdout), out.stdout
        exported = tmp_path / "export.yaml"
        out = subprocess.run([sys.executable, "-m", "stack.config_cli", "export", str(exported)],
                             env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and "jobsnearby" in exported.read_text()
        out = subprocess.run([sys.executable, "-m", "stack.config_cli", "import", str(exported)],
                             env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and ": 0 created, 0 changed" in out.stdout, out.stdout
        broken = tmp_path / "broken.yaml"
        broken.write_text(exported.read_text().replace("send_time: 08:00", "send_time: '25:00'"))
        out = subprocess.run([sys.executable, "-m", "stack.config_cli", "import", str(broken)],
                             env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 1 and "tenants.hireflow.lists.tech-weekly.send_time" in out.stderr
        assert "nothing was imported" in out.stderr
    finally:
        drop_topics(settings, prefix)


def _everywhere(settings, supervisor) -> None:
    """Wait until every running process holds the configuration the API holds now."""
    target = httpx.get(f"{settings.api_url}/healthz").json()["config_version"]
    wait_for(lambda: min(_versions(settings, supervisor).values()) >= target, 30,
             what="every process to apply the change")


def test_a_blocklist_change_applies_to_the_next_lead(admin, settings, ch, supervisor):
    """The global blocklist is platform configuration: an address added through the API is
    refused from the next lead on, and taken off again, accepted."""
    from tests.integration.conftest import wait_decisions
    uid = uuid.uuid4().hex[:8]
    address = f"blocked.{uid}@example.com"
    cur = admin.get("/v1/platform/settings")
    data = cur.json()["data"]
    blocked = {**data, "blocklist": {**data["blocklist"], "emails": data["blocklist"]["emails"] + [address]}}
    put = admin.put("/v1/platform/settings", json=blocked, headers={"If-Match": cur.headers["etag"]})
    assert put.status_code == 200, put.text
    _everywhere(settings, supervisor)
    try:
        r = admin.post("/v1/leads", json={"email": address, "partner": "ziprecruiter", "list": "daily-jobs"},
                       headers={"X-Tenant": OWN})
        [decision] = wait_decisions(ch, settings.clickhouse_database, [r.json()["event_id"]])
        assert decision[0] == "lead.rejected" and "blocklisted" in decision[2]
    finally:
        now = admin.get("/v1/platform/settings")
        assert admin.put("/v1/platform/settings", json=data, headers={"If-Match": now.headers["etag"]}).status_code == 200
    _everywhere(settings, supervisor)
    r = admin.post("/v1/leads", json={"email": address, "partner": "ziprecruiter", "list": "warehouse"},
                   headers={"X-Tenant": OWN})
    [decision] = wait_decisions(ch, settings.clickhouse_database, [r.json()["event_id"]])
    assert decision[0] == "lead.accepted"  # a rejected address is decided afresh


def test_a_digest_is_managed_like_any_entity_and_its_references_are_checked(admin):
    """A digest names an email list, a template and (optionally) a segment of its brand."""
    ident = f"dg-{uuid.uuid4().hex[:6]}"
    base = {"id": ident, "list": "daily-jobs", "template": "daily-jobs", "cadence": "weekly", "weekday": "fri"}
    for change, field in (({"list": "no-such-list"}, f"digests.{ident}.list"),
                          ({"list": "sms-alerts"}, f"digests.{ident}.list"),
                          ({"template": "no-such-template"}, f"digests.{ident}.template"),
                          ({"segment": "no-such-segment"}, f"digests.{ident}.segment"),
                          ({"top_k": 51}, f"digests.{ident}.top_k"),
                          ({"send_time": "8am"}, f"digests.{ident}.send_time")):
        r = admin.post(f"/v1/tenants/{OWN}/digests", json={**base, **change})
        assert r.status_code == 422, r.text
        # the body's own checks name the field; the checks across entities its place in the configuration
        assert any(p["field"] in (field, field.split(".")[-1]) for p in r.json()["problems"]), r.json()
    r = admin.post(f"/v1/tenants/{OWN}/digests", json=base)
    assert r.status_code == 201, r.text
    got = admin.get(f"/v1/tenants/{OWN}/digests/{ident}")
    assert got.json()["data"]["top_k"] == 5 and got.json()["data"]["inactive_days"] == 90  # defaults filled
    r = admin.patch(f"/v1/tenants/{OWN}/digests/{ident}", json={"enabled": False}, headers={"If-Match": got.headers["etag"]})
    assert r.status_code == 200 and r.json()["data"]["enabled"] is False
    assert admin.delete(f"/v1/tenants/{OWN}/digests/{ident}", headers={"If-Match": r.headers["etag"]}).status_code == 204
    assert admin.get(f"/v1/tenants/{OWN}/digests/{ident}").status_code == 404
