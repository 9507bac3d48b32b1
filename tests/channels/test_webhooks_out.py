"""Outbound webhooks over real HTTP against the hook receiver stand-in.

Every test uses endpoint names of its own, so the receiver needs no reset between tests.
`sleep` is a fake that records the backoff instead of waiting, so retries take no time.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import socket
import time

import httpx
import pytest

from channels.webhooks_out import (
    SIGNATURE_HEADER, Delivery, Endpoint, HookPolicy, backoff_s, classify, deliver, deliver_in_order, sign, verify,
)
from stack.standins import hook_receiver

SECRET = hook_receiver.DEFAULT_SECRET
FAST = HookPolicy(attempts=6, base_delay_s=0.5, max_delay_s=30.0, timeout_s=2.0)
_names = itertools.count()


@pytest.fixture(scope="module")
def receiver():
    url, stop = hook_receiver.start(0)
    yield url
    stop()


@pytest.fixture(scope="module")
def admin(receiver):
    with httpx.Client(base_url=receiver) as client:
        yield client


@pytest.fixture
async def client():
    async with httpx.AsyncClient() as c:
        yield c


class Hooks:
    """Endpoints on the receiver with names no other test uses."""

    def __init__(self, base: str, admin: httpx.Client) -> None:
        self.base, self.admin = base, admin

    def endpoint(self, label: str, secret: str = SECRET, **control) -> Endpoint:
        name = f"{label}-{next(_names)}"
        if control or secret != SECRET:
            self.admin.post(f"/control/{name}", json={"secret": secret, **control}).raise_for_status()
        return Endpoint(url=f"{self.base}/hooks/{name}", secret=secret)

    def received(self, endpoint: Endpoint) -> list[dict]:
        return self.admin.get(f"/received/{_name(endpoint)}").json()


def _name(endpoint: Endpoint) -> str:
    return endpoint.url.rsplit("/", 1)[1]


@pytest.fixture
def hooks(receiver, admin) -> Hooks:
    return Hooks(receiver, admin)


class Sleeps:
    """A stand-in for asyncio.sleep that records the delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


def event(event_id: str, lead_id: str = "lead-1") -> bytes:
    return json.dumps({"event_id": event_id, "type": "lead.created", "lead_id": lead_id,
                       "data": {"email": "ana@example.com", "name": "Ana Lima"}}).encode()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- signatures -----------------------------------------------------------------------------

def test_sign_is_the_documented_hmac_of_timestamp_dot_body():
    body = b'{"event_id":"e1"}'
    expected = hmac.new(b"whsec_1", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("whsec_1", body, 1700000000) == f"t=1700000000,v1={expected}"
    # the receiver's own, independently written check agrees
    assert hook_receiver.signature_ok("whsec_1", sign("whsec_1", body, 1700000000), body, 1700000010)


def test_verify_good_tampered_wrong_secret_stale_and_garbage():
    body, t = b'{"event_id":"e1","score":7}', 1_700_000_000
    header = sign("s3cret", body, t)
    assert verify("s3cret", header, body, now_s=t)
    assert verify("s3cret", header, body, now_s=t + 300)  # at the edge of the tolerance
    assert not verify("s3cret", header, b'{"event_id":"e1","score":8}', now_s=t)  # tampered body
    assert not verify("other", header, body, now_s=t)  # wrong secret
    assert not verify("s3cret", header, body, now_s=t + 301)  # stale: a replay
    assert not verify("s3cret", header, body, now_s=t - 301)  # from the future
    assert verify("s3cret", header, body, now_s=t + 301, tolerance_s=600)
    # a timestamp moved forward to pass the freshness check no longer matches the MAC
    assert not verify("s3cret", header.replace(f"t={t}", f"t={t + 1000}"), body, now_s=t + 1000)
    for bad in ("", "garbage", f"t={t}", "v1=" + "0" * 64, f"t=soon,v1={'0' * 64}",
                f"t={t},t={t},{header.split(',')[1]}"):
        assert not verify("s3cret", bad, body, now_s=t), bad


def test_verify_accepts_any_of_several_v1_values_during_key_rotation():
    body, t = b'{"event_id":"e2"}', 1_700_000_000
    new_mac = sign("new-key", body, t).split(",v1=")[1]
    header = f"{sign('old-key', body, t)},v1={new_mac}"
    assert verify("old-key", header, body, now_s=t)  # tenant not yet rotated
    assert verify("new-key", header, body, now_s=t)  # tenant already rotated
    assert not verify("third-key", header, body, now_s=t)
    assert verify("new-key", f"t={t}, v0=ignored, v1={new_mac}", body, now_s=t)  # unknown schemes skipped


# ---- classification and backoff -------------------------------------------------------------

@pytest.mark.parametrize("status, error, verdict", [
    (200, None, "ok"), (202, None, "ok"), (204, None, "ok"),
    (500, None, "transient"), (502, None, "transient"), (503, None, "transient"),
    (408, None, "transient"), (429, None, "transient"),
    (400, None, "permanent"), (401, None, "permanent"), (404, None, "permanent"),
    (410, None, "permanent"), (422, None, "permanent"), (301, None, "permanent"),
    (None, httpx.ConnectTimeout("connect"), "transient"), (None, httpx.ReadTimeout("read"), "transient"),
    (None, httpx.ConnectError("refused"), "transient"), (None, httpx.RemoteProtocolError("eof"), "transient"),
    (None, TimeoutError(), "transient"),
    (None, httpx.UnsupportedProtocol("ftp"), "permanent"), (None, httpx.InvalidURL("bad"), "permanent"),
])
def test_classify(status, error, verdict):
    assert classify(status, error) == verdict


def test_backoff_doubles_is_capped_and_jitter_is_deterministic_per_event():
    policy = HookPolicy(base_delay_s=0.5, max_delay_s=4.0)
    delays = [backoff_s(policy, r, "evt-1") for r in range(1, 8)]
    assert delays == [backoff_s(policy, r, "evt-1") for r in range(1, 8)]  # no randomness
    for r, d in enumerate(delays, start=1):
        nominal = min(4.0, 0.5 * 2 ** (r - 1))
        assert nominal / 2 <= d <= nominal
    assert delays[0] < delays[1] < delays[2] < delays[3]  # growing until the cap
    others = [backoff_s(policy, 1, f"evt-{i}") for i in range(50)]
    assert len(set(others)) == 50  # different events spread out after a shared outage


# ---- one event ------------------------------------------------------------------------------

async def test_delivered_first_try_with_headers_and_a_signature_the_receiver_verified(client, hooks):
    primary, failover, sleeps = hooks.endpoint("p"), hooks.endpoint("f"), Sleeps()
    body = event("evt-100")
    before = time.time()
    result = await deliver(client, primary, failover, "evt-100", body, FAST, sleep=sleeps)

    assert result == Delivery("evt-100", "delivered", primary.url, 1, "")
    [got] = hooks.received(primary)
    assert got["signature_ok"] and got["status"] == 200
    assert got["event_id"] == "evt-100" and got["attempt"] == 1
    assert got["body"] == json.loads(body)
    assert got["content_type"] == "application/json" and got["user_agent"] == "leadstream-webhooks/1"
    assert before - 1 <= got["received_at"] <= time.time() + 1
    assert hooks.received(failover) == [] and sleeps.delays == []


async def test_every_request_carries_the_event_id_attempt_and_a_fresh_signature():
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500 if len(seen) < 3 else 200)

    clock = iter([1_700_000_000.0 + 10 * i for i in range(20)])
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as mock:
        result = await deliver(mock, Endpoint("https://a.example/h", "ka"), Endpoint("https://b.example/h", "kb"),
                               "evt-h", b'{"x":1}', FAST, now_s=lambda: next(clock), sleep=Sleeps())
    assert result.status == "delivered" and result.endpoint == "https://a.example/h" and result.attempts == 3
    assert [r.url.host for r in seen] == ["a.example", "b.example", "a.example"]
    assert [r.headers["X-Leadstream-Attempt"] for r in seen] == ["1", "2", "3"]
    assert {r.headers["X-Leadstream-Event-Id"] for r in seen} == {"evt-h"}
    for r, key in zip(seen, ["ka", "kb", "ka"]):  # each endpoint's own secret, a new t each time
        t = int(r.headers[SIGNATURE_HEADER].split(",")[0][2:])
        assert verify(key, r.headers[SIGNATURE_HEADER], r.content, now_s=t)
    assert len({r.headers[SIGNATURE_HEADER] for r in seen}) == 3


async def test_each_endpoint_is_signed_with_its_own_secret_and_a_401_goes_to_failover(client, hooks):
    primary = Endpoint(hooks.endpoint("p").url, "rotated-away")  # the receiver expects hook-secret
    failover = hooks.endpoint("f", secret="failover-secret")
    sleeps = Sleeps()
    result = await deliver(client, primary, failover, "evt-101", event("evt-101"), FAST, sleep=sleeps)

    assert result.status == "delivered" and result.endpoint == failover.url and result.attempts == 2
    [rejected] = hooks.received(primary)
    assert not rejected["signature_ok"] and rejected["status"] == 401
    [accepted] = hooks.received(failover)
    assert accepted["signature_ok"] and accepted["attempt"] == 2
    assert sleeps.delays == []


async def test_primary_500_failover_gets_it(client, hooks):
    primary, failover = hooks.endpoint("p", mode="fail"), hooks.endpoint("f")
    result = await deliver(client, primary, failover, "evt-102", event("evt-102"), FAST, sleep=Sleeps())

    assert result == Delivery("evt-102", "delivered", failover.url, 2, "")
    assert [r["status"] for r in hooks.received(primary)] == [500]
    assert [(r["event_id"], r["attempt"], r["signature_ok"]) for r in hooks.received(failover)] == [
        ("evt-102", 2, True)]


async def test_primary_refusing_connections_failover_gets_it(client, hooks):
    primary = Endpoint(f"http://127.0.0.1:{closed_port()}/hooks/x", SECRET)
    failover = hooks.endpoint("f")
    result = await deliver(client, primary, failover, "evt-103", event("evt-103"), FAST, sleep=Sleeps())
    assert result.status == "delivered" and result.endpoint == failover.url and result.attempts == 2


async def test_primary_failing_twice_then_ok_without_failover_backs_off_growing(client, hooks):
    primary, sleeps = hooks.endpoint("p", mode="fail", fail_next=2), Sleeps()
    result = await deliver(client, primary, None, "evt-104", event("evt-104"), FAST, sleep=sleeps)

    assert result == Delivery("evt-104", "delivered", primary.url, 3, "")
    assert [(r["attempt"], r["status"]) for r in hooks.received(primary)] == [(1, 500), (2, 500), (3, 200)]
    assert sleeps.delays == [backoff_s(FAST, 1, "evt-104"), backoff_s(FAST, 2, "evt-104")]
    assert 0.25 <= sleeps.delays[0] <= 0.5 < sleeps.delays[1] <= 1.0


async def test_both_down_for_every_round_is_dead_with_the_last_error(client, hooks):
    policy = HookPolicy(attempts=3, base_delay_s=0.5, max_delay_s=30.0, timeout_s=2.0)
    primary, failover, sleeps = hooks.endpoint("p", mode="fail"), hooks.endpoint("f", mode="fail"), Sleeps()
    result = await deliver(client, primary, failover, "evt-105", event("evt-105"), policy, sleep=sleeps)

    assert result.status == "dead" and result.endpoint == "" and result.attempts == 6
    assert result.last_error.startswith(f"{failover.url}: HTTP 500")
    assert len(hooks.received(primary)) == 3 and len(hooks.received(failover)) == 3
    assert len(sleeps.delays) == 2 and sleeps.delays[0] < sleeps.delays[1]  # none after the last round


async def test_gone_on_both_is_dead_at_once(client, hooks):
    primary, failover, sleeps = hooks.endpoint("p", mode="gone"), hooks.endpoint("f", mode="gone"), Sleeps()
    result = await deliver(client, primary, failover, "evt-106", event("evt-106"), FAST, sleep=sleeps)

    assert result.status == "dead" and result.attempts == 2 and "HTTP 410" in result.last_error
    assert sleeps.delays == []


async def test_a_gone_endpoint_is_not_asked_again_for_that_event(client, hooks):
    primary, failover = hooks.endpoint("p", mode="gone"), hooks.endpoint("f", mode="fail", fail_next=1)
    result = await deliver(client, primary, failover, "evt-107", event("evt-107"), FAST, sleep=Sleeps())

    assert result.status == "delivered" and result.endpoint == failover.url and result.attempts == 3
    assert len(hooks.received(primary)) == 1
    assert [r["attempt"] for r in hooks.received(failover)] == [2, 3]


async def test_429_retry_after_is_honoured_within_max_delay(client, hooks):
    policy = HookPolicy(attempts=4, base_delay_s=0.01, max_delay_s=30.0, timeout_s=2.0)
    primary, sleeps = hooks.endpoint("p", mode="throttle", fail_next=1), Sleeps()
    result = await deliver(client, primary, None, "evt-108", event("evt-108"), policy, sleep=sleeps)
    assert result.status == "delivered" and result.attempts == 2
    assert sleeps.delays == [1.0]  # the receiver's Retry-After: 1, not the 0.01 s backoff

    capped = HookPolicy(attempts=4, base_delay_s=0.01, max_delay_s=2.0, timeout_s=2.0)
    slow_down, sleeps = hooks.endpoint("p", mode="throttle", fail_next=1, retry_after_s=120), Sleeps()
    result = await deliver(client, slow_down, None, "evt-109", event("evt-109"), capped, sleep=sleeps)
    assert result.status == "delivered" and sleeps.delays == [2.0]


async def test_timeout_is_transient_and_the_retry_carries_the_same_event_id(client, hooks):
    policy = HookPolicy(attempts=3, base_delay_s=0.5, max_delay_s=30.0, timeout_s=0.2)
    primary, sleeps = hooks.endpoint("p", mode="slow", delay_s=1.0, fail_next=1), Sleeps()
    result = await deliver(client, primary, None, "evt-110", event("evt-110"), policy, sleep=sleeps)

    assert result == Delivery("evt-110", "delivered", primary.url, 2, "")
    assert len(sleeps.delays) == 1
    # the tenant got it twice (the first answer came too late for us): same id, so it can drop one
    got = hooks.received(primary)
    assert [(r["event_id"], r["attempt"]) for r in got] == [("evt-110", 1), ("evt-110", 2)]
    assert got[0]["body"] == got[1]["body"]

    always_slow = hooks.endpoint("p", mode="slow", delay_s=1.0)
    result = await deliver(client, always_slow, None, "evt-111", event("evt-111"),
                           HookPolicy(attempts=1, timeout_s=0.2), sleep=Sleeps())
    assert result.status == "dead" and result.attempts == 1 and "Timeout" in result.last_error


async def test_a_stale_clock_makes_the_receiver_refuse_and_that_is_permanent(client, hooks):
    primary, sleeps = hooks.endpoint("p"), Sleeps()
    result = await deliver(client, primary, None, "evt-112", event("evt-112"), FAST,
                           now_s=lambda: time.time() - 3600, sleep=sleeps)
    assert result.status == "dead" and result.attempts == 1 and "HTTP 401" in result.last_error
    assert sleeps.delays == [] and not hooks.received(primary)[0]["signature_ok"]


async def test_receiver_refuses_unsigned_and_non_json(client, hooks):
    endpoint = hooks.endpoint("p")
    unsigned = await client.post(endpoint.url, content=b"{}", headers={"X-Leadstream-Event-Id": "e"})
    t = int(time.time())
    not_json = await client.post(endpoint.url, content=b"nope", headers={SIGNATURE_HEADER: sign(SECRET, b"nope", t)})
    assert (unsigned.status_code, not_json.status_code) == (401, 400)
    assert [(r["signature_ok"], r["status"]) for r in hooks.received(endpoint)] == [(False, 401), (True, 400)]


# ---- many events, in order per lead ---------------------------------------------------------

async def test_in_order_per_lead_while_another_lead_is_not_held_back(client, hooks, receiver):
    primary = hooks.endpoint("p", mode="fail", fail_next=1)  # whichever event arrives first gets a 500
    items = [(lead, f"{lead}{i}", event(f"{lead}{i}", lead)) for i in (1, 2, 3) for lead in ("A", "B")]
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        # hold the failed event's backoff until the other lead is through (or 5 s pass):
        # only possible if the other lead is not queued behind it
        delays.append(delay)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            got = (await client.get(f"{receiver}/received/{_name(primary)}")).json()
            if len(got) >= 4:
                return
            await asyncio.sleep(0.01)

    results = await deliver_in_order(client, primary, None, items, FAST, sleep=sleep)

    assert [r.event_id for r in results] == [e for _, e, _ in items]  # input order
    assert all(r.status == "delivered" for r in results) and len(delays) == 1
    got = [(r["event_id"], r["status"]) for r in hooks.received(primary)]
    failed_id = got[0][0]
    assert got[0][1] == 500 and failed_id.endswith("1")  # the first event of its lead
    slow, fast = failed_id[0], "B" if failed_id[0] == "A" else "A"
    assert [e for e, _ in got if e[0] == slow] == [f"{slow}1", f"{slow}1", f"{slow}2", f"{slow}3"]
    assert [e for e, _ in got if e[0] == fast] == [f"{fast}1", f"{fast}2", f"{fast}3"]
    retry = [i for i, (e, _) in enumerate(got) if e == failed_id][1]
    assert max(i for i, (e, _) in enumerate(got) if e[0] == fast) < retry  # not held back
    assert [r.attempts for r in results if r.event_id == failed_id] == [2]


async def test_in_order_a_dead_event_does_not_stop_its_lead_and_concurrency_bounds_leads(client, hooks):
    primary = hooks.endpoint("p", mode="gone", fail_next=1)
    items = [("A", "a1", event("a1", "A")), ("B", "b1", event("b1", "B")), ("A", "a2", event("a2", "A"))]
    results = await deliver_in_order(client, primary, None, items, FAST, concurrency=1, sleep=Sleeps())

    assert [(r.event_id, r.status) for r in results] == [("a1", "dead"), ("b1", "delivered"), ("a2", "delivered")]
    # one lead at a time: all of A (in order), then B
    assert [(r["event_id"], r["status"]) for r in hooks.received(primary)] == [
        ("a1", 410), ("a2", 200), ("b1", 200)]


async def test_in_order_with_nothing_to_send(client, hooks):
    assert await deliver_in_order(client, hooks.endpoint("p"), None, [], FAST) == []
