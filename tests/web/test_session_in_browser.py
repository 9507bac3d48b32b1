"""Signing in, changing one's password and signing out, in the browser."""
from __future__ import annotations

import uuid

import httpx

from tests.api.test_control_plane import _admin_key
from tests.integration.conftest import auth
from tests.web.conftest import Signed


def test_a_person_changes_their_password_and_signs_out(browser, app_url, settings):
    email = f"pw.{uuid.uuid4().hex[:8]}@example.com"
    first, second = "first-password-123", "second-password-456"
    with httpx.Client(base_url=settings.api_url, headers=auth(_admin_key()), timeout=30) as admin:
        r = admin.post("/v1/tenants/jobsnearby/people", json={"email": email, "name": "Pat Word", "role": "analyst",
                                                              "password": first})
        assert r.status_code == 201, r.text
    s = Signed(browser, app_url, email, first)
    page = s.go("/password")
    page.get_by_label("Current password").fill(first)
    page.get_by_label("New password").fill("short")
    page.get_by_role("button", name="Change password").click()
    page.get_by_role("alert").wait_for()
    assert "12" in page.get_by_role("alert").inner_text()  # the API's rule: at least 12 characters
    page.get_by_label("New password").fill(second)
    page.get_by_role("button", name="Change password").click()
    page.get_by_test_id("password-changed").wait_for()
    page.get_by_test_id("person-menu").click()
    page.get_by_test_id("sign-out").click()
    page.wait_for_url("**/app/sign-in**")
    # the old password no longer works; the new one does
    page.locator("input[autocomplete=username]").fill(email)
    page.locator("input[autocomplete=current-password]").fill(first)
    page.get_by_role("button", name="Sign in").click()
    assert "wrong email or password" in page.get_by_role("alert").inner_text()
    page.locator("input[autocomplete=current-password]").fill(second)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_test_id("person-menu").wait_for()
    assert not s.errors
    s.close()


def test_signed_out_every_page_leads_to_sign_in_and_back(browser, app_url, people):
    s = Signed(browser, app_url, "", "")
    page = s.go("/lists/daily-jobs")
    page.wait_for_url("**/app/sign-in?next=%2Flists%2Fdaily-jobs")
    s.shot("sign-in")
    email, password = people["brand_admin"]
    page.locator("input[autocomplete=username]").fill(email)
    page.locator("input[autocomplete=current-password]").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/app/lists/daily-jobs")
    page.get_by_test_id("field-send_time").wait_for()
    s.close()
