"""The HubSpot adapter against the local stand-in speaking HubSpot's wire shapes: changes read by
cursor across the search cap (and across one instant holding more than a window), each once;
upserts of 100 a request with a 207's refusals kept by email; 429s waited out; v3 webhook
signatures checked (tampered, stale and missing refused)."""
from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import pytest

from channels.crm.hubspot import CrmError, HubSpot
from domain.crm import signature_problem, signature_v3, signing_uri
from stack.standins import hubspot as standin

CAP = 500  # the stand-in's cap, lowered from HubSpot's 10,000 to keep the test quick (same rule)


@pytest.fixture
def crm():
    url, stop = standin.start()
    http = httpx.Client(base_url=url)
    http.post("/_control", json={"search_cap": CAP})
    yield url, http
    http.close()
    stop()


def run(url: str, fn, **kw):
    async def go():
        async with httpx.AsyncClient() as http:
            return await fn(HubSpot(url, standin.TOKEN, http, search_cap=CAP, page=100, **kw))
    return asyncio.run(go())


def crm_users_put(http, emails: list[str], at_ms: int, **props) -> None:
    for i in range(0, len(emails), 2000):
        r = http.post("/_control/contacts", json={"at_ms": at_ms, "contacts": [
            {"email": e, "properties": {"firstname": e.split("@")[0], **props}} for e in emails[i:i + 2000]]})
        assert r.status_code == 200


def read_all(url: str, since: int) -> list:
    async def go(crm):
        return [c async for page in crm.changed_since(since, ["firstname"]) for c in page]
    return run(url, go)


def test_changes_are_read_oldest_first_each_once_across_the_search_cap(crm):
    url, http = crm
    base = 1_764_000_000_000
    emails = [f"p{i:05d}@example.com" for i in range(1_730)]
    for n, i in enumerate(range(0, len(emails), 7)):  # seven contacts share each modification time
        crm_users_put(http, emails[i:i + 7], base + n)
    got = read_all(url, base)
    assert sorted(c.email for c in got) == emails  # every one, once
    assert [c.modified_ms for c in got] == sorted(c.modified_ms for c in got)
    assert len({c.id for c in got}) == len(got)
    assert got[0].properties["firstname"] == "p00000"
    later = read_all(url, base + 200)  # a later cursor: only what changed since
    assert {c.email for c in later} == set(emails[200 * 7:])


def test_one_instant_holding_more_than_a_window_is_swept_by_id(crm):
    url, http = crm
    at = 1_764_000_000_000
    crm_users_put(http, [f"bulk{i:05d}@example.com" for i in range(1_260)], at)  # an import: one instant
    crm_users_put(http, ["after@example.com"], at + 5)
    got = read_all(url, at)
    assert len(got) == 1_261 and len({c.id for c in got}) == 1_261
    assert got[-1].email == "after@example.com"


def test_paging_past_the_cap_is_refused_by_the_standin_as_by_hubspot(crm):
    url, http = crm
    body = {"filterGroups": [], "limit": 100, "after": str(CAP - 50)}
    r = httpx.post(url + "/crm/v3/objects/contacts/search", json=body,
                   headers={"Authorization": f"Bearer {standin.TOKEN}"})
    assert r.status_code == 400 and r.json()["category"] == "VALIDATION_ERROR"
    too_many = {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}] * 7}]}
    r = httpx.post(url + "/crm/v3/objects/contacts/search", json=too_many,
                   headers={"Authorization": f"Bearer {standin.TOKEN}"})
    assert r.status_code == 400 and "at most 6" in r.json()["message"]
    assert httpx.post(url + "/crm/v3/objects/contacts/search", json={}).status_code == 401


def test_upserts_go_100_a_request_and_a_207_keeps_each_refusal_by_email(crm):
    url, http = crm
    records = [{"email": f"u{i}@example.com", "properties": {"leadstream_score": str(i)}} for i in range(249)]
    records.insert(120, {"email": "not-an-address", "properties": {"leadstream_score": "1"}})
    out = run(url, lambda crm: crm.upsert(records))
    assert out.refused.keys() == {"not-an-address"} and "invalid" in out.refused["not-an-address"]
    assert len(out.written) == 249 and out.written[0] == "u0@example.com"
    state = http.get("/_control").json()
    assert state["counts"]["upsert"] == 3 and state["contacts"] == 249  # 250 records: three requests
    u7 = [c for c in http.get("/_control/contacts").json() if c["properties"]["email"] == "u7@example.com"]
    assert u7[0]["properties"]["leadstream_score"] == "7"

    async def wrong_token():  # a request the CRM refuses whole is an error, not retried
        async with httpx.AsyncClient() as h:
            return await HubSpot(url, "not-the-token", h).upsert(records[:3])
    with pytest.raises(CrmError) as err:
        asyncio.run(wrong_token())
    assert err.value.status == 401 and "credentials" in str(err.value)


def test_429s_are_waited_out_and_nothing_is_lost(crm):
    url, http = crm
    http.post("/_control", json={"rate_max": 3, "rate_window_ms": 1000})
    records = [{"email": f"r{i}@example.com", "properties": {"leadstream_status": "engaged"}} for i in range(700)]
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)
        await asyncio.sleep(s)
    crm_client = {}

    async def go(crm):
        crm_client["it"] = crm
        return await crm.upsert(records)
    out = run(url, go, sleep=sleep)
    assert len(out.written) == 700 and not out.refused
    state = http.get("/_control").json()
    assert state["contacts"] == 700 and state["counts"]["429"] >= 1 and crm_client["it"].rate_limited >= 1
    assert waits and all(w >= 1 for w in waits)  # the Retry-After hint, whole seconds


def test_a_webhook_is_checked_by_its_v3_signature_and_its_age(crm):
    url, http = crm
    received: list[tuple[dict, bytes]] = []
    from aiohttp import web

    from stack.standins.threaded import serve_in_thread

    async def hook(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(status=204)
    app = web.Application()
    app.router.add_post("/webhooks/hubspot", hook)
    hook_url, stop = serve_in_thread(app, "127.0.0.1", 0, "hook")
    try:
        target = f"{hook_url}/webhooks/hubspot?portal=4242"
        http.post("/_control", json={"webhook_target": target})
        crm_users_put(http, ["hooked@example.com"], int(time.time() * 1000), jobtitle="Nurse")
        [(headers, body)] = received
    finally:
        stop()
    events = orjson.loads(body)
    assert {e["subscriptionType"] for e in events} == {"contact.creation", "contact.propertyChange"}
    assert all(e["changeSource"] == "CRM" for e in events)
    ts, sig = headers["X-HubSpot-Request-Timestamp"], headers["X-HubSpot-Signature-v3"]
    now = int(time.time() * 1000)
    check = lambda **kw: signature_problem(**{"secret": standin.APP_SECRET, "method": "POST", "uri": target,  # noqa: E731
                                               "body": body, "timestamp_ms": ts, "signature": sig, "now_ms": now, **kw})
    assert check() is None
    assert "does not match" in check(body=body.replace(b"Nurse", b"Nurze"))
    assert "does not match" in check(secret="another-secret")
    assert "older than 5 minutes" in check(now_ms=int(ts) + 5 * 60 * 1000 + 1)
    assert check(now_ms=int(ts) + 5 * 60 * 1000) is None  # five minutes exactly: still fresh
    assert "required" in check(signature=None)
    fresh = str(now)  # re-signed with a new time, it passes: the time is part of what is signed
    assert check(timestamp_ms=fresh) is not None
    assert check(timestamp_ms=fresh, signature=signature_v3(standin.APP_SECRET, "POST", target, body, fresh)) is None


def test_the_signed_uri_decodes_hubspots_list_of_characters():
    assert signing_uri("https://h.example/hook%3Fa=b%2Fc%40d%2a") == "https://h.example/hook?a=b/c@d*"
    assert signing_uri("https://h.example/a%20b%3D") == "https://h.example/a%20b%3D"  # not on the list: kept
