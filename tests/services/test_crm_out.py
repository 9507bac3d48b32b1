"""The CRM write-back against real Redis (database 17) and the HubSpot stand-in: within the brand's
share of the rate limit (the rest waits for the next window, still due), only the leads it is
ours to write (the CRM's contacts; never an erased person, never an SMS lead), only what changed,
a lead marked again during a write kept due, and a CRM that is down leaving every lead due."""
from __future__ import annotations

import asyncio

import httpx
import pytest

from channels.crm.hubspot import CrmError, HubSpot
from domain.erasure import contact_hash
from domain.intake import LeadState
from domain.tenants import CrmSettings
from projections.redis_crm import CrmFields, outbox_key
from projections.redis_leads import LeadStore
from runtime.deps import build
from services.crm.sync_out import clear_erased, clear_owed, write_due
from stack.standins import hubspot as standin
from streams.settings import ROOT, get_settings, load_tenants
from tests.redis_db import db_url, emptied

DB = 17
T = "hireflow"
NOW = 1_796_000_000_000


@pytest.fixture
def r():
    yield from emptied(DB)


@pytest.fixture
def hub():
    url, stop = standin.start()
    yield url, stop
    stop()


def tenant(url: str, **more):
    book = load_tenants(ROOT / "tenants" / "demo.yaml")
    crm = CrmSettings(base_url=url, token="env:X", app_secret="env:Y", list="nurses", **more)
    return book.tenants[T].model_copy(update={"crm": crm})


def run(url: str, fn):
    async def go():
        deps = build(get_settings().model_copy(update={"redis_url": db_url(DB)}))
        try:
            async with httpx.AsyncClient() as http:
                return await fn(deps, HubSpot(url, standin.TOKEN, http, max_attempts=2, sleep=_no_wait))
        finally:
            await deps.redis.aclose()
    return asyncio.run(go())


async def _no_wait(_s: float) -> None:
    return None


def lead(i: int, channel: str = "email") -> LeadState:
    return LeadState(T, f"L{i:04d}", channel, f"p{i}@example.com" if channel == "email" else f"+4477009{i:05d}",
                     "accepted", lists=["nurses"], partners=["crm"])


async def seed(deps, leads: list[LeadState], known: bool = True) -> None:
    await LeadStore(deps.redis).save(leads)
    fields = CrmFields(deps.redis)
    if known:
        await fields.put(T, {s.lead_id: {"id": str(5000 + i)} for i, s in enumerate(leads)})
    await fields.mark([(T, s.lead_id) for s in leads])


def test_the_write_back_keeps_within_its_share_of_the_rate_limit_and_the_rest_stays_due(r, hub):
    url, _ = hub
    t = tenant(url, out_requests_per_10s=1)

    async def go(deps, crm):
        await seed(deps, [lead(i) for i in range(250)])
        first = await write_due(deps, crm, t, NOW, settle_us=0)
        again = await write_due(deps, crm, t, NOW + 1, settle_us=0)  # the same 10 s window: nothing left of the share
        later = await write_due(deps, crm, t, NOW + 10_000, settle_us=0)
        return first, again, later
    first, again, later = run(url, go)
    assert first == (100, 0, 150) and again == (0, 0, 150) and later == (100, 0, 50)
    assert r.zcard(outbox_key(T)) == 50
    contacts = httpx.get(url + "/_control/contacts").json()
    assert len(contacts) == 200 and all(c["properties"]["leadstream_status"] == "accepted" for c in contacts)
    assert httpx.get(url + "/_control").json()["counts"]["upsert"] == 2


def test_only_ours_to_write_is_written_and_nothing_twice(r, hub):
    url, _ = hub
    t = tenant(url)
    s = get_settings()
    r.sadd(f"ls:dnc:{T}", contact_hash(s.privacy_hash_secret, T, "L0001"))  # erased

    async def go(deps, crm):
        await seed(deps, [lead(0), lead(1), lead(2, "sms")])
        await seed(deps, [lead(3)], known=False)  # not a contact of the CRM (out: crm_contacts)
        first = await write_due(deps, crm, t, NOW, settle_us=0)
        await CrmFields(deps.redis).mark([(T, "L0000")])  # marked again, nothing changed since
        return first, await write_due(deps, crm, t, NOW + 1, settle_us=0)
    first, second = run(url, go)
    assert first == (1, 0, 0) and second == (0, 0, 0)  # nothing new: no request at all
    emails = [c["properties"]["email"] for c in httpx.get(url + "/_control/contacts").json()]
    assert emails == ["p0@example.com"]
    assert r.zcard(outbox_key(T)) == 0  # every lead decided, none left due
    assert httpx.get(url + "/_control").json()["counts"]["upsert"] == 1


def test_a_lead_marked_again_while_its_write_is_under_way_stays_due(r, hub):
    url, _ = hub

    async def go(deps, crm):
        fields = CrmFields(deps.redis)
        await fields.mark([(T, "L0000"), (T, "L0001")])
        read = await fields.due(T, 10, 0)
        await fields.mark([(T, "L0001")])  # a click came in meanwhile
        await fields.done(T, read)
        return await fields.due(T, 10, 0)
    left = run(url, go)
    assert [lid for lid, _ in left] == ["L0001"]


def test_a_crm_that_is_down_leaves_every_lead_due(r, hub):
    url, stop = hub
    t = tenant(url)
    stop()

    async def go(deps, crm):
        await seed(deps, [lead(i) for i in range(3)])
        with pytest.raises(CrmError):
            await write_due(deps, crm, t, NOW, settle_us=0)
    run(url, go)
    assert r.zcard(outbox_key(T)) == 3


def test_a_lead_whose_read_model_is_not_written_yet_stays_due_and_a_fresh_mark_waits_to_settle(r, hub):
    url, _ = hub
    t = tenant(url)

    async def go(deps, crm):
        fields = CrmFields(deps.redis)
        await fields.put(T, {"L0000": {"id": "5000"}})
        await fields.mark([(T, "L0000")])  # its lead event is out; the intake has not saved it yet
        unsettled = await fields.due(T, 10)  # marked just now: the projections get 3 s to land
        first = await write_due(deps, crm, t, NOW, settle_us=0)
        await LeadStore(deps.redis).save([lead(0)])
        return unsettled, first, await write_due(deps, crm, t, NOW + 1, settle_us=0)
    unsettled, first, second = run(url, go)
    assert unsettled == [] and first == (0, 0, 0) and second == (1, 0, 0)
    assert r.zcard(outbox_key(T)) == 0


def test_an_erased_contact_the_crm_does_not_take_emptying_is_owed_and_emptied_later(r):
    url, stop = standin.start()
    port = int(url.rsplit(":", 1)[1])
    t = tenant(url)
    httpx.post(url + "/_control/contacts", json={"contacts": [{"email": "p0@example.com",
                                                               "properties": {"leadstream_score": "9"}}]})
    cid = httpx.get(url + "/_control/contacts").json()[0]["id"]
    stop()  # the CRM is down at the erasure

    async def erase(deps, _crm):
        await CrmFields(deps.redis).put(T, {"L0000": {"id": cid, "w:leadstream_score": "9"}})
        return await clear_erased(deps, t, ["L0000"], loader=_Token())
    assert run(url, erase) == {"L0000": False}  # not emptied now, owed: the erasure goes on
    assert r.smembers(f"ls:crmclear:{T}") == {cid.encode()}
    url2, stop2 = standin.start(port=port)  # back (empty: the stand-in's memory went with it)
    try:
        httpx.post(url2 + "/_control/contacts", json={"contacts": [{"email": "p0@example.com",
                                                                    "properties": {"leadstream_score": "9"}}]})
        assert run(url2, lambda deps, _c: clear_owed(deps, _Token(), t)) == 1
        [c] = httpx.get(url2 + "/_control/contacts").json()
        assert c["properties"]["leadstream_score"] == "" and r.scard(f"ls:crmclear:{T}") == 0
    finally:
        stop2()


class _Token:
    def load(self, ref: str) -> bytes:
        return standin.TOKEN.encode()
