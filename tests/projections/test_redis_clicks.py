"""The last-click store on the real Redis (a DB of its own): a newer click wins whatever the
order they arrive in, a redelivery changes nothing, a click revised as a machine's removes only
its own mark, and the service turns a goal into an attributed conversion from it."""
from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from domain.conversions import ClickMark
from domain.tenants import TenantBook
from projections.redis_clicks import ClickMarks
from services.conversions import Conversions
from streams.settings import get_settings
from tests.domain.conftest import make_tenant

DB = 14


def mark(event_id: str, at: int, send_id: str = "s1") -> ClickMark:
    return ClickMark(event_id, at, send_id, "daily", "email", "v1", "", "acme:feed:J1", "feed")


@pytest.fixture
def store():
    url = get_settings().redis_url.rsplit("/", 1)[0] + f"/{DB}"

    async def run(fn):
        r = aioredis.Redis.from_url(url)
        await r.flushdb()
        try:
            return await fn(ClickMarks(r), r)
        finally:
            await r.flushdb()
            await r.aclose()
    return lambda fn: asyncio.run(run(fn))


def test_the_newest_click_is_kept_in_any_order_and_only_its_own_revision_removes_it(store):
    async def go(clicks: ClickMarks, _):
        await clicks.remember([("acme", "L1", mark("E2", 200)), ("acme", "L1", mark("E1", 100))])
        await clicks.remember([("acme", "L1", mark("E2", 200))])  # redelivered
        [last, none] = await clicks.last([("acme", "L1"), ("acme", "L2")])
        assert last.event_id == "E2" and none is None
        await clicks.forget([("acme", "L1", "E1")])  # an older click revised: the mark stays
        assert (await clicks.last([("acme", "L1")]))[0].event_id == "E2"
        await clicks.forget([("acme", "L1", "E2")])
        assert (await clicks.last([("acme", "L1")])) == [None]
    store(go)


class History:
    async def histories(self, keys):
        return [[{"send_id": "s1", "experiment": "e", "variant": "e/b"}] for _ in keys]


def test_a_click_and_the_goal_it_led_to_in_one_batch_are_attributed(store):
    book = TenantBook(admin_key_sha256=[], tenants={"acme": make_tenant()})
    click = {"event_id": "01KB0Z8YA1Q3ZK5J7M2N4P6RA2", "tenant": "acme", "lead_id": "L1", "occurred_at": 1000,
             "send_id": "s1", "list": "daily", "channel": "email", "slot": "job", "is_bot": False, "revision": 0}
    goal = {"event_id": "01KB0Z8YA1Q3ZK5J7M2N4P6RB0", "tenant": "acme", "lead_id": "L1", "occurred_at": 5000,
            "name": "hired", "properties": '{"revenue": 3}', "resolved": True}
    other = {**goal, "event_id": "01KB0Z8YA1Q3ZK5J7M2N4P6RB1", "name": "job_viewed"}

    async def go(clicks: ClickMarks, _):
        out = await Conversions(lambda: book, clicks, History()).on_events(
            [("engagement.clicked", click), ("product.tracked", goal), ("product.tracked", other)])
        [(name, ev)] = out
        assert name == "engagement.converted" and ev["attributed"] and ev["variant"] == "e/b"
        assert ev["revenue_cents"] == 300 and ev["send_id"] == "s1"
    store(go)
