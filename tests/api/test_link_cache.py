"""The tracking front's link cache: bounded by count and by idle time, misses kept briefly."""
from __future__ import annotations

from api.tracking import MISSING, LinkCache


def test_a_record_unused_for_the_idle_time_is_gone_and_use_keeps_it():
    c = LinkCache(size=100, idle_s=600)
    c.put("a", b'{"code":"a"}', now=0)
    c.put("b", b'{"code":"b"}', now=0)
    assert c.get("a", now=500) == b'{"code":"a"}'  # used at 500: kept until 1100
    assert c.get("b", now=601) is MISSING  # unused since 0
    assert c.get("a", now=1000) == b'{"code":"a"}'
    assert c.get("a", now=1601) is MISSING


def test_putting_drops_the_records_idle_too_long_so_memory_follows_the_last_minutes():
    c = LinkCache(size=100_000, idle_s=600)
    for i in range(50):
        c.put(f"old{i}", b"{}", now=0)
    c.put("new", b"{}", now=700)
    assert len(c) == 1 and c.get("new", now=700) == b"{}"


def test_at_most_size_records_the_least_recently_used_out():
    c = LinkCache(size=3, idle_s=600)
    for code in "abc":
        c.put(code, b"{}", now=0)
    c.get("a", now=1)
    c.put("d", b"{}", now=2)
    assert len(c) == 3 and c.get("b", now=3) is MISSING
    assert all(c.get(code, now=3) == b"{}" for code in "acd")


def test_an_unknown_code_is_remembered_briefly_then_asked_again():
    c = LinkCache(size=10, idle_s=600, miss_ttl_s=30)
    c.put("x", None, now=0)
    assert c.get("x", now=10) is None  # known to be unknown
    assert c.get("x", now=31) is MISSING  # it may have been written since: look again
