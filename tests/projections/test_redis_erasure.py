"""Erasure in Redis (real server, database 49): the do-not-contact lists per tenant, and every
kind of trace of a person found and removed, whatever family holds it, others' data untouched."""
from __future__ import annotations

import pytest

from domain.identity import LeadIds
from projections.redis_erasure import DoNotContact, dnc_key, find_traces, matcher, remove_traces
from tests.redis_db import emptied, run_async

lead_id = LeadIds("a-test-lead-id-secret").of
DB = 49
SECRET = "a-long-secret-of-the-deployment"
ANN = lead_id("acme", "email", "ann@example.com")
BOB = lead_id("acme", "email", "bob@example.com")


@pytest.fixture
def r():
    yield from emptied(DB)


def run(fn):
    return run_async(DB, fn)


def test_the_list_is_per_tenant_and_holds_keyed_hashes_only(r):
    async def go(c):
        dnc = DoNotContact(c, SECRET)
        from domain.erasure import contact_hash
        await dnc.add("acme", [contact_hash(SECRET, "acme", ANN)])
        return await dnc.erased([("acme", ANN), ("acme", BOB), ("globex", ANN)])
    assert run(go) == [True, False, False]
    [entry] = r.smembers(dnc_key("acme"))
    assert ANN.encode() not in entry and b"ann" not in entry
    assert run(lambda c: DoNotContact(c, "another-secret-entirely").erased([("acme", ANN)])) == [False]
    assert run(lambda c: DoNotContact(c, SECRET).erased([])) == []


def fill(r) -> None:
    for lead, address in ((ANN, "ann@example.com"), (BOB, "bob@example.com")):
        r.set(f"ls:lead:acme:{lead}", f'{{"lead_id": "{lead}", "address": "{address}"}}')  # key named by the id
        r.hset(f"ls:eng:acme:{lead}", mapping={"opens": 3})
        r.zadd("ls:due:acme", {f"{lead}|daily-jobs": 1})  # a sorted set's member
        r.sadd("ls:optout:acme", address)  # a set's member: the address
        r.hset("ls:dgtz:acme", lead, "Europe/Paris")  # a hash's field
        r.hset("ls:dgrun:acme:r1", f"x{lead[:4]}", f"member {lead}")  # a hash's value
        r.rpush("ls:somelist", f"{lead}:queued")  # a list's item
        r.set(f"ls:link:{lead[:6]}", f'{{"lead": "{lead}", "url": "https://jobs.example/1"}}')  # a string value
    r.sadd("ls:dnc:acme", "0123456789abcdef0123456789abcdef")
    r.sadd("ls:block", "ann@example.com")  # configuration: an operator's blocklist stays
    r.set("ls:unrelated", "nothing here")


def test_every_kind_of_trace_is_found_and_removed_and_nobody_elses(r):
    fill(r)
    traces = run(lambda c: find_traces(c, matcher({ANN}, {"ann@example.com"})))
    kinds = {(t.key.split(":")[1], t.kind) for t in traces}
    assert kinds == {("lead", "key"), ("eng", "key"), ("due", "ranked"), ("optout", "member"),
                     ("dgtz", "field"), ("dgrun", "field"), ("somelist", "item"), ("link", "value")}
    before = {k: r.type(k) for k in r.keys("*")}
    assert run(lambda c: remove_traces(c, traces)) == len(traces)
    assert run(lambda c: find_traces(c, matcher({ANN}, {"ann@example.com"}))) == []
    # Bob's are all there, and the list and the blocklist were not touched
    bob = run(lambda c: find_traces(c, matcher({BOB}, {"bob@example.com"})))
    assert {t.key.split(":")[1] for t in bob} == {"lead", "eng", "due", "optout", "dgtz", "dgrun", "somelist", "link"}
    assert r.sismember("ls:block", "ann@example.com") and r.scard("ls:dnc:acme") == 1
    assert r.get("ls:unrelated") == b"nothing here"
    assert set(r.keys("*")) == set(before) - {f"ls:lead:acme:{ANN}".encode(), f"ls:eng:acme:{ANN}".encode(),
                                              f"ls:link:{ANN[:6]}".encode()}


def test_many_leads_at_once_are_matched_by_their_ids(r):
    leads = {lead_id("acme", "email", f"p{i}@example.com") for i in range(200)}  # a replay's many
    for lead in leads:
        r.zadd("ls:lastseen:acme:email", {lead: 1})
    one = sorted(leads)[0]
    r.zadd("ls:lastseen:acme:email", {BOB: 1, f"f{one}": 1})  # a longer hex run is not that lead's id
    names = matcher(leads, set())
    traces = run(lambda c: find_traces(c, names))
    assert len(traces) == 200
    run(lambda c: remove_traces(c, traces))
    assert {m.decode() for m in r.zrange("ls:lastseen:acme:email", 0, -1)} == {BOB, f"f{one}"}
