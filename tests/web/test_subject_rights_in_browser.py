"""A person's rights in the browser (brand admins, on the Leads page): everything about them
downloaded as one JSON document, then erased with a reason, after which the lookup finds nobody;
an analyst is offered neither."""
from __future__ import annotations

import json
import uuid

import pytest

from tests.integration.conftest import auth, read_model


@pytest.fixture
def person(api, keys):
    address = f"rights.{uuid.uuid4().hex[:10]}@example.com"
    r = api.post("/v1/leads", headers=auth(keys["jobsnearby"]),
                 json={"email": address, "first_name": "Rae", "list": "daily-jobs", "partner": "ziprecruiter",
                       "location": {"zip": "10001", "country": "US"},
                       "consent": {"at": "2026-01-05T10:00:00Z", "text": "Jobs by email", "ip": "203.0.113.44"}})
    assert r.status_code == 202, r.text
    lid = r.json()["lead_id"]
    read_model(api, keys["jobsnearby"], lid, lambda d: d["status"] == "accepted")
    r = api.post("/v1/consent", json={"lead_id": lid, "granted": True, "via": "preference_center",
                                      "text": "Jobs by email", "ip": "203.0.113.45"}, headers=auth(keys["jobsnearby"]))
    assert r.status_code == 202, r.text  # its ip sealed with the lead's own data key, made for it
    return {"lead_id": lid, "address": address}


def test_a_brand_admin_downloads_everything_about_a_person_then_erases_them(as_role, person, tmp_path):
    s = as_role("brand_admin")
    page = s.go(f"/leads?email={person['address']}")
    page.get_by_test_id("lead").wait_for()
    with page.expect_download() as dl:
        page.get_by_test_id("export-subject").click()
    saved = tmp_path / "export.json"
    dl.value.save_as(saved)
    assert dl.value.suggested_filename == f"subject-{person['lead_id']}.json"
    doc = json.loads(saved.read_text())
    [lead] = doc["leads"]
    assert lead["lead_id"] == person["lead_id"] and lead["address"] == person["address"]
    assert lead["state"]["first_name"] == "Rae" and "lead.accepted" in lead["event_types"]
    s.shot("subject-rights")

    page.get_by_test_id("erase-subject").click()
    confirm = page.get_by_test_id("erase-confirm")
    assert confirm.is_disabled()  # no reason, no erasure
    page.get_by_test_id("erase-reason").fill("her request of 2026-12-01, ticket 4411")
    s.shot("subject-erase")
    confirm.click()
    done = page.get_by_test_id("erased")
    done.wait_for(timeout=180_000)  # one pass over Redis's keys: seconds on a busy stack
    text = done.inner_text()
    assert "ticket 4411" in text and person["lead_id"] in text and "data key destroyed" in text
    s.shot("subject-erased")
    page.reload()
    problem = page.get_by_test_id("problem")
    problem.wait_for()
    assert "404" in problem.inner_text()  # nobody by that address any more


def test_an_analyst_sees_the_lead_but_no_subject_rights(as_role, person):
    s = as_role("analyst")
    page = s.go(f"/leads?email={person['address']}")
    page.get_by_test_id("lead").wait_for()
    assert page.get_by_test_id("subject-rights").count() == 0
