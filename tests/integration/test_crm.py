"""The CRM bridge on the live stack, against the HubSpot stand-in `./dev up` runs: a brand's CRM
configured through the control plane, its contacts become leads through the normal intake (an
invalid one rejected by the intake's validation, an erased one never produced), a CRM user's change comes in
at once through a signed webhook, and a webhook that does not verify is refused."""
from __future__ import annotations

import time
import uuid

import httpx
import orjson
import pytest

from domain.crm import signature_v3
from domain.identity import identity_email, lead_id
from stack.standins import hubspot as standin
from tests.api.people import OTHER_BRAND_ADMIN, signed_in
from tests.integration.conftest import auth, wait_for
from tests.integration.test_api import _admin_key

T = "hireflow"
HOOK = f"/webhooks/crm/hubspot/{T}"


def _patch_tenant(settings, change: dict) -> None:
    with signed_in(settings.api_url, OTHER_BRAND_ADMIN) as admin:
        etag = admin.get(f"/v1/tenants/{T}").headers["etag"]
        r = admin.patch(f"/v1/tenants/{T}", json=change, headers={"If-Match": etag})
        assert r.status_code == 200, r.text


@pytest.fixture
def crm(settings):
    """The stand-in, empty; `hub.configure()` then names it in the brand's settings (of their own:
    a lookback no earlier run had, as changed settings are polled at once)."""
    hub = httpx.Client(base_url=settings.crm_url)
    hub.post("/_control", json={"reset": True})
    lookback = 60 + uuid.uuid4().int % 10_000
    hub.configure = lambda: _patch_tenant(settings, {"crm": {
        "base_url": settings.crm_url, "token": "file:hubspot-standin-token",
        "app_secret": "file:hubspot-standin-app-secret", "app_id": str(standin.APP_ID), "list": "nurses",
        "partner": "crm", "every_s": 3600, "lookback_s": lookback}})
    yield hub
    _patch_tenant(settings, {"crm": None})
    hub.post("/_control", json={"reset": True})
    hub.close()


def state_of(rds, email: str) -> dict | None:
    raw = rds.get(f"ls:lead:{T}:{lead_id(T, 'email', identity_email(email))}")
    return orjson.loads(raw) if raw else None


def test_contacts_come_in_as_leads_by_poll_and_at_once_by_webhook(api, settings, rds, ch, crm):
    uid = uuid.uuid4().hex[:10]
    ann, bob, gone = f"ann.{uid}@example.com", f"bob.{uid}@example.com", f"gone.{uid}@example.com"
    r = api.post("/v1/subjects/erase", json={"email": gone, "reason": "asked before the CRM sync"},
                 headers={**auth(_admin_key()), "X-Tenant": T})
    assert r.status_code == 200
    crm.post("/_control/contacts", json={"contacts": [
        {"email": ann, "properties": {"firstname": "Ann", "lastname": "Lee"}},
        {"email": bob, "properties": {"firstname": "Bob"}},
        {"email": gone, "properties": {"firstname": "Gone"}},
        {"email": f"broken.{uid}@", "properties": {"firstname": "Broken"}}]})
    crm.post("/_control", json={"webhook_target": settings.api_url + HOOK})
    crm.configure()
    # the configuration reaches the workers; the first poll of the brand's CRM reads them all
    first = wait_for(lambda: state_of(rds, ann) and state_of(rds, bob) and state_of(rds, ann), 90,
                     what="the CRM's contacts as leads")
    assert first["status"] == "accepted" and first["lists"] == ["nurses"] and first["partners"] == ["crm"]
    assert first["first_name"] == "Ann" and first["attribution"]["crm_id"]
    status = wait_for(lambda: (s := {k.decode(): v.decode() for k, v in rds.hgetall(f"ls:crm:{T}").items()})
                      .get("status") == "ok" and s, 30, what="the poll's report")
    assert int(status["contacts"]) >= 4 and int(status["refused"]) >= 1  # the erased one, never produced
    assert state_of(rds, gone) is None
    broken = wait_for(lambda: state_of(rds, f"broken.{uid}@"), 30, what="the broken address decided")
    assert broken["status"] == "rejected"  # the intake's validation, as for every lead
    polled = int(status["at_ms"])

    # a CRM user changes Ann: the signed webhook asks for a poll, which reads it at once
    crm.post("/_control/contacts", json={"contacts": [{"email": ann, "properties": {"firstname": "Annie"}}]})
    assert crm.get("/_control").json()["counts"]["webhook_answer_204"] == 1  # signed, verified, taken
    wait_for(lambda: int(rds.hget(f"ls:crm:{T}", "at_ms") or 0) > polled, 60,
             what="a poll asked for by the webhook (the interval is an hour)")
    lid = lead_id(T, "email", identity_email(ann))
    wait_for(lambda: ch.execute(f"SELECT count() FROM {settings.clickhouse_database}.events WHERE "
                                "lead_id = %(l)s AND event_type = 'lead.resubmitted'", {"l": lid})[0][0], 60,
             what="Ann's change, decided by the intake")


def test_a_crm_webhook_that_does_not_verify_is_refused(api, settings, crm):
    crm.configure()
    wait_for(lambda: api.post(HOOK, content=b"[]").status_code == 401, 30, what="the API to know the brand's CRM")
    body = orjson.dumps([{"eventId": 1, "subscriptionType": "contact.creation", "objectId": 5,
                          "changeSource": "CRM", "occurredAt": 1}])
    url = settings.api_url + HOOK
    now = str(int(time.time() * 1000))

    def post(ts: str, sig: str, data: bytes = body, path: str = HOOK) -> httpx.Response:
        return api.post(path, content=data, headers={"Content-Type": "application/json",
                                                     "X-HubSpot-Request-Timestamp": ts, "X-HubSpot-Signature-v3": sig})
    good = signature_v3(standin.APP_SECRET, "POST", url, body, now)
    assert post(now, good).status_code == 204
    assert post(now, good, body.replace(b"CRM", b"XRM")).status_code == 401  # tampered
    assert post(now, signature_v3("another-secret", "POST", url, body, now)).status_code == 401
    old = str(int(now) - 6 * 60 * 1000)
    r = post(old, signature_v3(standin.APP_SECRET, "POST", url, body, old))
    assert r.status_code == 401 and "older than 5 minutes" in r.text  # a replay
    assert api.post(HOOK, content=body).status_code == 401  # unsigned
    assert post(now, signature_v3(standin.APP_SECRET, "POST", url, b"{}", now), b"{}").status_code == 400
    assert post(now, good, path="/webhooks/crm/hubspot/jobsnearby").status_code == 404  # no CRM there


def test_a_crm_configuration_names_a_list_of_the_brand_and_its_secrets_by_reference_only(settings):
    good = {"base_url": settings.crm_url, "token": "file:hubspot-standin-token",
            "app_secret": "file:hubspot-standin-app-secret", "list": "nurses"}
    with signed_in(settings.api_url, OTHER_BRAND_ADMIN) as admin:
        etag = admin.get(f"/v1/tenants/{T}").headers["etag"]
        for bad, where in (({**good, "list": "no-such-list"}, "crm.list"),
                           ({**good, "token": "pat-na1-the-token-itself"}, "crm.token"),
                           ({**good, "base_url": "ftp://crm.example"}, "crm.base_url"),
                           ({**good, "every_s": 1}, "crm.every_s")):
            r = admin.patch(f"/v1/tenants/{T}", json={"crm": bad}, headers={"If-Match": etag})
            assert r.status_code == 422, (bad, r.text)
            assert any(where in p["field"] for p in r.json()["problems"]), r.text
        assert admin.get(f"/v1/tenants/{T}").headers["etag"] == etag  # nothing applied
