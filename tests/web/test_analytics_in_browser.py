"""The analytics page draws what the API answers: the chart's every point and the table's
every cell equal the API's numbers for the same view, and the URL holds the whole view."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import expect


def _view() -> str:
    today = datetime.now(timezone.utc).date()
    since = today - timedelta(days=6)
    return f"metrics=leads_submitted,leads_accepted&since={since}&until={today}&granularity=day&group_by=partner"


def test_the_chart_and_the_table_equal_the_apis_numbers(as_role):
    s = as_role("analyst")
    view = _view()
    page = s.go(f"/analytics?{view}&tenant=jobsnearby")
    chart = page.get_by_test_id("chart")
    chart.wait_for()
    drawn = json.loads(chart.get_attribute("data-chart"))
    api = s.context.request.get(s.app_url.replace("/app", "") + f"/v1/analytics/series?{view}&tenant=jobsnearby&limit=10")
    assert api.status == 200
    series = api.json()
    expected = {}
    for m in series["series"]:
        for g in m["groups"]:
            expected[f"{m['metric']} · {g['group']['partner']}"] = [p["value"] for p in g["points"]]
    assert sum(sum(v) for v in expected.values()) > 0, "no leads in the range: the comparison would be empty"
    assert drawn["series"] == list(expected)
    for name, values in expected.items():
        assert [row[name] for row in drawn["rows"]] == values, name
    assert [r["t"] for r in drawn["rows"]] == [b[:10] for b in series["buckets"]]

    # the table: every row and the totals, as the breakdown answers them
    breakdown = s.context.request.get(s.app_url.replace("/app", "") +
                                      f"/v1/analytics/breakdown?{view}&tenant=jobsnearby&limit=200").json()
    table = page.get_by_test_id("breakdown-table")
    table.wait_for()  # the table has its own request: the chart being drawn says nothing about it
    rows = table.locator("tbody tr:not([data-testid=totals])")
    expect(rows).to_have_count(len(breakdown["rows"]))
    for i, want in enumerate(breakdown["rows"]):
        cells = rows.nth(i)
        assert cells.locator("td").first.inner_text() == want["group"]["partner"]
        for metric in ("leads_submitted", "leads_accepted"):
            shown = cells.locator(f"td[data-metric={metric}]").inner_text().replace(",", "")
            assert int(shown) == want["values"][metric]
    totals = table.get_by_test_id("totals")
    assert int(totals.locator("td[data-metric=leads_submitted]").inner_text().replace(",", "")) == \
        breakdown["totals"]["leads_submitted"]
    s.shot("analytics")


def test_the_url_holds_the_view_and_sorting_changes_it(as_role):
    s = as_role("brand_admin")
    page = s.go(f"/analytics?{_view()}")
    table = page.get_by_test_id("breakdown-table")
    table.wait_for()
    table.get_by_role("button", name="leads_accepted").click()
    page.wait_for_url("**sort=-leads_accepted**")
    q = parse_qs(urlparse(page.url).query)
    assert q["sort"] == ["-leads_accepted"] and q["group_by"] == ["partner"]
    # the same URL opened afresh by someone else who may see it shows the same sorted table
    other = as_role("analyst")
    again = other.go("/analytics?" + urlparse(page.url).query)
    again.get_by_test_id("breakdown-table").wait_for()
    first_col = [c.inner_text() for c in again.locator("[data-testid=breakdown-table] tbody tr:not([data-testid=totals]) td:first-child").all()]
    mine = [c.inner_text() for c in table.locator("tbody tr:not([data-testid=totals]) td:first-child").all()]
    assert first_col == mine


def test_the_csv_export_holds_the_tables_rows(as_role):
    s = as_role("analyst")
    page = s.go(f"/analytics?{_view()}&tenant=jobsnearby")
    page.get_by_test_id("breakdown-table").wait_for()
    with page.expect_download() as download:
        page.get_by_test_id("csv").click()
    text = open(download.value.path()).read().splitlines()
    assert text[0] == "partner,leads_submitted,leads_accepted"
    shown = page.locator("[data-testid=breakdown-table] tbody tr:not([data-testid=totals])").count()
    assert len(text) - 1 == shown
