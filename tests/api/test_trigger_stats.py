"""GET /v1/tenants/{tenant}/triggers-stats against real services.

On the live stack: who may ask (readers of the tenant; not a partner, not another brand's
admin), a bad day or period refused with its field, and zeros for every configured trigger
and segment over days long past.

A trigger firing for real runs on a private platform (its own topics, Redis and ClickHouse
databases, and an API from this checkout) with HireFlow's quiet hours off: on the shared stack
a message matched between 21:00 and 08:00 in New York is deferred, not fired, so its counts
would depend on the time of day. A new lead views three nursing jobs (viewed-3-nursing fires
once and its message is sent), then a fourth (suppressed: cooldown); the stats, read before and
after, move by exactly that.
"""
from __future__ import annotations

import time
import uuid
from datetime import date, datetime, timedelta, timezone

import httpx
import pytest

from domain.config_entities import Ref
from stack.isolated import IsolatedPlatform
from streams.settings import ROOT
from tests.api.people import ANALYST, BRAND_ADMIN, OTHER_BRAND_ADMIN, PARTNER, signed_in
from tests.integration.conftest import auth, wait_for

OWN, OTHER = "jobsnearby", "hireflow"
TRIGGER, SEGMENT = "viewed-3-nursing", "nursing-interest"  # HireFlow's, in tenants/demo.yaml
LONG_AGO = {"since": "2021-03-01", "until": "2021-03-31"}
COUNTS = ("matched", "scheduled", "deferred", "fired", "goals_reached", "sends_requested", "sends_dispatched",
          "sends_delivered", "sends_bounced", "sends_failed", "sends_skipped", "unique_leads_fired")


def path(tenant: str) -> str:
    return f"/v1/tenants/{tenant}/triggers-stats"


def admin_key() -> str:
    """The platform admin key whose plain text the demo tenant file gives in a comment."""
    text = (ROOT / "tenants" / "demo.yaml").read_text()
    return next(line.split("(plain:")[1].split(")")[0].strip() for line in text.splitlines() if "(plain:" in line)


# -- the live stack ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hireflow_admin(settings):
    with signed_in(settings.api_url, OTHER_BRAND_ADMIN) as c:
        yield c


def test_every_configured_trigger_and_segment_is_zero_over_days_long_past(hireflow_admin, book):
    r = hireflow_admin.get(path(OTHER), params=LONG_AGO)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["since"], body["until"], body["unknown_person_events"]) == ("2021-03-01", "2021-03-31", 0)
    tenant = book.tenants[OTHER]
    assert [t["trigger"] for t in body["triggers"]] == sorted(tenant.triggers) and TRIGGER in tenant.triggers
    for t in body["triggers"]:
        assert t["configured"] and t["suppressed"] == {} and t["last_fired_at"] is None
        assert {k: t[k] for k in COUNTS} == dict.fromkeys(COUNTS, 0)
    assert body["segments"] == [{"segment": s, "configured": True, "entered": 0, "left": 0}
                                for s in sorted(tenant.segments)]


def test_the_default_period_is_seven_days_with_every_configured_trigger(hireflow_admin, book):
    r = hireflow_admin.get(path(OTHER))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (date.fromisoformat(body["until"]) - date.fromisoformat(body["since"])).days == 6
    assert set(book.tenants[OTHER].triggers) <= {t["trigger"] for t in body["triggers"]}


@pytest.mark.parametrize("params, field", [
    ({"since": "2026-13-01"}, "since"),
    ({"since": "yesterday"}, "since"),
    ({"until": "2026/12/04"}, "until"),
    ({"since": "2026-06-10", "until": "2026-06-01"}, "since"),   # reversed
    ({"since": "2026-01-01", "until": "2026-04-03"}, "until"),   # 93 days
    ({"since": "2999-01-01", "until": "2999-01-02"}, "until"),   # the future
])
def test_a_bad_day_or_period_is_422_naming_the_field(hireflow_admin, params, field):
    r = hireflow_admin.get(path(OTHER), params=params)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "validation_failed"
    [problem] = r.json()["problems"]
    assert problem["field"] == field and problem["problem"]


def test_only_readers_of_the_tenant_may_ask(settings, api, keys):
    with signed_in(settings.api_url, PARTNER) as partner, signed_in(settings.api_url, BRAND_ADMIN) as brand, \
            signed_in(settings.api_url, OTHER_BRAND_ADMIN) as other, signed_in(settings.api_url, ANALYST) as analyst:
        assert partner.get(path(OWN), params=LONG_AGO).status_code == 403  # a partner of jobsnearby
        assert other.get(path(OWN), params=LONG_AGO).status_code == 403  # hireflow's brand admin
        assert brand.get(path(OTHER), params=LONG_AGO).status_code == 403  # jobsnearby's brand admin
        assert brand.get(path(OWN), params=LONG_AGO).status_code == 200
        r = analyst.get(path(OWN), params=LONG_AGO)
        assert r.status_code == 200 and "saved-job-reminder" in [t["trigger"] for t in r.json()["triggers"]]
    assert api.get(path(OWN), params=LONG_AGO, headers=auth(keys[OWN])).status_code == 403  # an ingest key
    assert api.get(path(OWN), params=LONG_AGO).status_code == 401


# -- a trigger firing for real, on a private platform ------------------------------------------

@pytest.fixture(scope="module")
def platform(book):
    from tests.integration.test_triggers import put  # the configuration changed as the management API does
    with IsolatedPlatform(redis_db=63, agents=("intake", "triggers", "sender_priority", "analytics"),
                          fronts=("api",), metrics=True) as p:
        put(p, Ref("tenant", None, OTHER), {"triggering": {"quiet_hours": None}})
        yield p


def stats(p: IsolatedPlatform) -> dict:
    """The trigger's and the segment's rows, over yesterday to tomorrow (UTC: midnight may pass)."""
    today = datetime.now(timezone.utc).date()
    r = httpx.get(f"{p.api_url}{path(OTHER)}", headers=auth(admin_key()), timeout=30,
                  params={"since": (today - timedelta(days=1)).isoformat(),
                          "until": (today + timedelta(days=1)).isoformat()})
    assert r.status_code == 200, r.text
    body = r.json()
    [trigger] = [t for t in body["triggers"] if t["trigger"] == TRIGGER]
    [segment] = [s for s in body["segments"] if s["segment"] == SEGMENT]
    return {**trigger, "segment_entered": segment["entered"], "segment_left": segment["left"]}


def view(p: IsolatedPlatform, key: str, lead_id: str, category: str) -> None:
    r = httpx.post(f"{p.api_url}/v1/events", headers=auth(key), timeout=30,
                   json={"lead_id": lead_id, "name": "job_viewed", "properties": {"category": category,
                                                                                  "title": f"{category} job"}})
    assert r.status_code == 202 and r.json()["outcome"] == "accepted", r.text


def test_a_firing_and_a_suppression_in_the_cooldown_move_the_stats_by_exactly_that(platform, keys):
    key = keys[OTHER]
    before = stats(platform)
    address = f"trigger.stats.{uuid.uuid4().hex[:10]}@example.com"
    r = httpx.post(f"{platform.api_url}/v1/leads", headers=auth(key), timeout=30,
                   json={"email": address, "first_name": "Rosa", "partner": "indeed-xml", "list": "nurses",
                         "location": {"zip": "10001", "country": "US"}})
    assert r.status_code == 202, r.text
    lid = r.json()["lead_id"]
    wait_for(lambda: (s := httpx.get(f"{platform.api_url}/v1/leads/{lid}", headers=auth(key), timeout=30))
             .status_code == 200 and s.json()["status"] == "accepted", 90, 0.3, "the lead accepted")

    for category in ("nursing", "retail", "nursing", "nursing"):  # the third nursing view in 24 h fires
        view(platform, key, lid, category)
    fired = wait_for(lambda: (s := stats(platform))["fired"] == before["fired"] + 1
                     and s["sends_dispatched"] == before["sends_dispatched"] + 1 and s, 90, 0.5,
                     "the firing and its message dispatched, in ClickHouse")
    assert fired["last_fired_at"] is not None

    view(platform, key, lid, "nursing")  # a fourth, inside the 7-day cooldown
    wait_for(lambda: stats(platform)["suppressed"].get("cooldown", 0) == before["suppressed"].get("cooldown", 0) + 1,
             90, 0.5, "the fourth view suppressed by the cooldown, in ClickHouse")
    time.sleep(3)  # room for anything that must not happen (a second firing, a second send) to show
    after = stats(platform)

    assert after["fired"] - before["fired"] == 1
    assert after["matched"] - before["matched"] == 2  # the third and the fourth view; the first two held no count
    assert after["suppressed"] == {**before["suppressed"], "cooldown": before["suppressed"].get("cooldown", 0) + 1}
    assert after["unique_leads_fired"] - before["unique_leads_fired"] == 1
    assert after["sends_requested"] - before["sends_requested"] == 1
    assert after["sends_dispatched"] - before["sends_dispatched"] == 1
    for unchanged in ("scheduled", "deferred", "goals_reached", "sends_failed", "sends_skipped", "sends_bounced"):
        assert after[unchanged] == before[unchanged], unchanged
    assert after["segment_entered"] - before["segment_entered"] == 1  # two nursing views in 7 days: in, once
    assert after["segment_left"] == before["segment_left"]
    assert after["last_fired_at"] == fired["last_fired_at"] and after["configured"]
    if before["last_fired_at"] is not None:
        assert after["last_fired_at"] > before["last_fired_at"]
