"""The Experiments page: what an experiment tests and its results as the API computes them; a
brand admin records a look, an analyst is not offered the button."""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import expect

from domain.config_changes import Change
from domain.config_entities import Ref
from runtime.deps import build
from streams.settings import get_settings

EXP = Ref("experiment", "jobsnearby", "browser-subjects")


@pytest.fixture(scope="module")
def experiment():
    """A stopped experiment (it changes no send of the running stack), its looks reset."""
    svc = build(get_settings()).config_service
    data = {"list": "daily-jobs", "status": "stopped", "holdout": 0.1, "metric": "click",
            "description": "Browser test: does the count of new jobs in the subject bring clicks?",
            "variants": [{"name": "control"}, {"name": "count", "subject": "{{ job_count }} new jobs for you"}]}
    cur = svc.current(EXP)
    change = (Change("create", EXP, data, None, actor="test") if cur is None or not cur.live
              else Change("replace", EXP, data, cur.version, actor="test"))
    with ThreadPoolExecutor(1) as pool:  # Playwright's loop runs in this thread
        pool.submit(asyncio.run, svc.apply([change])).result()
    return EXP.id


def test_a_brand_admin_sees_the_experiment_and_records_a_look(as_role, experiment):
    s = as_role("brand_admin")
    page = s.go("/experiments?tenant=jobsnearby")
    card = page.get_by_test_id(f"experiment-{experiment}")
    card.wait_for()
    card.get_by_test_id("arms-table").wait_for()
    text = card.inner_text()
    assert "list daily-jobs" in text and "count (control)" not in text and "control (control)" in text
    assert "10 % held out" in text and "stopped" in text.lower()
    api = s.context.request.get(s.app_url.replace("/app", "") +
                                f"/v1/tenants/jobsnearby/experiments/{experiment}/results").json()
    for arm in api["arms"]:
        row = card.locator(f"tr[data-arm='{arm['variant']}'] td[data-col=leads]")
        assert int(row.inner_text().replace(",", "")) == arm["leads"]
    assert api["reason"] in card.get_by_test_id("decision").inner_text()
    assert "0 look(s) recorded" in card.inner_text()
    card.get_by_test_id("record-look").click()
    card.get_by_text("1 look(s) recorded").wait_for()
    expect(card.get_by_test_id("record-look")).not_to_have_attribute("data-loading", "true")
    s.shot("experiments")


def test_an_analyst_reads_the_results_without_the_record_button(as_role, experiment):
    s = as_role("analyst")
    page = s.go("/experiments?tenant=jobsnearby")
    card = page.get_by_test_id(f"experiment-{experiment}")
    card.get_by_test_id("arms-table").wait_for()
    assert card.get_by_test_id("record-look").count() == 0
