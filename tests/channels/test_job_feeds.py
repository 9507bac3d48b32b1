"""Fetching feeds from the local feed stand-in: bodies, ETags, and every way a feed fails."""
from __future__ import annotations

import httpx
import pytest

from channels.job_feeds import FeedFetcher, FeedRejected, FeedUnavailable, fetch_feed
from domain.feeds import FeedError, diff_feed, parse_feed
from stack.standins.job_feed import start_server

NOW = "2026-01-01T00:00:00Z"
MB = 1024 * 1024


@pytest.fixture
def feed_server():
    """A fresh stand-in per test, so controls never leak between tests."""
    url, stop = start_server(port=0)
    yield url
    stop()


def control(base: str, **change) -> dict:
    """Change the stand-in's behaviour."""
    response = httpx.post(f"{base}/control", json=change, timeout=5)
    response.raise_for_status()
    return response.json()


def feed_url(base: str, fmt: str = "xml", n: int = 200, **params) -> str:
    """The URL of the test tenant's feed."""
    query = "&".join([f"n={n}", f"now={NOW}"] + [f"{k}={v}" for k, v in params.items()])
    return f"{base}/feeds/acme/partner.{fmt}?{query}"


@pytest.mark.parametrize("fmt", ["xml", "json"])
async def test_fetch_and_parse_a_realistic_feed(feed_server, fmt):
    body = await fetch_feed(feed_url(feed_server, fmt, n=3000), timeout_s=10, max_bytes=20 * MB)
    parsed = parse_feed(body, fmt, "acme", "partner")
    assert len(parsed.jobs) == 3000 and parsed.problems == []
    job = parsed.jobs[0]
    assert job.key == "acme:partner:partner-000000"
    assert job.url.startswith("https://") and job.lat is not None and 10 <= job.cpc_cents <= 300
    assert {j.city for j in parsed.jobs} >= {"New York", "Los Angeles", "Phoenix", "Seattle"}
    assert {j.category for j in parsed.jobs} >= {"Nursing", "Driving", "Technology", "Hospitality"}
    newest, oldest = max(j.posted_at_ms for j in parsed.jobs), min(j.posted_at_ms for j in parsed.jobs)
    assert newest <= 1_767_225_600_000 and newest - oldest <= 30 * 86_400_000


async def test_same_seed_and_now_give_the_same_feed_byte_for_byte(feed_server):
    other, stop = start_server(port=0)
    try:
        first = await fetch_feed(feed_url(feed_server), 10, MB)
        second = await fetch_feed(feed_url(other), 10, MB)
    finally:
        stop()
    assert first == second


async def test_etag_gives_not_modified_until_the_feed_changes(feed_server):
    url = feed_url(feed_server, "json")
    async with FeedFetcher(timeout_s=5, max_bytes=MB) as fetcher:
        first = await fetcher.fetch(url)
        assert first and fetcher.etags[url].startswith('"')
        assert await fetcher.fetch(url) is None  # 304: nothing to parse, nothing to diff
        control(feed_server, expire=["partner-000003"])
        changed = await fetcher.fetch(url)
        assert changed and changed != first
        fetcher.forget(url)
        assert await fetcher.fetch(url) == changed  # no ETag sent: the full body again


async def test_expire_control_removes_jobs_and_the_diff_expires_them(feed_server):
    url = feed_url(feed_server)
    before = parse_feed(await fetch_feed(url, 10, MB), "xml", "acme", "partner").jobs
    known = {j.key: j for j in before}
    control(feed_server, expire=["partner-000007", "partner-000042"])
    after = parse_feed(await fetch_feed(url, 10, MB), "xml", "acme", "partner").jobs
    assert len(after) == len(before) - 2
    events = diff_feed(known, after, now_ms=1_767_225_600_000)
    assert [(kind, job.job_id) for kind, job in events] == [
        ("job.expired", "partner-000007"), ("job.expired", "partner-000042")]


async def test_down_feed_is_unavailable_with_its_retry_after(feed_server):
    control(feed_server, mode="down")
    with pytest.raises(FeedUnavailable, match="503") as caught:
        await fetch_feed(feed_url(feed_server), 5, MB)
    assert caught.value.status == 503 and caught.value.retry_after_s == 5


async def test_throttled_feed_is_unavailable_not_rejected(feed_server):
    control(feed_server, mode="throttled")
    with pytest.raises(FeedUnavailable, match="429") as caught:
        await fetch_feed(feed_url(feed_server), 5, MB)
    assert caught.value.retry_after_s == 30


async def test_slow_feed_times_out_as_unavailable(feed_server):
    control(feed_server, mode="slow", delay=5)
    with pytest.raises(FeedUnavailable, match="0.3 s"):
        await fetch_feed(feed_url(feed_server), timeout_s=0.3, max_bytes=MB)


async def test_refused_connection_is_unavailable():
    url, stop = start_server(port=0)
    stop()  # nothing listens on that port any more
    with pytest.raises(FeedUnavailable, match="connection failed"):
        await fetch_feed(feed_url(url), 2, MB)


@pytest.mark.parametrize("fmt", ["xml", "json"])
async def test_malformed_feed_fetches_but_does_not_parse(feed_server, fmt):
    control(feed_server, mode="malformed")
    body = await fetch_feed(feed_url(feed_server, fmt), 5, MB)
    with pytest.raises(FeedError):
        parse_feed(body, fmt, "acme", "partner")


async def test_empty_feed_does_not_parse(feed_server):
    control(feed_server, mode="empty")
    body = await fetch_feed(feed_url(feed_server), 5, MB)
    with pytest.raises(FeedError, match="lists no jobs"):
        parse_feed(body, "xml", "acme", "partner")


async def test_too_large_feed_is_rejected_from_its_content_length(feed_server):
    with pytest.raises(FeedRejected, match="over the 50,000 byte limit"):
        await fetch_feed(feed_url(feed_server, n=1000), 5, max_bytes=50_000)


async def test_too_large_gzipped_feed_is_rejected_by_its_unpacked_size(feed_server):
    # Compressed it is far below the limit, so only counting the unpacked bytes catches it.
    with pytest.raises(FeedRejected, match="over the 300,000 byte limit"):
        await fetch_feed(feed_url(feed_server, n=1000, gzip=1), 5, max_bytes=300_000)
    body = await fetch_feed(feed_url(feed_server, n=100, gzip=1), 5, max_bytes=300_000)
    assert len(parse_feed(body, "xml", "acme", "partner").jobs) == 100


async def test_login_page_instead_of_a_feed_is_rejected(feed_server):
    control(feed_server, mode="html")
    with pytest.raises(FeedRejected, match="'text/html' is not a feed"):
        await fetch_feed(feed_url(feed_server), 5, MB)


async def test_missing_feed_is_rejected(feed_server):
    with pytest.raises(FeedRejected, match="HTTP 404") as caught:
        await fetch_feed(f"{feed_server}/feeds/acme/partner.csv", 5, MB)
    assert caught.value.status == 404


async def test_a_url_that_is_not_http_is_rejected():
    with pytest.raises(FeedRejected, match="not a fetchable"):
        await fetch_feed("ftp://127.0.0.1/feed.xml", 5, MB)


def test_bad_control_is_refused(feed_server):
    response = httpx.post(f"{feed_server}/control", json={"mode": "sideways"}, timeout=5)
    assert response.status_code == 400 and "mode must be one of" in response.text
