"""Token buckets: the burst goes at once, then the rate; a refusal says how long to wait; one
caller's flood does not touch another's bucket; the number of buckets kept is bounded."""
import pytest

from domain.rate_limit import Limiter, retry_after


def test_a_burst_goes_then_the_rate_and_a_refusal_says_when():
    lim = Limiter(rate=10, burst=20)
    assert [lim.wait("k", 100.0) for _ in range(20)] == [0.0] * 20
    wait = lim.wait("k", 100.0)
    assert wait == pytest.approx(0.1)
    assert lim.wait("k", 100.05) > 0  # half a token: still too early
    assert lim.wait("k", 100.1) == 0.0  # one token back after 1/rate seconds
    assert retry_after(wait) == "1" and retry_after(2.01) == "3"


def test_callers_are_apart_and_a_long_pause_refills_only_to_the_burst():
    lim = Limiter(rate=1, burst=2)
    assert [lim.wait("a", 0.0) for _ in range(3)] == [0.0, 0.0, 1.0]
    assert lim.wait("b", 0.0) == 0.0
    assert [lim.wait("a", 1000.0) for _ in range(3)][:2] == [0.0, 0.0]  # two, not a thousand


def test_buckets_are_bounded_dropping_the_longest_idle():
    lim = Limiter(rate=1, burst=1, max_callers=3)
    for i, caller in enumerate(["a", "b", "c"]):
        lim.wait(caller, float(i))
    lim.wait("a", 3.0)  # a is seen again: b is now the longest idle
    lim.wait("d", 3.0)
    assert set(lim._buckets) == {"c", "a", "d"}


def test_a_limiter_without_a_rate_is_refused():
    with pytest.raises(ValueError):
        Limiter(rate=0, burst=1)
