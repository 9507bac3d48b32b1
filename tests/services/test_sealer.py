"""Events' personal fields sealed and opened with leads' data keys, against real Kafka and Redis
(database 53, a private privacy.keys topic): one key per lead however many of their events a
batch holds, made durable before use; empty fields need no key; clear (older) events read as
they are; a value copied from another lead's event, or sealed with a destroyed key, reads None."""
from __future__ import annotations

import asyncio

from domain.sealing import is_sealed
from services.privacy.sealer import Sealer
from tests.services.test_data_keys import RING_OLD, deps_for, prefix, r, topic_latest  # noqa: F401 (fixtures)

T = "acme"


def accepted(lead: str, address: str, first: str | None = "Ann") -> dict:
    return {"event_id": f"E{lead}", "tenant": T, "lead_id": lead, "occurred_at": 1, "address": address,
            "first_name": first, "last_name": None, "list": "daily", "partner": "p1"}


def run(prefix: str, fn):
    async def go():
        deps = deps_for(prefix, RING_OLD)
        try:
            return await fn(deps)
        finally:
            await deps.redis.aclose()
            deps.producer.close()
    return asyncio.run(go())


def test_a_batch_is_sealed_with_one_durable_key_per_lead_and_opens_again(r, prefix):
    events = [("lead.accepted", accepted("L1", "ann@example.com")),
              ("lead.unsubscribed", {"event_id": "U1", "tenant": T, "lead_id": "L1", "occurred_at": 2,
                                     "address": "ann@example.com", "reason": "asked"}),
              ("lead.accepted", accepted("L2", "bob@example.com", first=None)),
              ("lead.rejected", {"event_id": "R3", "tenant": T, "lead_id": "L3", "occurred_at": 3, "address": "",
                                 "reasons": ["do_not_contact"]}),
              ("send.requested", {"event_id": "S1", "tenant": T, "lead_id": "L1", "occurred_at": 4})]

    async def go(deps):
        sealed = await deps.sealer().seal(events, 10)
        fresh = Sealer(deps.data_keys())  # another process: nothing cached
        return sealed, await fresh.open(list(zip([n for n, _ in events], sealed)))
    sealed, back = run(prefix, go)
    assert is_sealed(sealed[0]["address"]) and is_sealed(sealed[0]["first_name"]) and sealed[0]["last_name"] is None
    assert is_sealed(sealed[1]["address"]) and sealed[1]["reason"] == "asked"
    assert is_sealed(sealed[2]["address"]) and sealed[2]["first_name"] is None
    assert sealed[3]["address"] == "" and sealed[4] == events[4][1]  # nothing to seal: as it was
    assert [ev for _, ev in back] == [ev for _, ev in events]
    assert set(topic_latest(prefix)) == {f"{T}/L1", f"{T}/L2"}  # durable before use; none for L3
    assert r.hlen(f"ls:dek:{T}") == 2


def test_clear_events_read_as_they_are_and_what_does_not_open_reads_none(r, prefix):
    async def go(deps):
        sealer = deps.sealer()
        [a1, a2] = await sealer.seal([("lead.accepted", accepted("L1", "ann@example.com")),
                                      ("lead.accepted", accepted("L2", "bob@example.com"))], 10)
        copied = {**a2, "address": a1["address"]}  # L1's sealed address pasted into L2's event
        old = accepted("L9", "old@example.com")  # written before lead events were sealed
        await deps.data_keys().destroy(T, "L1")
        fresh = Sealer(deps.data_keys())
        out = await fresh.open([("lead.accepted", copied), ("lead.accepted", old), ("lead.accepted", a1)])
        return out, fresh.unreadable
    out, unreadable = run(prefix, go)
    assert out[0][1]["address"] is None and out[0][1]["first_name"] == "Ann"
    assert out[1][1] == accepted("L9", "old@example.com")
    assert (out[2][1]["address"], out[2][1]["first_name"]) == (None, None)  # erased: the key is gone
    assert unreadable == 3


def test_a_process_that_makes_no_keys_seals_with_durable_ones_only_and_remembers_who_has_none(r, prefix):
    from projections.redis_data_keys import PENDING, stored

    def hit(lead: str) -> tuple[str, dict]:
        return "engagement.hit", {"event_id": f"H{lead}", "tenant": T, "lead_id": lead, "occurred_at": 5,
                                  "ip": "203.0.113.7", "user_agent": "UA"}

    async def go(deps):
        keys = deps.data_keys()
        await deps.sealer().seal([("lead.accepted", accepted("L1", "ann@example.com"))], 10)  # durable
        await keys.store.swap(T, [("L2", "", stored(PENDING, keys._wrap(T, "L2", b"\x07" * 32)))])  # its maker died
        front = Sealer(keys)
        assert front.seal_known_cached([hit("L1")]) is None  # nothing cached yet: ask Redis
        first = await front.seal_known([hit("L1"), hit("L2"), hit("L3")])
        cached = front.seal_known_cached([hit("L1"), hit("L3")])  # both known to this process now
        assert is_sealed(cached[0]["ip"]) and cached[1]["ip"] == "203.0.113.7"
        assert front.seal_known_cached([hit("L1"), hit("L4")]) is None  # one not cached: ask for all
        await deps.sealer().seal([("lead.accepted", accepted("L3", "cy@example.com"))], 11)  # L3's key made elsewhere
        again = await front.seal_known([hit("L3")])  # remembered without a key for a while: not asked
        mixed = await front.seal([hit("L3")], 12)  # sealing that may make keys asks again
        opened = await deps.sealer().open([("engagement.hit", first[0]), ("engagement.hit", mixed[0])])
        return first, again, mixed, opened
    first, again, mixed, opened = run(prefix, go)
    assert is_sealed(first[0]["ip"]) and first[1]["ip"] == first[2]["ip"] == "203.0.113.7"
    assert again[0]["ip"] == "203.0.113.7" and is_sealed(mixed[0]["ip"])
    assert [ev["ip"] for _, ev in opened] == ["203.0.113.7", "203.0.113.7"]
