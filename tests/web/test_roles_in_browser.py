"""Each demo role signs in to the dashboard in Chromium and is offered exactly what its role
may do; what it may not do is neither offered nor reachable by editing the URL (the API
refuses it, and the page says so)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

EVERY = ["Overview", "Analytics", "Lists", "Triggers", "Experiments", "Leads", "Messages", "Accounting", "Fleet", "People",
         "API keys", "Audit log"]
SEES = {
    "platform_admin": EVERY,
    "brand_admin": [p for p in EVERY if p != "Fleet"],
    "analyst": ["Overview", "Analytics", "Lists", "Triggers", "Experiments", "Leads", "Messages"],
    "partner": ["Overview", "Analytics"],
}


@pytest.mark.parametrize("role", list(SEES))
def test_each_role_is_offered_only_its_pages(as_role, role):
    s = as_role(role)
    assert s.nav() == SEES[role]
    s.page.get_by_test_id("kpi-leads_submitted").wait_for()
    # the charts arrive as a chunk of their own, after the numbers: every card draws its sparkline
    cards = s.page.locator("[data-testid^=kpi-]:not([data-testid=kpi-value])")
    expect(s.page.locator(".recharts-surface")).to_have_count(cards.count())
    assert cards.count() >= 4
    s.shot(f"overview-{role}")
    for label in set(EVERY) - set(SEES[role]):
        path = "/" + label.lower().replace("api keys", "keys").replace("audit log", "audit")
        s.go(path)
        s.page.get_by_test_id("not-allowed").wait_for()


def test_an_analyst_reads_a_list_but_is_not_offered_a_save(as_role):
    s = as_role("analyst")
    page = s.go("/lists/daily-jobs")
    page.get_by_text("Your role may read this list but not change it").wait_for()
    assert page.get_by_test_id("save").count() == 0
    assert page.get_by_test_id("field-send_time").input_value() != ""
    s.go("/lists")
    page.get_by_test_id("lists-table").wait_for()
    assert page.get_by_test_id("new-list").count() == 0


def test_a_partner_cannot_reach_another_partners_numbers_by_editing_the_url(as_role):
    s = as_role("partner")
    # its own breakdown by partner holds only itself
    page = s.go("/analytics?metrics=leads_submitted&group_by=partner")
    table = page.get_by_test_id("breakdown-table")
    table.wait_for()
    partners = {c.inner_text() for c in table.locator("tbody tr:not([data-testid=totals]) td:first-child").all()}
    assert partners == {"ziprecruiter"}
    # another partner's numbers, another brand's: refused with the API's reason, no numbers shown
    for query, reason in (("partner=indeed-xml", "you see only partner ziprecruiter's leads, not indeed-xml"),
                          ("tenant=hireflow", "not in your scope: hireflow")):
        page = s.go(f"/analytics?metrics=leads_submitted&{query}")
        problem = page.get_by_test_id("problem").first
        problem.wait_for()
        assert "403" in problem.inner_text() and reason in problem.inner_text()
        assert page.get_by_test_id("breakdown-table").count() == 0
    # a metric the brand does not share with partners (revenue) is not even offered
    page = s.go("/analytics")
    page.get_by_test_id("metric-picker").click()
    options = {o.inner_text() for o in page.get_by_role("option").all()}
    assert "leads_submitted" in options and "revenue_cents" not in options


def test_a_brand_admin_of_one_brand_cannot_open_anothers_lists(as_role):
    s = as_role("brand_admin")
    page = s.go("/lists")
    page.get_by_test_id("lists-table").wait_for()
    # the picker offers only its own brand; the other brand's list through the API is a 403
    assert s.page.get_by_test_id("tenant-name").inner_text() == "jobsnearby"
    r = s.context.request.get(s.app_url.replace("/app", "") + "/v1/tenants/hireflow/lists")
    assert r.status == 403


def test_the_dashboard_works_on_a_phone_sized_screen(as_role):
    s = as_role("brand_admin", width=390, height=844)
    page = s.page
    burger = page.get_by_role("button", name="Menu")
    assert burger.is_visible()
    def on_screen() -> bool:  # the folded navigation slides off the left edge
        box = page.get_by_test_id("nav-lists").bounding_box()
        return box is not None and box["x"] >= 0
    assert not on_screen()
    s.shot("overview-phone")
    burger.click()
    page.wait_for_function("() => document.querySelector('[data-testid=nav-lists]').getBoundingClientRect().x >= 0")
    assert on_screen()
    page.get_by_test_id("nav-lists").click()
    page.get_by_test_id("lists-table").wait_for()
    assert re.search(r"/app/lists$", page.url)
    s.shot("lists-phone")


def test_sign_in_by_keyboard_alone_and_a_wrong_password_is_said_plainly(browser, app_url, people):
    email, password = people["analyst"]
    context = browser.new_context()
    page = context.new_page()
    page.goto(app_url + "/")
    page.locator("input[autocomplete=username]").focus()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type("not-the-password")
    page.keyboard.press("Enter")
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "wrong email or password" in alert.inner_text()
    page.locator("input[autocomplete=current-password]").fill("")
    page.locator("input[autocomplete=current-password]").focus()
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    page.get_by_test_id("person-menu").wait_for()
    assert page.url.endswith("/app/overview")
    context.close()
