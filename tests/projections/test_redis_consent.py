"""The consent store against real Redis (database 51): the Lua fold keeps, for any arrival order
of the same records, the one domain.consent.supersedes ranks first; the tenant's withdrawn set
follows the current marketing consent only; the sender's lookup reads it."""
from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from domain.consent import supersedes
from domain.intake import LeadState
from projections.redis_consent import ConsentStore, consent_key, withdrawn_key
from projections.redis_leads import LeadStore
from tests.redis_db import emptied, run_async

DB = 51


@pytest.fixture
def r():
    yield from emptied(DB)


def run(fn):
    return run_async(DB, fn)


def rec(lead: str, at: int, granted: bool, eid: str, purpose: str = "marketing", tenant: str = "acme") -> dict:
    return {"tenant": tenant, "lead_id": lead, "channel": "email", "purpose": purpose, "granted": granted,
            "at": at, "event_id": eid, "via": "form|x"}


records = st.lists(st.tuples(st.integers(0, 4), st.booleans(), st.sampled_from(["01A", "01B", "01C"])),
                   min_size=1, max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records, st.randoms(use_true_random=False), st.integers(1, 3))
def test_any_arrival_order_in_any_batches_keeps_what_the_domain_ranks_first(r, rs, rnd, batches):
    r.flushdb()  # each example starts empty (the fixture runs once for them all)
    entries = [rec("L1", 1_000 + at, g, eid) for at, g, eid in rs]
    best = None
    for e in entries:
        if supersedes(e, best):
            best = e
    rnd.shuffle(entries)
    cut = sorted(rnd.sample(range(len(entries) + 1), min(batches, len(entries) + 1)))

    async def fold(client):
        store, start = ConsentStore(client), 0
        for end in cut + [len(entries)]:
            await store.fold(entries[start:end])
            start = end
        await store.fold(entries)  # everything again: a redelivery changes nothing
        return await store.current("acme", "L1"), await store.withdrawn("acme", ["L1"])
    current, [off] = run(fold)
    kept = current["marketing"]
    assert (kept["at"], kept["granted"], kept["event_id"]) == (best["at"], best["granted"], best["event_id"])
    assert kept["via"] == "form/x"  # the separator cannot be forged into the stored record
    assert off is (not best["granted"])


def test_only_the_marketing_purpose_moves_the_withdrawn_set(r):
    async def go(client):
        store = ConsentStore(client)
        n = await store.fold([rec("L1", 10, False, "01A", purpose="profiling"), rec("L2", 10, False, "01B")])
        return n, await store.withdrawn("acme", ["L1", "L2", "L3"]), await store.current("acme", "L1")
    n, flags, current = run(go)
    assert n == 2 and flags == [False, True, False]
    assert current["profiling"]["granted"] is False and "marketing" not in current
    assert r.smembers(withdrawn_key("acme")) == {b"L2"} and r.exists(consent_key("acme", "L1"))


def test_a_later_consent_given_takes_the_lead_out_of_the_withdrawn_set_and_tenants_stay_apart(r):
    async def go(client):
        store = ConsentStore(client)
        await store.fold([rec("L1", 10, False, "01A"), rec("L1", 10, False, "01A", tenant="other")])
        await store.fold([rec("L1", 20, True, "01B")])
        return await store.withdrawn("acme", ["L1"]), await store.withdrawn("other", ["L1"])
    assert run(go) == ([False], [True])


def test_a_large_batch_folds_in_chunks_with_one_result(r):
    entries = [rec(f"L{i}", 5, i % 3 == 0, f"01{i:05d}") for i in range(2500)]
    random.Random(4).shuffle(entries)
    assert run(lambda c: ConsentStore(c).fold(entries)) == 2500
    assert r.scard(withdrawn_key("acme")) == sum(1 for i in range(2500) if i % 3)


def test_the_senders_lookup_reads_the_withdrawn_set_per_tenant(r):
    async def go(client):
        await ConsentStore(client).fold([rec("L1", 5, False, "01A"), rec("L2", 5, True, "01B"),
                                         rec("L1", 5, True, "01C", tenant="beta")])
        leads = LeadStore(client)
        await leads.save([LeadState("acme", "L1", "email", "a@x.test", "accepted"),
                          LeadState("beta", "L1", "email", "a@x.test", "accepted")])
        items = [("acme", "L1", ["a@x.test"]), ("acme", "L2", ["b@x.test"]), ("beta", "L1", ["a@x.test"])]
        return await leads.lookup(items, with_consent=True), await leads.lookup(items)
    with_consent, plain = run(go)
    assert [x.consent_withdrawn for x in with_consent] == [True, False, False]
    assert [x.consent_withdrawn for x in plain] == [False, False, False]  # the intake does not ask
    assert [x.state and x.state.tenant for x in with_consent] == ["acme", None, "beta"]
