"""The Triggers page: each trigger in words with what it did over the period, the same
numbers the API's trigger statistics give."""
from __future__ import annotations


def test_the_triggers_page_shows_each_triggers_results_as_the_api_counts_them(as_role):
    s = as_role("platform_admin")
    page = s.go("/triggers?tenant=hireflow")
    card = page.get_by_test_id("trigger-viewed-3-nursing")
    card.wait_for()
    assert "job_viewed" in card.inner_text() and "cooldown" in card.inner_text()
    stats = card.get_by_test_id("trigger-stats")
    stats.wait_for()
    api = s.context.request.get(s.app_url.replace("/app", "") + "/v1/tenants/hireflow/triggers-stats").json()
    want = next(t for t in api["triggers"] if t["trigger"] == "viewed-3-nursing")
    for field in ("fired", "matched", "sends_requested", "unique_leads_fired"):
        shown = stats.locator(f"tr[data-stat={field}] td").nth(1).inner_text().replace(",", "")
        assert int(shown) == want[field], field
    for reason, n in want["suppressed"].items():
        shown = stats.locator(f"tr[data-stat='suppressed.{reason}'] td").nth(1).inner_text().replace(",", "")
        assert int(shown) == n, reason
    s.shot("triggers")
