"""The digest use cases over real Redis (database 48): two workers digesting the same chunk at
once ask for the same digests and the run counts the chunk once; a digest's segment narrows who
gets it; members of groups of another kind, or with nothing new, get none."""
from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from domain.digests import DAY_MS, HOUR_MS, Item, latest_period, run_id
from domain.tenants import TenantBook
from projections.redis_digests import DigestStore
from projections.redis_segments import SegmentStore, lead_segments_key
from services.digests import DigestComposer, DigestPlanner
from tests.redis_db import db_url, emptied
from tests.domain.conftest import make_tenant

DB = 48
T = "acme"
NOW = 1_779_926_400_000  # 2026-05-28 00:00 UTC


def _url() -> str:
    return db_url(DB)


@pytest.fixture
def r():
    yield from emptied(DB)


def book(**digest) -> TenantBook:
    cfg = {"list": "daily", "send_time": "08:00", "top_k": 2, "catch_up_hours": 6, **digest}
    return TenantBook(admin_key_sha256=[], tenants={T: make_tenant(digests={"d": cfg})})


async def _setup(client, members: int) -> None:
    store = DigestStore(client)
    await store.change_memberships(T, [("join", f"L{n:03d}", "g1" if n % 5 else "e1", "community" if n % 5 else "employer",
                                        "UTC", NOW - 30 * DAY_MS) for n in range(members)]
                                   + [("seen", f"L{n:03d}", "", "", "", NOW - DAY_MS) for n in range(members)])
    await store.post_items(T, [Item(f"i{n}", "g1", float(n), NOW - 3 * HOUR_MS, f"t{n}", f"https://x.test/{n}")
                               for n in range(4)]
                           + [Item("e-only", "e1", 50.0, NOW - 3 * HOUR_MS, "employer", "https://x.test/e")])


async def _plan(client, b: TenantBook, at: int):
    planner = DigestPlanner(DigestStore(client), chunk_size=10)
    out = await planner.plan_due(b, at)
    await planner.after_produce(out, at)
    return out


def test_two_workers_digesting_one_chunk_at_once_ask_the_same_and_the_run_counts_it_once(r):
    async def go():
        client = aioredis.Redis.from_url(_url())
        await _setup(client, 10)
        b = book(group_kinds=["community"])
        at = NOW + 8 * HOUR_MS
        planned = await _plan(client, b, at)
        [(role, key, name, chunk)] = [x for x in planned.records if x[2] == "digest.chunk_requested"]
        segs = SegmentStore(client).of_leads
        one, two = DigestComposer(DigestStore(client), segs, "w1"), DigestComposer(DigestStore(client), segs, "w2")
        a, b2 = await asyncio.gather(one.digest_chunk(chunk, b, at), two.digest_chunk(chunk, b, at))
        settled = await asyncio.gather(one.settle(a, at), two.settle(b2, at))
        third = await DigestComposer(DigestStore(client), segs, "w3").digest_chunk(chunk, b, at)
        run = await DigestStore(client).run(chunk["run"])
        await client.aclose()
        return a, b2, settled, third, run
    a, b2, settled, third, run = asyncio.run(go())
    ids = lambda out: sorted(ev["send_id"] for role, _, name, ev in out.records if name == "send.requested")  # noqa: E731
    assert ids(a) == ids(b2) and len(ids(a)) == 8  # every community member; employer-only members: nothing new
    assert (run["requested"], run["nothing_new"], run["done_chunks"], run["members"]) == ("8", "2", "1", "10")
    assert run["items"] == "16"  # two items each (top_k 2)
    assert sum(len(s.records) for s in settled) >= 1  # the run's end told (by one or both, same event id)
    finished = {ev["event_id"] for s in settled for _, _, name, ev in s.records if name == "digest.run_finished"}
    assert len(finished) == 1
    assert third.records == [] and third.settle is None  # done: not digested again


def test_a_digest_naming_a_segment_goes_only_to_its_members_and_counts_the_others(r):
    async def go():
        client = aioredis.Redis.from_url(_url())
        await _setup(client, 10)
        for n in (1, 2, 3):
            await client.sadd(lead_segments_key(T, f"L{n:03d}"), "engaged")
        b = book(segment="engaged")
        at = NOW + 8 * HOUR_MS
        planned = await _plan(client, b, at)
        [chunk] = [ev for _, _, name, ev in planned.records if name == "digest.chunk_requested"]
        c = DigestComposer(DigestStore(client), SegmentStore(client).of_leads, "w1")
        out = await c.digest_chunk(chunk, b, at)
        await client.aclose()
        return out
    out = asyncio.run(go())
    assert sorted(ev["lead_id"] for _, _, name, ev in out.records if name == "send.requested") == \
        ["L001", "L002", "L003"]
    assert out.settle["outside_segment"] == 7 and out.settle["members"] == 10


def test_a_run_is_planned_once_and_not_before_its_send_time(r):
    async def go():
        client = aioredis.Redis.from_url(_url())
        await _setup(client, 3)
        b = book()
        early = await _plan(client, b, NOW + 7 * HOUR_MS)  # 07:00 UTC: yesterday's run is past catch-up
        first = await _plan(client, b, NOW + 8 * HOUR_MS)
        again = await _plan(client, b, NOW + 9 * HOUR_MS)
        await client.aclose()
        return early, first, again
    early, first, again = asyncio.run(go())
    period = latest_period(book().tenants[T].digests["d"], "UTC", NOW + 8 * HOUR_MS)
    assert early.runs == [] and again.runs == []
    assert first.runs == [run_id(T, "d", "UTC", period.key)]
    assert [name for _, _, name, _ in first.records].count("digest.planned") == 1


def test_a_period_found_past_its_catch_up_with_no_run_is_told_missed_once_unless_the_digest_is_newer(r):
    async def go():
        client = aioredis.Redis.from_url(_url())
        await _setup(client, 3)
        b = book()
        planner = DigestPlanner(DigestStore(client))
        await planner.watch(b, NOW + 1 * HOUR_MS)  # the planner knew the digest before 08:00...
        late = await planner.plan_due(b, NOW + 15 * HOUR_MS)  # ...and is back at 15:00: past 08:00 + 6 h
        again = await planner.plan_due(b, NOW + 16 * HOUR_MS)
        await client.flushdb()
        await _setup(client, 3)
        await planner.watch(b, NOW + 10 * HOUR_MS)  # a digest first seen after its period's send time
        newer = await planner.plan_due(b, NOW + 15 * HOUR_MS)
        await client.aclose()
        return late, again, newer
    late, again, newer = asyncio.run(go())
    missed = [ev for _, _, name, ev in late.records if name == "digest.run_missed"]
    assert len(missed) == 1 and missed[0]["members"] == 3 and missed[0]["reason"] == "not_planned_in_time"
    assert missed[0]["run"] == run_id(T, "d", "UTC", "2026-05-28") and late.counts == {"runs_missed": 1}
    assert again.records == [] and newer.records == []
