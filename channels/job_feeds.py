"""Fetching partner job feeds over HTTP, with size and time limits and ETag revalidation.

Failures come in two kinds, so the caller knows whether to retry:
FeedUnavailable (connection trouble, timeouts, 5xx, 408, 429) will likely pass by itself;
FeedRejected (other 4xx, too large, not a feed's content type, a bad URL) needs someone to fix it.
"""
from __future__ import annotations

import asyncio
from email.utils import parsedate_to_datetime
from types import TracebackType

import httpx

# Types a feed is served as; an HTML page here is nearly always a login or error page.
FEED_CONTENT_TYPES = ("xml", "json", "text/plain", "application/octet-stream")
MAX_REDIRECTS = 5
USER_AGENT = "leadstream-feed-fetcher/1"


class FeedFetchError(Exception):
    """A feed could not be fetched; `status` is the HTTP status when there was one."""

    def __init__(self, url: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url
        self.status = status


class FeedUnavailable(FeedFetchError):
    """A transient failure: try again later (after `retry_after_s` when the server said)."""

    def __init__(self, url: str, message: str, status: int | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(url, message, status)
        self.retry_after_s = retry_after_s


class FeedRejected(FeedFetchError):
    """A permanent failure until the feed or its settings are fixed: do not retry blindly."""


async def fetch_feed(url: str, timeout_s: float, max_bytes: int) -> bytes:
    """The feed's body, fetched once without revalidation."""
    async with _client(timeout_s) as client:
        body, _ = await _get(client, url, timeout_s, max_bytes, etag=None)
    assert body is not None  # no If-None-Match was sent, so there is no 304
    return body


class FeedFetcher:
    """Fetches feeds through one connection pool and remembers each URL's ETag."""

    def __init__(self, timeout_s: float = 30.0, max_bytes: int = 50 * 1024 * 1024) -> None:
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.etags: dict[str, str] = {}
        self._client: httpx.AsyncClient | None = None

    async def fetch(self, url: str) -> bytes | None:
        """The feed's body, or None when the server says it has not changed since the last fetch."""
        if self._client is None:
            self._client = _client(self.timeout_s)
        body, etag = await _get(self._client, url, self.timeout_s, self.max_bytes,
                                self.etags.get(url))
        if body is not None:
            if etag:
                self.etags[url] = etag
            else:
                self.etags.pop(url, None)
        return body

    def forget(self, url: str) -> None:
        """Drop a URL's ETag: call it when a fetched body could not be processed, so the next
        fetch downloads it again instead of being told 'not modified'."""
        self.etags.pop(url, None)

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> "FeedFetcher":
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()


def _client(timeout_s: float) -> httpx.AsyncClient:
    """A client that follows a few redirects and gives every phase the timeout."""
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), follow_redirects=True,
                             max_redirects=MAX_REDIRECTS, headers={"User-Agent": USER_AGENT})


async def _get(client: httpx.AsyncClient, url: str, timeout_s: float, max_bytes: int,
               etag: str | None) -> tuple[bytes | None, str | None]:
    """(body or None for 304, the response's ETag), or a FeedFetchError."""
    headers = {"If-None-Match": etag} if etag else {}
    try:
        # httpx times each read; a server trickling bytes needs an overall deadline as well.
        async with asyncio.timeout(timeout_s):
            async with client.stream("GET", url, headers=headers) as response:
                if response.status_code == 304 and etag:
                    return None, etag
                _check_status(url, response)
                _check_headers(url, response, max_bytes)
                body = await _read_capped(url, response, max_bytes)
                return body, response.headers.get("ETag")
    except TimeoutError:
        raise FeedUnavailable(url, f"no complete answer within {timeout_s:g} s") from None
    except httpx.TooManyRedirects:
        raise FeedRejected(url, f"more than {MAX_REDIRECTS} redirects") from None
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise FeedRejected(url, f"not a fetchable http(s) URL ({exc})") from None
    except httpx.TimeoutException:
        raise FeedUnavailable(url, f"timed out after {timeout_s:g} s") from None
    except httpx.TransportError as exc:
        raise FeedUnavailable(url, f"connection failed ({type(exc).__name__}: {exc})") from None


def _check_status(url: str, response: httpx.Response) -> None:
    """Raise the failure that an unsuccessful status stands for."""
    status = response.status_code
    if 200 <= status < 300:
        return
    if status in (408, 429) or status >= 500:
        raise FeedUnavailable(url, f"HTTP {status} {response.reason_phrase}, will retry",
                              status=status, retry_after_s=_retry_after(response))
    raise FeedRejected(url, f"HTTP {status} {response.reason_phrase}: check the feed URL and "
                            "the partner's access settings", status=status)


def _check_headers(url: str, response: httpx.Response, max_bytes: int) -> None:
    """Refuse before reading when the headers already say it is not a feed or too big."""
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type and ("html" in content_type
                         or not any(kind in content_type for kind in FEED_CONTENT_TYPES)):
        raise FeedRejected(url, f"content type {content_type!r} is not a feed (XML or JSON)",
                           status=response.status_code)
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise FeedRejected(url, f"feed is {int(length):,} bytes, over the {max_bytes:,} byte limit",
                           status=response.status_code)


async def _read_capped(url: str, response: httpx.Response, max_bytes: int) -> bytes:
    """The body, stopping as soon as it passes max_bytes (decoded, so gzip cannot hide size)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise FeedRejected(url, f"feed is over the {max_bytes:,} byte limit",
                               status=response.status_code)
        chunks.append(chunk)
    return b"".join(chunks)


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (either form), or None."""
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
        date = parsedate_to_datetime(response.headers.get("Date", ""))
    except (TypeError, ValueError, IndexError):
        return None
    # Relative to the server's own Date header, so this needs no clock here.
    return max(0.0, (moment - date).total_seconds())
