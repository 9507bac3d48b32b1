"""Outbound webhooks: push our events to a tenant's HTTP endpoint, signed, retried, in order.

Every request carries the event id (so the tenant can drop the duplicates that at-least-once
delivery brings), the attempt number, and a signature the tenant checks with the secret it
shares with us:

    X-Leadstream-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, b"<t>." + body)>

The timestamp is inside the HMAC, so a captured request cannot be replayed after the
receiver's tolerance. While a tenant rotates its secret a header may carry several v1=
values; `verify` accepts the request when any of them matches.

Failure policy (see `classify`): 2xx delivered; timeouts, connection errors, 5xx, 408 and 429
transient (try the other endpoint now, this one again next round); any other answer
(4xx such as 401/404/410, and 3xx, which we never follow) permanent for that endpoint, for this
event. A round is primary, then failover; between rounds we back off exponentially with a
jitter derived from the event id (the same event always waits the same, different events
spread out), or longer when a 429/503 said Retry-After, never longer than `max_delay_s`.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Awaitable, Callable, Literal, Sequence

import httpx

from channels.base import MAX_ERROR_CHARS, map_bounded, retry_after_seconds

SIGNATURE_HEADER = "X-Leadstream-Signature"
EVENT_ID_HEADER = "X-Leadstream-Event-Id"
ATTEMPT_HEADER = "X-Leadstream-Attempt"
USER_AGENT = "leadstream-webhooks/1"
_ERROR_BODY_CHARS = 200  # how much of a failing answer's body goes into last_error
_READ_LIMIT = 64 * 1024  # read at most this much of any answer: the tenant's server is not ours

Verdict = Literal["ok", "transient", "permanent"]
Sleep = Callable[[float], Awaitable[object]]


@dataclass(frozen=True)
class Endpoint:
    """One URL of a tenant and the secret we sign requests to it with."""

    url: str
    secret: str  # HMAC key shared with the tenant


@dataclass(frozen=True)
class HookPolicy:
    """How hard to try one event before dead-lettering it."""

    attempts: int = 6  # rounds (each round: primary, then failover) before dead-letter
    base_delay_s: float = 0.5  # backoff between rounds: base * 2**(round-1), capped, jittered
    max_delay_s: float = 30.0
    timeout_s: float = 5.0  # per request, all of it: connect, send, answer


@dataclass(frozen=True)
class Delivery:
    """What became of one event."""

    event_id: str
    status: Literal["delivered", "dead"]
    endpoint: str  # url that accepted it, or "" if dead
    attempts: int  # HTTP requests made
    last_error: str  # "" if delivered


# ---- signatures -----------------------------------------------------------------------------

def _mac(secret: str, body: bytes, t: int) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, t: int) -> str:
    """The SIGNATURE_HEADER value for `body` sent at unix time `t`."""
    return f"t={t},v1={_mac(secret, body, t)}"


def verify(secret: str, header: str, body: bytes, now_s: int, tolerance_s: int = 300) -> bool:
    """True when `header` signs exactly `body` with `secret` within `tolerance_s` of `now_s`.

    For receivers. Any of several v1= values may match (key rotation); unknown schemes are
    ignored; a header without exactly one integer t= is refused. Comparison is constant-time.
    """
    stamps: list[str] = []
    macs: list[str] = []
    for part in (header or "").split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            stamps.append(value.strip())
        elif key == "v1":
            macs.append(value.strip())
    if len(stamps) != 1 or not macs:
        return False
    try:
        t = int(stamps[0])
    except ValueError:
        return False
    if abs(int(now_s) - t) > tolerance_s:
        return False
    expected = _mac(secret, body, t).encode()
    ok = False
    for mac in macs:  # no early exit: how many candidates matched must not show in the timing
        ok |= hmac.compare_digest(expected, mac.encode("ascii", "replace"))
    return ok


# ---- one event --------------------------------------------------------------------------------

def classify(status: int | None, error: Exception | None) -> Verdict:
    """ok = 2xx; transient = timeout, connection error, 5xx, 408, 429; permanent = the rest.

    "The rest" is every other 4xx, any 1xx/3xx (redirects are not followed: the tenant must
    register the final URL), and an endpoint URL that cannot work (invalid, unsupported scheme).
    """
    if error is not None:
        if isinstance(error, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
            return "permanent"
        return "transient"  # timeout, refused, reset, garbled answer: may work next time
    if status is None:
        return "transient"
    if 200 <= status < 300:
        return "ok"
    if status in (408, 429) or status >= 500:
        return "transient"
    return "permanent"


def backoff_s(policy: HookPolicy, round_no: int, event_id: str) -> float:
    """The wait after failed round `round_no` (1-based): base * 2**(round-1), capped, then
    jittered into [half, all] of that by a hash of the event id and round (no randomness)."""
    nominal = min(policy.max_delay_s, policy.base_delay_s * 2 ** (round_no - 1))
    digest = hashlib.sha256(f"{event_id}:{round_no}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2 ** 64
    return nominal * (0.5 + 0.5 * fraction)


@dataclass(frozen=True)
class _Answer:
    verdict: Verdict
    error: str = ""
    retry_after_s: float | None = None


async def _post(client: httpx.AsyncClient, endpoint: Endpoint, event_id: str, body: bytes,
                attempt: int, policy: HookPolicy, now_s: Callable[[], float]) -> _Answer:
    """One signed request; whatever happens becomes an _Answer (bugs still raise)."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Accept-Encoding": "identity",  # answers are only read for error detail: keep them plain
        EVENT_ID_HEADER: event_id,
        ATTEMPT_HEADER: str(attempt),
        SIGNATURE_HEADER: sign(endpoint.secret, body, int(now_s())),  # fresh t on every request
    }
    try:
        # httpx's timeout bounds each phase; asyncio's bounds the whole request, so a server
        # trickling its answer a byte at a time cannot hold an event (and its lead) forever.
        async with asyncio.timeout(policy.timeout_s):
            async with client.stream("POST", endpoint.url, content=body, headers=headers,
                                     timeout=policy.timeout_s) as response:
                status = response.status_code
                detail = await _read_some(response)
                retry_header = response.headers.get("Retry-After")
    except (httpx.HTTPError, httpx.InvalidURL, OSError, TimeoutError) as exc:
        timed_out = isinstance(exc, (TimeoutError, httpx.TimeoutException))
        text = str(exc) or (f"no answer within {policy.timeout_s:g}s" if timed_out else "")
        return _Answer(classify(None, exc), f"{endpoint.url}: {type(exc).__name__}: {text}"[:MAX_ERROR_CHARS])
    verdict = classify(status, None)
    if verdict == "ok":
        return _Answer("ok")
    wait = retry_after_seconds(retry_header, now_s()) if status in (429, 503) else None
    detail = " ".join(detail.split())[:_ERROR_BODY_CHARS]
    return _Answer(verdict, f"{endpoint.url}: HTTP {status} {detail}".strip()[:MAX_ERROR_CHARS], wait)


async def _read_some(response: httpx.Response) -> str:
    """Up to _READ_LIMIT bytes of the answer, as text; the rest is not read."""
    if response.is_stream_consumed:  # a transport that hands over answers already read
        return response.content[:_READ_LIMIT].decode("utf-8", "replace")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= _READ_LIMIT:
            break
    return b"".join(chunks)[:_READ_LIMIT].decode("utf-8", "replace")


async def deliver(client: httpx.AsyncClient, primary: Endpoint, failover: Endpoint | None, event_id: str,
                  body: bytes, policy: HookPolicy, now_s: Callable[[], float] = time.time,
                  sleep: Sleep = asyncio.sleep) -> Delivery:
    """Deliver one event: rounds of primary-then-failover until one answers 2xx.

    A permanent answer takes that endpoint out for this event; with both out the event is dead
    at once. After `policy.attempts` rounds it is dead too. Between rounds: `backoff_s`, or the
    Retry-After of a 429/503 if longer, capped at `max_delay_s`.
    """
    live = [primary] if failover is None else [primary, failover]
    requests = 0
    last_error = ""
    for round_no in range(1, max(1, policy.attempts) + 1):
        waits: list[float] = []
        for endpoint in list(live):
            requests += 1
            answer = await _post(client, endpoint, event_id, body, requests, policy, now_s)
            if answer.verdict == "ok":
                return Delivery(event_id, "delivered", endpoint.url, requests, "")
            last_error = answer.error
            if answer.verdict == "permanent":
                live.remove(endpoint)
            elif answer.retry_after_s is not None:
                waits.append(answer.retry_after_s)
        if not live or round_no >= policy.attempts:
            break
        delay = backoff_s(policy, round_no, event_id)
        if waits:
            delay = max(delay, min(max(waits), policy.max_delay_s))
        await sleep(delay)
    return Delivery(event_id, "dead", "", requests, last_error)


# ---- many events ------------------------------------------------------------------------------

async def deliver_in_order(client: httpx.AsyncClient, primary: Endpoint, failover: Endpoint | None,
                           items: Sequence[tuple[str, str, bytes]], policy: HookPolicy,
                           concurrency: int = 32, **kw) -> list[Delivery]:
    """Deliver (lead_id, event_id, body) items; one Delivery per item, in input order.

    One lead's events go strictly one after another, in the order given: the next starts only
    once the previous is delivered or dead (a dead event does not stop the ones after it).
    Different leads go concurrently, at most `concurrency` leads at once. `kw` goes to `deliver`
    (now_s, sleep).
    """
    chains: OrderedDict[str, list[int]] = OrderedDict()
    for index, (lead_id, _, _) in enumerate(items):
        chains.setdefault(lead_id, []).append(index)
    results: list[Delivery | None] = [None] * len(items)

    async def run(indexes: list[int]) -> None:
        for index in indexes:
            _, event_id, body = items[index]
            results[index] = await deliver(client, primary, failover, event_id, body, policy, **kw)

    await map_bounded(list(chains.values()), run, max(1, concurrency))
    return results  # type: ignore[return-value]  # every index belongs to exactly one chain
