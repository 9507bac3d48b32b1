"""Subject export on the live stack: one person's every event (lead, sends, product events,
consent records) and every piece of state, the sealed fields opened; only a brand admin of the
tenant may ask; bad and unknown subjects answered by name."""
from __future__ import annotations

from tests.api.people import ANALYST, BRAND_ADMIN, OTHER_BRAND_ADMIN, signed_in
from tests.integration.conftest import auth, read_model, wait_for
from tests.integration.test_api import _admin_key, lead

T = "jobsnearby"


def export(client, **who):
    return client.post("/v1/subjects/export", json=who)


def test_an_export_holds_every_event_and_the_state_of_both_of_a_persons_leads(api, keys, uid, ch, settings):
    key, email, phone = keys[T], f"ann.{uid}@example.com", f"+1415555{int(uid[:6], 16) % 10000:04d}"
    r = api.post("/v1/leads", json=lead(uid, consent={"at": "2026-01-05T10:00:00Z", "ip": "203.0.113.20",
                                                      "text": "Jobs by email"}), headers=auth(key))
    lid = r.json()["lead_id"]
    read_model(api, key, lid, lambda d: d["status"] == "accepted")
    sms = api.post("/v1/leads", json={"phone": phone, "partner": "ziprecruiter", "list": "sms-alerts",
                                      "consent": {"at": "2026-01-05T10:00:00Z", "text": "Texts OK"}},
                   headers=auth(key))
    assert sms.status_code == 202, sms.text
    assert api.post("/v1/consent", json={"lead_id": lid, "granted": False, "via": "preference_center",
                                         "ip": "198.51.100.77"}, headers=auth(key)).status_code == 202
    assert api.post("/v1/events", json={"email": email, "name": "job_viewed", "properties": {"job": "J1"}},
                    headers=auth(key)).status_code == 202
    assert api.post("/v1/activity", json={"kind": "joined", "group_id": f"g{uid[:8]}", "email": email},
                    headers=auth(key)).status_code == 202
    assert api.post("/v1/activity", json={"kind": "posted", "group_id": f"g{uid[:8]}", "item_id": f"i{uid[:8]}",
                                          "title": "Hiring nurses", "url": "https://jobs.example/n1", "author_lead_id": lid},
                    headers=auth(key)).status_code == 202
    wanted = {"lead.submitted", "lead.accepted", "consent.withdrawn", "product.tracked", "send.requested",
              "activity.joined", "activity.posted"}

    def types_in_clickhouse():
        rows = ch.execute(f"SELECT DISTINCT event_type FROM {settings.clickhouse_database}.events WHERE lead_id = %(l)s",
                          {"l": lid})
        got = {t for (t,) in rows}
        return wanted <= got and got
    in_clickhouse = wait_for(types_in_clickhouse, 90, what="the lead's events in ClickHouse")

    with signed_in(settings.api_url, BRAND_ADMIN) as admin:
        r = export(admin, email=email.upper(), phone=phone)
        assert r.status_code == 200, r.text
        doc = r.json()
    assert doc["tenant"] == T and doc["exported_by"] == f"person:{BRAND_ADMIN}"
    by_channel = {x["channel"]: x for x in doc["leads"]}
    assert set(by_channel) == {"email", "sms"}
    mine = by_channel["email"]
    assert mine["lead_id"] == lid and mine["address"] == email and mine["state"]["status"] == "accepted"
    assert set(mine["event_types"]) >= set(in_clickhouse)  # every kind of event ClickHouse had, and more since
    assert sum(mine["event_types"].values()) == len(mine["events"])
    assert [e["at_ms"] for e in mine["events"]] == sorted(e["at_ms"] for e in mine["events"])
    assert mine["consent"]["marketing"]["granted"] is False and mine["schedule"]  # state from Redis
    [withdrawal] = [e for e in mine["events"] if e["event_type"] == "consent.withdrawn"]
    assert withdrawal["payload"]["ip"] == "198.51.100.77"  # opened with the lead's data key
    [accepted] = [e for e in mine["events"] if e["event_type"] == "lead.accepted"]
    assert accepted["payload"]["address"] == email
    assert by_channel["sms"]["state"] is None or by_channel["sms"]["state"]["channel"] == "sms"


def test_only_a_brand_admin_of_the_tenant_may_export_and_bad_subjects_are_named(api, keys, uid, settings):
    lid = api.post("/v1/leads", json=lead(uid), headers=auth(keys[T])).json()["lead_id"]
    read_model(api, keys[T], lid)
    email = f"ann.{uid}@example.com"
    assert api.post("/v1/subjects/export", json={"email": email}, headers=auth(keys[T])).status_code == 403
    with signed_in(settings.api_url, ANALYST) as analyst:
        assert export(analyst, email=email).status_code == 403
    with signed_in(settings.api_url, OTHER_BRAND_ADMIN) as other:
        r = other.post("/v1/subjects/export", json={"email": email}, headers={"X-Tenant": T})
        assert r.status_code == 403
        assert export(other, email=email).status_code == 404  # in its own tenant: nobody
    with signed_in(settings.api_url, BRAND_ADMIN) as admin:
        r = export(admin)
        assert r.status_code == 422 and "email, phone or both" in r.text
        assert export(admin, email=email, extra=1).status_code == 422
        assert export(admin, email=f"nobody.{uid}@example.com").status_code == 404
    admin_key = _admin_key()
    r = api.post("/v1/subjects/export", json={"email": email}, headers={**auth(admin_key), "X-Tenant": T})
    assert r.status_code == 200 and r.json()["leads"][0]["lead_id"] == lid
