"""List hygiene with a controllable clock, on a private platform: leads with no human open or
click within the tenant's window are unsubscribed (reason inactive); a human click keeps a
lead; a machine's click does not."""
from __future__ import annotations

import os
import time
import uuid

import orjson
import pytest

from domain.identity import new_event_id
from schemas.codec import default_codec
from stack.isolated import IsolatedPlatform
from tests.integration.conftest import wait_for
from tests.integration.test_sending import submit

CODEC = default_codec()
DAY = 86_400_000
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"


@pytest.fixture(scope="module")
def iso():
    with IsolatedPlatform(redis_db=10, agents=("intake", "engagement", "hygiene")) as p:
        yield p


def hit(lead_id: str, at_ms: int, ua: str) -> bytes:
    """What the tracking front records when a job link of an email is followed."""
    return CODEC.encode("engagement.hit", {
        "event_id": new_event_id(at_ms, os.urandom(10)), "tenant": "jobsnearby", "occurred_at": at_ms,
        "schema": "engagement.hit@1", "causation_id": None, "source": "tracking", "lead_id": lead_id,
        "kind": "click", "method": "GET", "user_agent": ua, "ip": "203.0.113.50", "delivered_at": at_ms - 600_000,
        "destination_url": "https://jobs.example.com/indeed/1", "send_id": f"s-{uuid.uuid4().hex[:8]}",
        "code": uuid.uuid4().hex[:10], "slot": "job", "job_key": "jobsnearby:indeed:1", "job_source": "indeed",
        "position": 1, "cpc_cents": 50, "list": "daily-jobs", "template": "t", "campaign": "daily", "creative": ""})


def status(p, lid: str) -> str:
    return orjson.loads(p.redis.get(f"ls:lead:jobsnearby:{lid}"))["status"]


def iso_at(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def test_cold_leads_are_unsubscribed_and_a_human_click_keeps_a_lead(iso):
    uid = uuid.uuid4().hex[:8]
    cold, clicker, botted = submit(iso, "jobsnearby", [
        {"email": f"{who}.{uid}@example.com", "partner": "indeed-xml", "list": "daily-jobs",
         "location": {"zip": "10001", "country": "US"}} for who in ("cold", "clicker", "botted")])
    key = "ls:lastseen:jobsnearby:email"
    wait_for(lambda: all(iso.redis.zscore(key, lid) for lid in (cold, clicker, botted)), 60,
             what="the three leads followed by hygiene")
    signed_up = int(iso.redis.zscore(key, cold))
    day20 = signed_up + 20 * DAY
    iso.produce("engagement.observed", [(clicker.encode(), hit(clicker, day20, CHROME)),
                                        (botted.encode(), hit(botted, day20, "python-requests/2.32"))])
    wait_for(lambda: int(iso.redis.zscore(key, clicker)) == day20, 60, what="the human click moving last-seen")
    assert int(iso.redis.zscore(key, botted)) == signed_up  # a machine's click keeps nobody

    out = iso._run("-m", "runtime.prune_once", "--at", iso_at(signed_up + 29 * DAY))
    assert "inactive: 0" in out  # within the 30-day window: nobody is cold yet
    out = iso._run("-m", "runtime.prune_once", "--at", iso_at(signed_up + 31 * DAY))
    assert "inactive: 2" in out
    wait_for(lambda: status(iso, cold) == "unsubscribed" and status(iso, botted) == "unsubscribed", 60,
             what="the cold leads unsubscribed")
    assert status(iso, clicker) == "accepted"
    assert iso.redis.zscore(key, cold) is None and iso.redis.zscore(key, clicker) is not None

    out = iso._run("-m", "runtime.prune_once", "--at", iso_at(day20 + 31 * DAY))
    assert "inactive: 1" in out
    wait_for(lambda: status(iso, clicker) == "unsubscribed", 60, what="the clicker, cold in turn")


def test_a_pruned_lead_that_clicks_again_is_subscribed_again(iso):
    uid = uuid.uuid4().hex[:8]
    [lid] = submit(iso, "jobsnearby", [{"email": f"back.{uid}@example.com", "partner": "indeed-xml",
                                        "list": "daily-jobs", "location": {"zip": "10001", "country": "US"}}])
    key = "ls:lastseen:jobsnearby:email"
    wait_for(lambda: iso.redis.zscore(key, lid), 60, what="the lead followed by hygiene")
    signed_up = int(iso.redis.zscore(key, lid))
    iso._run("-m", "runtime.prune_once", "--at", iso_at(signed_up + 31 * DAY))
    wait_for(lambda: status(iso, lid) == "unsubscribed", 60, what="the cold lead unsubscribed")
    # weeks later the person opens an old alert and clicks a job: a person, so the lead is back
    back = signed_up + 40 * DAY
    iso.produce("engagement.observed", [(lid.encode(), hit(lid, back, CHROME))])
    wait_for(lambda: status(iso, lid) == "accepted", 60, what="the lead subscribed again")
    state = orjson.loads(iso.redis.get(f"ls:lead:jobsnearby:{lid}"))
    assert state["reasons"] == [] and state["lists"] == ["daily-jobs"]
    wait_for(lambda: iso.redis.zscore(key, lid) is not None, 30, what="hygiene following it again")
    assert iso.redis.zscore("ls:pruned:jobsnearby:email", lid) is None
