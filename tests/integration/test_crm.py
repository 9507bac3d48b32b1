"""The CRM bridge on the live stack, against the HubSpot stand-in `./dev up` runs: a brand's CRM
configured through the control plane, its contacts become leads through the normal intake (an
invalid one rejected by the intake's validation, an erased one never produced), a CRM user's change comes in
at once through a signed webhook, and a webhook that does not verify is refused. Out: people's
engagement written back on their contacts (machines not counted), our own writes echoed back not
re-applied, conflicts decided per field by its source of truth, an erased person's properties
emptied and never written again."""
from __future__ import annotations

import time
import uuid

import httpx
import orjson
import pytest

from domain.crm import signature_v3
from domain.identity import identity_email
from stack.standins import hubspot as standin
from tests.api.people import OTHER_BRAND_ADMIN, signed_in
from tests.integration.conftest import auth, drained, lead_id, wait_for
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
    hub.configure = lambda **more: _patch_tenant(settings, {"crm": {
        "base_url": settings.crm_url, "token": "file:hubspot-standin-token",
        "app_secret": "file:hubspot-standin-app-secret", "app_id": str(standin.APP_ID), "list": "nurses",
        "partner": "crm", "every_s": 3600, "lookback_s": lookback, **more}})
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
    answers = {k for k in crm.get("/_control").json()["counts"] if k.startswith("webhook_answer_")}
    assert answers == {"webhook_answer_204"}  # signed, verified, taken (ours echoed back too: asking nothing)
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


def contact(hub, email: str) -> dict:
    held = [c["properties"] for c in hub.get("/_control/contacts").json()]
    return next((p for p in held if p["email"] == email), {})


def engagement(name: str, lid: str, at_ms: int, bot: bool = False) -> bytes:
    import json
    import os

    from domain.identity import new_event_id
    from schemas.codec import default_codec
    from streams.settings import ROOT
    version = "v1" if name == "converted" else "v2"
    ev = json.loads((ROOT / f"schemas/engagement/examples/{name}.{version}.json").read_text())
    ev.update(event_id=new_event_id(at_ms, os.urandom(10)), tenant=T, lead_id=lid, occurred_at=at_ms)
    if name != "converted":
        ev.update(is_bot=bot, reason="apple_mpp" if bot else "", actor="proxy" if bot else "human", revision=0)
    return default_codec().encode(f"engagement.{name}", ev)


def test_engagement_goes_back_on_the_contact_and_an_erased_person_is_emptied_and_never_written(
        api, settings, rds, crm, producer):
    uid = uuid.uuid4().hex[:10]
    ann, bob = f"ann.{uid}@example.com", f"bob.{uid}@example.com"
    crm.post("/_control/contacts", json={"contacts": [{"email": ann, "properties": {"firstname": "Ann"}},
                                                      {"email": bob, "properties": {"firstname": "Bob"}}]})
    crm.configure()
    wait_for(lambda: state_of(rds, ann) and state_of(rds, bob), 90, what="the contacts as leads")
    a, b = (lead_id(T, "email", identity_email(x)) for x in (ann, bob))
    t0 = int(time.time() * 1000) - 60_000
    topic = settings.topic_prefix + "engagement.events"
    for value in (engagement("opened", a, t0), engagement("opened", a, t0 + 5000, bot=True),  # a machine: not counted
                  engagement("clicked", a, t0 + 2000), engagement("converted", a, t0 + 3000)):
        producer.produce(topic, value, a.encode())
    producer.flush(10)
    got = wait_for(lambda: (c := contact(crm, ann)).get("leadstream_conversions") == "1" and c, 60,
                   what="Ann's engagement on her contact")
    assert got["leadstream_last_open"] == str(t0)  # the person's open, not the machine's later one
    assert got["leadstream_last_click"] == str(t0 + 2000) and got["leadstream_last_conversion"] == str(t0 + 3000)
    assert (got["leadstream_status"], got["leadstream_unsubscribed"]) == ("accepted", "false")
    assert got["firstname"] == "Ann"  # a two-way field the CRM set: not written over

    # our write came back as a change of the contact: a poll reading it again produces nothing for Ann
    submissions = state_of(rds, ann)["submissions"]
    polled = int(rds.hget(f"ls:crm:{T}", "at_ms") or 0)
    crm.post("/_control/contacts", json={"contacts": [{"email": bob, "properties": {"firstname": "Robert"}}]})
    crm.post("/_control", json={"webhook_target": settings.api_url + HOOK})
    crm.post("/_control/contacts", json={"contacts": [{"email": bob, "properties": {"firstname": "Rob"}}]})
    wait_for(lambda: state_of(rds, bob)["first_name"] == "Rob", 60, what="Bob renamed in the CRM, renamed here")
    report = wait_for(lambda: int(rds.hget(f"ls:crm:{T}", "at_ms") or 0) > polled and rds.hgetall(f"ls:crm:{T}"), 30,
                      what="the webhook's poll reported")
    assert int(report[b"contacts"]) >= 2 and int(report[b"unchanged"]) >= 1  # Ann's echo: read, not produced
    wait_for(lambda: drained(settings, "intake"), 60, what="the intake to have decided every submission")
    assert state_of(rds, ann)["submissions"] == submissions

    # erased: what we wrote is emptied by contact id, and nothing is written for her again
    r = api.post("/v1/subjects/erase", json={"email": ann, "reason": "asked by email, ticket 7"},
                 headers={**auth(_admin_key()), "X-Tenant": T})
    assert r.status_code == 200, r.text
    assert r.json()["leads"][0]["crm_contacts_cleared"] == 1 and not r.json()["leads"][0]["crm_emptying_owed"]
    emptied = contact(crm, ann)
    assert {k: emptied[k] for k in emptied if k.startswith("leadstream_")} == {
        k: "" for k in ("leadstream_score", "leadstream_last_open", "leadstream_last_click", "leadstream_status",
                        "leadstream_unsubscribed", "leadstream_conversions", "leadstream_last_conversion")}
    assert emptied["firstname"] == "Ann"  # the contact is the brand's: kept
    assert not rds.exists(f"ls:crmf:{T}:{a}") and rds.zscore(f"ls:crmout:{T}", a) is None
    later = int(time.time() * 1000)
    producer.produce(topic, engagement("clicked", a, later), a.encode())
    producer.produce(topic, engagement("clicked", b, later), b.encode())
    producer.flush(10)
    wait_for(lambda: contact(crm, bob).get("leadstream_last_click") == str(later), 60, what="Bob's click written")
    wait_for(lambda: drained(settings, "crm"), 60, what="the crm agent to have handled Ann's click too")
    assert contact(crm, ann)["leadstream_last_click"] == ""
    assert not rds.exists(f"ls:crmf:{T}:{a}")  # her late click wrote nothing about her again


def test_a_conflicting_name_is_decided_by_the_fields_source_of_truth(api, settings, rds, crm):
    uid = uuid.uuid4().hex[:10]
    cat, dan = f"cat.{uid}@example.com", f"dan.{uid}@example.com"
    before = int(time.time() * 1000)
    crm.configure(truth={"firstname": "leadstream", "lastname": "latest"})
    # the crm worker has the settings once it polled with them (changed settings are polled at once)
    wait_for(lambda: int(rds.hget(f"ls:crm:{T}", "at_ms") or 0) > before, 60, what="the crm worker to apply them")
    # Cat comes from a job board first, as "Cat": her name is ours to keep (truth: leadstream)
    r = api.post("/v1/leads", json={"email": cat, "first_name": "Cat", "partner": "careers-site", "list": "nurses"},
                 headers={**auth(_admin_key()), "X-Tenant": T})
    assert r.status_code == 202, r.text
    c = lead_id(T, "email", identity_email(cat))
    wait_for(lambda: rds.hget(f"ls:crmf:{T}:{c}", "h:firstname"), 60, what="Cat's name registered as ours")
    crm.post("/_control", json={"webhook_target": settings.api_url + HOOK})
    crm.post("/_control/contacts", json={"contacts": [{"email": cat, "properties": {"firstname": "Catherine"}},
                                                      {"email": dan, "properties": {"firstname": "Dan"}}]})
    # the CRM's later "Catherine" loses to ours, which goes back to the CRM; Dan is the CRM's
    wait_for(lambda: contact(crm, cat).get("firstname") == "Cat", 90, what="ours written back over the CRM's")
    assert state_of(rds, cat)["first_name"] == "Cat"
    assert wait_for(lambda: state_of(rds, dan), 60, what="Dan from the CRM")["first_name"] == "Dan"
    # a CRM user's later change of the CRM's own value wins and renames him
    crm.post("/_control/contacts", json={"contacts": [{"email": dan, "properties": {"firstname": "Daniel"}}]})
    wait_for(lambda: state_of(rds, dan)["first_name"] == "Daniel", 60, what="Dan renamed by the CRM")
    # a CRM user trying "Catherine" again still loses, and ours goes back again
    crm.post("/_control/contacts", json={"contacts": [{"email": cat, "properties": {"firstname": "Catherine"}}]})
    wait_for(lambda: contact(crm, cat).get("firstname") == "Cat", 60, what="ours written back again")
    assert state_of(rds, cat)["first_name"] == "Cat"


def _latest_owed_record(settings, key: str):
    """The latest record of `key` on the compacted privacy.crm_emptying topic: (found, event or None)."""
    from runtime.deps import build
    from runtime.replay import read_topics
    from streams.topics import CRM_EMPTYING

    deps = build(settings)
    _, msgs = read_topics(deps, [deps.topic(CRM_EMPTYING)], with_keys=True)
    latest = [value for k, value in msgs if k == key.encode()]
    if not latest:
        return False, None
    return True, None if latest[-1] is None else deps.codec.decode(latest[-1])[1]


def _rebuild_owed(settings) -> dict:
    """What `runtime.replay --redis` does for this family, alone."""
    import asyncio

    from runtime.deps import build
    from runtime.replay import read_topics
    from runtime.replay_crm_emptying import rebuild_crm_emptying

    async def run():
        return await rebuild_crm_emptying(build(settings), read_topics, lambda *a: None)
    return asyncio.run(run())


def test_an_emptying_the_crm_did_not_take_is_owed_durably_and_done_after_a_redis_loss(api, settings, rds, crm, producer):
    uid = uuid.uuid4().hex[:10]
    eve = f"eve.{uid}@example.com"
    crm.post("/_control/contacts", json={"contacts": [{"email": eve, "properties": {"firstname": "Eve"}}]})
    crm.configure()
    wait_for(lambda: state_of(rds, eve), 90, what="the contact as a lead")
    e = lead_id(T, "email", identity_email(eve))
    t0 = int(time.time() * 1000) - 60_000
    producer.produce(settings.topic_prefix + "engagement.events", engagement("opened", e, t0), e.encode())
    producer.flush(10)
    wait_for(lambda: contact(crm, eve).get("leadstream_last_open") == str(t0), 60, what="Eve's open on her contact")
    cid = str(next(c["id"] for c in crm.get("/_control/contacts").json() if c["properties"]["email"] == eve))
    owed_key = f"ls:crmclear:{T}"

    crm.post("/_control", json={"outage": True})  # the CRM answers 503 to everything
    try:
        r = api.post("/v1/subjects/erase", json={"email": eve, "reason": "asked by phone, ticket 9"},
                     headers={**auth(_admin_key()), "X-Tenant": T})
        assert r.status_code == 200, r.text
        assert r.json()["leads"][0]["crm_emptying_owed"] is True and r.json()["leads"][0]["crm_contacts_cleared"] == 0
        assert rds.sismember(owed_key, cid)
        found, ev = _latest_owed_record(settings, f"{T}/{cid}")
        assert found and ev["contact_id"] == cid and ev["tenant"] == T
        assert set(ev) == {"event_id", "tenant", "occurred_at", "schema", "causation_id", "source", "contact_id"}
        # Redis loses what it owed; the replay's rebuild owes it again
        rds.srem(owed_key, cid)
        assert _rebuild_owed(settings)["crm_emptyings_owed"] >= 1
        assert rds.sismember(owed_key, cid)
        assert contact(crm, eve)["leadstream_last_open"] == str(t0)  # not emptied while the CRM is down
    finally:
        crm.post("/_control", json={"outage": False})

    # the CRM is back: the crm agent empties her contact, then the topic and Redis forget it
    wait_for(lambda: contact(crm, eve).get("leadstream_last_open") == "", 120, what="Eve's contact emptied")
    wait_for(lambda: not rds.sismember(owed_key, cid), 30, what="the emptying no longer owed in Redis")
    assert _latest_owed_record(settings, f"{T}/{cid}") == (True, None)  # a tombstone
    _rebuild_owed(settings)
    assert not rds.sismember(owed_key, cid)  # a rebuild after it owes nothing
    assert contact(crm, eve)["firstname"] == "Eve"  # the contact is the brand's: kept
