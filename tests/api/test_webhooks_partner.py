"""Provider webhooks find the lead's partner: for a delivery report or a provider-tracked open
through the send's record (written at dispatch), for an SMS reply through the lead's read
model. Real Redis (DB 41 of the local stack), emptied before and after."""
from __future__ import annotations

import pytest

from api.webhooks import _match
from channels.webhooks_in import Observation
from tests.integration.conftest import lead_id
from domain.intake import LeadState
from projections.redis_sends import SendState
from streams.settings import Settings
from runtime.deps import build


@pytest.fixture
async def deps():
    d = build(Settings(redis_url="redis://127.0.0.1:16379/41"))
    await d.redis.flushdb()
    yield d
    await d.redis.flushdb()
    await d.redis.aclose()


async def test_delivery_reports_and_replies_carry_the_partner(deps):
    phone = "+15125550100"
    lid = lead_id("jobsnearby", "sms", phone)
    dispatched = {"tenant": "jobsnearby", "lead_id": "L1", "send_id": "S1", "channel": "email", "list": "daily-jobs",
                  "kind": "daily", "provider": "sendgrid", "provider_id": "m-1", "template": "jobsnearby/daily-jobs",
                  "template_version": "3f2a9c1e", "job_keys": [], "partner": "indeed-xml"}

    async def run():
        await SendState(deps.redis).record([dispatched], [], 1_764_064_800_000, 0)
        await deps.leads.save([LeadState("jobsnearby", lid, "sms", phone, "accepted", lists=["sms-alerts"],
                                         partners=["ziprecruiter", "indeed-xml"])])
        return await _match(deps, [
            Observation("sendgrid", "delivered", "e-1", "m-1", 1_764_064_900_000),
            Observation("twilio", "reply", "e-2", "", 1_764_064_900_000, from_number=phone,
                        to_number="+15005550001", text="MORE"),
            Observation("twilio", "reply", "e-3", "", 1_764_064_900_000, from_number="+15125550199",
                        to_number="+15005550001", text="HELP")])
    delivered, reply, stranger = await run()
    assert (delivered["partner"], delivered["template"], delivered["schema"]) == \
        ("indeed-xml", "3f2a9c1e", "webhook.observation@2")
    assert (reply["lead_id"], reply["partner"]) == (lid, "ziprecruiter")
    assert stranger["partner"] == ""  # a number no lead has: no partner to attribute
    for ev in (delivered, reply, stranger):
        deps.codec.encode("webhook.observation", ev)
