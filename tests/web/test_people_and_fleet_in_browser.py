"""A lead found by email in the browser with its timeline and its welcome as the person got
it; the message log filtered; the fleet page showing workers appear as an agent's lag grows."""
from __future__ import annotations

import uuid

import pytest

from tests.integration.conftest import auth, wait_for

SENT = ("send.dispatched", "send.delivered", "send.bounced")


@pytest.fixture(scope="module")
def welcomed(api, ch, settings, keys):
    """A new lead on the warehouse list (its welcome goes out at once), decided and sent."""
    address = f"browser.{uuid.uuid4().hex[:10]}@example.com"
    r = api.post("/v1/leads", headers=auth(keys["jobsnearby"]),
                 json={"email": address, "first_name": "Bea", "list": "warehouse", "partner": "ziprecruiter",
                       "location": {"zip": "10001", "country": "US"}})
    assert r.status_code == 202, r.text
    lid = r.json()["lead_id"]

    def types() -> list[str]:
        return [t for (t,) in ch.execute(f"SELECT event_type FROM {settings.clickhouse_database}.events "
                                         "WHERE tenant = 'jobsnearby' AND lead_id = %(l)s", {"l": lid})]
    wait_for(lambda: "lead.accepted" in types() and any(t in types() for t in SENT), 90, 0.5,
             "the lead's decision and welcome in ClickHouse")
    return {"lead_id": lid, "address": address}


def test_a_lead_is_found_by_email_with_its_timeline_and_its_welcome_as_sent(as_role, welcomed):
    s = as_role("brand_admin")
    page = s.go("/leads")
    page.get_by_test_id("lead-query").fill(welcomed["address"].upper())  # exact after normalising
    page.get_by_test_id("find-lead").click()
    page.get_by_test_id("lead").wait_for()
    assert page.get_by_test_id("lead-address").inner_text() == welcomed["address"]
    assert "accepted" in page.get_by_test_id("lead-state").inner_text().lower()
    events = [r.get_attribute("data-event") for r in page.locator("[data-testid=timeline] tbody tr").all()]
    # newest first: the submission is the oldest, its decision after it, the send after that
    assert events[-1] == "lead.submitted" and events.index("lead.accepted") < events.index("lead.submitted")
    assert any(e in events for e in SENT) and events.index("send.requested") < events.index("lead.accepted")
    s.shot("lead")
    # the welcome as the person got it, from the timeline's link
    page.locator("[data-testid=timeline] tr[data-event='send.dispatched'] a", has_text="message").first.click()
    drawer = page.get_by_test_id("message")
    drawer.wait_for()
    body = page.frame_locator("[data-testid=message-html]").locator("body")
    assert "Bea" in body.inner_text()
    s.shot("message")


def test_an_unknown_address_says_so(as_role):
    s = as_role("analyst")
    page = s.go(f"/leads?email=nobody.{uuid.uuid4().hex[:8]}@example.com")
    problem = page.get_by_test_id("problem")
    problem.wait_for()
    assert "404" in problem.inner_text()


def test_the_message_log_filters_by_status(as_role, welcomed):
    s = as_role("brand_admin")
    page = s.go("/messages?status=dispatched")
    table = page.get_by_test_id("messages-table")
    table.wait_for()
    statuses = {r.get_attribute("data-status") for r in table.locator("tbody tr").all()}
    assert statuses == {"dispatched"}
    s.shot("messages")
    page = s.go("/messages?status=bounced&provider=no-such-provider")
    page.get_by_test_id("empty").wait_for()


def test_the_message_log_pages_back_without_overlap(as_role):
    s = as_role("brand_admin")
    page = s.go("/messages?limit=2")  # the page size is part of the URL too
    rows = page.locator("[data-testid=messages-table] tbody tr")
    rows.first.wait_for()
    first = [r.get_attribute("data-send") for r in rows.all()]
    assert len(first) == 2
    page.get_by_test_id("older").click()
    page.wait_for_url("**before_send=**")
    page.wait_for_function(f"() => document.querySelector('[data-testid=messages-table] tbody tr')"
                           f"?.getAttribute('data-send') !== {first[0]!r}")
    second = [r.get_attribute("data-send") for r in rows.all()]
    assert second and not set(first) & set(second)


def _card_number(card, name: str) -> int | None:
    text = card.get_by_test_id(name).inner_text().replace(",", "")
    return None if text == "–" else int(text)


def test_the_fleet_page_shows_workers_appear_as_lag_grows(as_role, api, keys, welcomed, supervisor):
    """Triggers paused from the page (no worker), product events pile up as lag, resumed from the
    page: the supervisor starts workers for the lag, and the page shows them without a reload."""
    s = as_role("platform_admin")
    page = s.go("/fleet")
    card = page.get_by_test_id("agent-triggers")
    card.wait_for()
    try:
        card.get_by_test_id("pause-toggle").click()
        card.get_by_text("paused").wait_for()
        wait_for(lambda: _card_number(card, "running") == 0, 90, 0.5, "the triggers' workers to stop")
        events = [{"email": welcomed["address"], "name": "dashboard_probe", "properties": {"n": i}}
                  for i in range(1000)]
        for _ in range(2):
            r = api.post("/v1/events/batch", headers=auth(keys["jobsnearby"]), json={"events": events})
            assert r.status_code == 202, r.text
        wait_for(lambda: (_card_number(card, "lag") or 0) >= 1500, 60, 0.5, "the lag to show on the page")
        s.shot("fleet-paused")
        card.get_by_test_id("pause-toggle").click()
        card.get_by_text("active").wait_for()
        # lag 2,000 at 500 per worker: as many workers as the agent may have (2)
        wait_for(lambda: _card_number(card, "running") == 2, 120, 0.5, "two triggers workers on the page")
        assert _card_number(card, "desired") == 2
        newest = card.get_by_test_id("change").first.inner_text()
        assert "0 → 2" in newest or "1 → 2" in newest, newest
        s.shot("fleet")
    finally:
        if supervisor.status()["agents"]["triggers"]["paused"]:
            s.context.request.post(s.app_url.replace("/app", "") + "/v1/fleet/agents/triggers/resume",
                                   headers={"X-CSRF-Token": s.cookies().get("ls_csrf", "")})
    supervisor.wait(lambda a: any(w["ready"] for w in a["workers"]), "triggers", 90, "triggers to be ready again")
