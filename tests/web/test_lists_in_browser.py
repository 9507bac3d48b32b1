"""Lists managed in the browser: a list created and its rules edited in the UI change what the
running platform does with the next lead; a stale save is refused with the newer version
shown; the API's validation errors appear next to their fields."""
from __future__ import annotations

import uuid

import pytest

from tests.api.test_control_plane import _everywhere, admin  # noqa: F401  (admin: a platform-admin key's client)
from tests.integration.conftest import wait_decisions


@pytest.fixture
def scratch_list(admin):
    """A list id for one test, deleted after it."""
    name = f"ui-{uuid.uuid4().hex[:6]}"
    yield name
    cur = admin.get(f"/v1/tenants/jobsnearby/lists/{name}")
    if cur.status_code == 200:
        admin.delete(f"/v1/tenants/jobsnearby/lists/{name}", headers={"If-Match": cur.headers["etag"]})


def _pick(page, label: str, option: str) -> None:
    page.get_by_label(label, exact=False).first.click()
    page.get_by_role("option", name=option, exact=True).click()


def test_a_list_created_and_edited_in_the_browser_changes_the_next_leads_fate(as_role, admin, scratch_list, ch,
                                                                             settings, supervisor):
    s = as_role("brand_admin")
    page = s.go("/lists/new")
    page.get_by_label("List id").fill(scratch_list)
    page.get_by_label("Title").fill("Made in the browser")
    _pick(page, "Template", "daily-jobs")
    page.get_by_label("Send a welcome message").uncheck()
    page.get_by_test_id("save").click()
    page.get_by_test_id("saved").wait_for()
    assert page.url.endswith(f"/app/lists/{scratch_list}")
    created = admin.get(f"/v1/tenants/jobsnearby/lists/{scratch_list}").json()
    assert created["data"]["title"] == "Made in the browser" and created["data"]["template"] == "daily-jobs"

    # the rule engine as a form: only landing-page may feed this list from now on
    partners = page.get_by_role("combobox", name="Incoming leads: partners allowed (empty: all)")
    partners.fill("landing-page")
    partners.press("Enter")  # makes the pill; it does not submit the form
    page.locator(".mantine-Pill-root", has_text="landing-page").wait_for()
    page.get_by_test_id("save").click()
    page.get_by_text("Saved as version 2.").wait_for()
    s.shot("list-edit")
    saved = admin.get(f"/v1/tenants/jobsnearby/lists/{scratch_list}")
    assert saved.json()["version"] == 2 and saved.json()["data"]["rules"]["intake"]["partners"] == ["landing-page"]
    _everywhere(settings, supervisor)

    uid = uuid.uuid4().hex[:8]
    r = admin.post("/v1/leads/batch", headers={"X-Tenant": "jobsnearby"}, json={"leads": [
        {"email": f"zip.{uid}@example.com", "partner": "ziprecruiter", "list": scratch_list},
        {"email": f"land.{uid}@example.com", "partner": "landing-page", "list": scratch_list}]})
    assert r.status_code == 202, r.text
    decided = wait_decisions(ch, settings.clickhouse_database, [x["event_id"] for x in r.json()["leads"]])
    assert [(d[0], d[2]) for d in decided] == [("lead.rejected", ["partner_not_on_list"]), ("lead.accepted", [])]


def test_a_stale_save_is_refused_and_the_newer_version_shown(as_role, admin, scratch_list):
    assert admin.post("/v1/tenants/jobsnearby/lists", json={"id": scratch_list, "channel": "email",
                                                             "template": "daily-jobs", "welcome": False}).status_code == 201
    s = as_role("brand_admin")
    page = s.go(f"/lists/{scratch_list}")
    send_time = page.get_by_test_id("field-send_time")
    send_time.wait_for()
    # someone else saves first
    cur = admin.get(f"/v1/tenants/jobsnearby/lists/{scratch_list}")
    assert admin.patch(f"/v1/tenants/jobsnearby/lists/{scratch_list}", json={"send_time": "07:15"},
                       headers={"If-Match": cur.headers["etag"]}).status_code == 200
    send_time.fill("11:30")
    page.get_by_test_id("save").click()
    stale = page.get_by_test_id("stale")
    stale.wait_for()
    newer = page.get_by_test_id("newer-version")
    newer.wait_for()
    assert '"send_time": "07:15"' in newer.inner_text()
    s.shot("list-stale")
    # nothing of the stale save landed; loading the newer version and saving again works
    assert admin.get(f"/v1/tenants/jobsnearby/lists/{scratch_list}").json()["data"]["send_time"] == "07:15"
    page.get_by_role("button", name="Load the newer version").click()
    assert send_time.input_value() == "07:15"
    send_time.fill("11:30")
    page.get_by_test_id("save").click()
    page.get_by_text("Saved as version 3").wait_for()
    assert admin.get(f"/v1/tenants/jobsnearby/lists/{scratch_list}").json()["data"]["send_time"] == "11:30"


def test_the_apis_refusal_is_shown_next_to_the_field(as_role, admin, scratch_list):
    assert admin.post("/v1/tenants/jobsnearby/lists", json={"id": scratch_list, "channel": "email",
                                                             "template": "daily-jobs", "welcome": False}).status_code == 201
    s = as_role("brand_admin")
    page = s.go(f"/lists/{scratch_list}")
    field = page.get_by_test_id("field-send_time")
    field.fill("25:99")
    page.get_by_test_id("save").click()
    page.get_by_test_id("field-errors").wait_for()
    # Mantine ties the error to its input (aria-describedby -> the error's id)
    error_id = field.get_attribute("aria-describedby")
    assert error_id and "is not a time of day" in page.locator(f"[id='{error_id.split()[-1]}']").inner_text()
    assert field.get_attribute("aria-invalid") == "true"
    s.shot("list-field-error")
    assert admin.get(f"/v1/tenants/jobsnearby/lists/{scratch_list}").json()["version"] == 1
