"""Digests, pure: periods at local time (DST too), windows that chain, ids, the top K against a
brute-force reference, who goes first and who is left out."""
from __future__ import annotations

import heapq
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.digests import (DAY_MS, HOUR_MS, MAX_TOP_K, DigestConfig, Item, chunks_of, cutoffs, digest_send_id,
                            due, group_top, hour_buckets, latest_period, run_id, top_items)


def cfg(**over) -> DigestConfig:
    return DigestConfig(**{"list": "community", **over})


def ms(y, mo, d, h=0, mi=0, tz="UTC") -> int:
    return int(datetime(y, mo, d, h, mi, tzinfo=ZoneInfo(tz)).timestamp() * 1000)


def test_a_daily_period_is_the_last_send_time_at_or_before_now_in_the_members_zone():
    c = cfg(send_time="08:00")
    before = latest_period(c, "America/Chicago", ms(2026, 12, 6, 7, 59, "America/Chicago"))
    at = latest_period(c, "America/Chicago", ms(2026, 12, 6, 8, 0, "America/Chicago"))
    assert before.key == "2026-12-05" and before.send_at_ms == ms(2026, 12, 5, 8, 0, "America/Chicago")
    assert at.key == "2026-12-06" and at.send_at_ms == ms(2026, 12, 6, 8, 0, "America/Chicago")
    assert at.window_start_ms == before.send_at_ms  # windows chain: no item in two periods, none in none


def test_a_weekly_period_is_keyed_by_iso_week_and_sent_on_its_weekday():
    c = cfg(cadence="weekly", weekday="mon", send_time="09:30")
    p = latest_period(c, "Europe/Paris", ms(2026, 12, 6, 12, 0, "Europe/Paris"))  # a Sunday
    assert p.key == "2026-W49" and p.send_at_ms == ms(2026, 11, 30, 9, 30, "Europe/Paris")
    assert p.send_at_ms - p.window_start_ms == 7 * DAY_MS


def test_periods_across_a_dst_change_are_sent_once_at_the_local_time():
    c = cfg(send_time="02:30")  # does not exist on 2026-03-08 in New York: sent at 03:00
    p = latest_period(c, "America/New_York", ms(2026, 3, 8, 12, 0, "America/New_York"))
    assert p.key == "2026-03-08" and p.send_at_ms == ms(2026, 3, 8, 3, 0, "America/New_York")
    prev = latest_period(c, "America/New_York", p.send_at_ms - 1)
    assert prev.key == "2026-03-07" and p.window_start_ms == prev.send_at_ms


def test_a_run_is_made_between_its_send_time_and_the_catch_up_limit_and_only_when_enabled():
    c = cfg(catch_up_hours=2)
    p = latest_period(c, "UTC", ms(2026, 12, 6, 9))
    assert due(c, p, p.send_at_ms) and due(c, p, p.send_at_ms + 2 * HOUR_MS)
    assert not due(c, p, p.send_at_ms + 2 * HOUR_MS + 1)
    assert not due(cfg(enabled=False), p, p.send_at_ms)


def test_hour_buckets_of_consecutive_windows_neither_overlap_nor_leave_gaps():
    c = cfg(send_time="08:30")
    a = latest_period(c, "Asia/Kolkata", ms(2026, 12, 6, 12))
    b = latest_period(c, "Asia/Kolkata", a.send_at_ms + DAY_MS)
    ha, hb = hour_buckets(a.window_start_ms, a.send_at_ms), hour_buckets(b.window_start_ms, b.send_at_ms)
    assert ha[-1] + 1 == hb[0] and len(ha) == len(hb) == 24


def test_ids_are_fixed_by_what_they_name():
    assert run_id("t", "d", "UTC", "2026-12-06") == run_id("t", "d", "UTC", "2026-12-06")
    assert run_id("t", "d", "UTC", "2026-12-06") != run_id("t", "d", "Europe/Paris", "2026-12-06")
    assert digest_send_id("t", "d", "L1", "2026-W49") == digest_send_id("t", "d", "L1", "2026-W49")
    assert digest_send_id("t", "d", "L1", "2026-W49") != digest_send_id("t", "d", "L1", "2026-W50")


def test_chunks_cover_every_rank_once():
    cs = chunks_of("standard", 2501, 1000, first_index=3)
    assert [(c.index, c.start, c.stop) for c in cs] == [(3, 0, 1000), (4, 1000, 2000), (5, 2000, 2501)]
    assert chunks_of("priority", 0, 1000) == []


def test_only_a_large_run_leaves_inactive_members_out():
    now = ms(2026, 12, 6)
    c = cfg(inactive_days=90, large_run_members=100, priority_active_days=7)
    assert cutoffs(c, 99, now).active_from_ms is None
    big = cutoffs(c, 100, now)
    assert big.active_from_ms == now - 90 * DAY_MS and big.priority_from_ms == now - 7 * DAY_MS


def test_a_definition_with_bad_values_is_refused_with_the_field_named():
    for bad in ({"top_k": 0}, {"top_k": MAX_TOP_K + 1}, {"send_time": "25:00"}, {"cadence": "hourly"},
                {"group_kinds": []}, {"group_kinds": ["forum"]}, {"list": ""}, {"surprise": 1}):
        with pytest.raises(ValidationError):
            cfg(**bad)


# -- top K against a brute-force reference ----------------------------------------------------

def reference(all_items: list[Item], member: str, groups: dict[str, int], k: int) -> list[str]:
    """Every group's best k of the whole window, less the member's own and pre-join items, best k."""
    best_of_groups = []
    for g in groups:
        mine = sorted({i.item_id: i for i in all_items if i.group_id == g}.values(),
                      key=lambda i: (i.score, i.item_id), reverse=True)[:k]
        best_of_groups += mine
    kept = [i for i in best_of_groups if i.author != member and i.posted_at_ms >= groups[i.group_id]]
    kept = sorted({i.item_id: i for i in kept}.values(), key=lambda i: (i.score, i.item_id), reverse=True)
    return [i.item_id for i in kept[:k]]


items_st = st.lists(st.builds(
    lambda n, g, score, hour, author: Item(f"i{n}", f"g{g}", float(score), hour * HOUR_MS + n, author=author),
    st.integers(0, 400), st.integers(0, 3), st.integers(0, 20), st.integers(0, 47),
    st.sampled_from(["", "", "me", "other"])), max_size=300)


@settings(max_examples=300, deadline=None)
@given(items_st, st.integers(1, 8), st.dictionaries(st.sampled_from(["g0", "g1", "g2", "g3"]),
                                                    st.integers(0, 47 * HOUR_MS), min_size=1))
def test_top_k_from_hour_buckets_equals_the_brute_force_reference(items, k, groups):
    # the store keeps each hour's best MAX_TOP_K (what post_items leaves); a worker reads each
    # hour's best k and keeps the group's best k of those
    items = list({i.item_id: i for i in items}.values())  # one item id, one item
    buckets: dict[tuple[str, int], list[Item]] = {}
    for it in items:
        buckets.setdefault((it.group_id, it.posted_at_ms // HOUR_MS), []).append(it)
    kept = {b: heapq.nlargest(MAX_TOP_K, its, key=lambda i: (i.score, i.item_id)) for b, its in buckets.items()}
    windows = {g: group_top([i for (bg, _), its in kept.items() if bg == g for i in its[:k]], k) for g in groups}
    got = top_items([i for g in groups for i in windows[g]], k, "me", groups)
    assert [i.item_id for i in got] == reference(items, "me", groups, k)
