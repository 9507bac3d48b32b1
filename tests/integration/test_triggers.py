"""Behaviour triggers end to end on a private platform: product events through the API (and the
queue path), the trigger engine, the sender, and the mail at the provider's stand-in.

Each condition kind, absence with a controllable clock (Redis's ls:clockskew moves the
engine's timers forward), cooldown, caps, quiet hours, the goal exit, unknown people, a worker
SIGKILLed with timers pending (none lost, none doubled), and replayed or redelivered events
(nothing sent again)."""
from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from datetime import datetime, timezone

import httpx
import orjson
import pytest

from domain.config_changes import Change
from domain.config_entities import Ref
from domain.identity import new_event_id
from domain.sealing import is_sealed
from projections.redis_engagement import EngagementStore
from projections.redis_keys import INTACT
from schemas.codec import default_codec
from stack.isolated import IsolatedPlatform
from streams.topic_tail import TopicTail
from tests.integration.conftest import lead_id as lead_id_of, read_dead_letters, records_holding, wait_for
from tests.integration.test_sealed_lead_events import opened
from tests.integration.test_sending import submit

CODEC = default_codec()
AGENTS = ("intake", "intake_json", "triggers", "sender_priority", "retry", "analytics")
KEY = "ls_hireflow_1a791be8000f98cfa549849b7f19ee1f"  # the demo tenant file's hireflow key
CTX: dict = {}
H = 3_600_000


@pytest.fixture(scope="module")
def iso(tmp_path_factory):
    from stack.standins import providers
    url, stop_providers = providers.start(port=0)
    CTX["providers"] = url
    env = {"LEADSTREAM_PROVIDERS_URL": url, "LEADSTREAM_TEST_CLOCK": "1"}
    with IsolatedPlatform(redis_db=61, agents=AGENTS, env=env, fronts=("api",), metrics=True) as p:
        put(p, Ref("tenant", None, "hireflow"), {"triggering": {"quiet_hours": None, "per_day": 20, "per_week": 50}})
        yield p
    stop_providers()


# -- helpers ---------------------------------------------------------------------------------

def put(p, ref: Ref, data: dict | None) -> None:
    """Create, change or delete an entity as the management API does (nested objects merged one
    level deep, a None kept as None); wait until every worker of the platform has the change."""
    from runtime.deps import build
    from tests.integration.test_sending import _worker_config_versions
    svc = build(p.settings).config_service
    cur = svc.current(ref)
    if data is None:
        change = Change("delete", ref, None, cur.version, actor="test")
    elif cur is None or not cur.live:
        change = Change("create", ref, data, None, actor="test")
    else:
        merged = dict(cur.data)
        for k, v in data.items():
            merged[k] = {**merged[k], **v} if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
        change = Change("replace", ref, merged, cur.version, actor="test")
    asyncio.run(svc.apply([change]))
    version = svc.view.book.version
    wait_for(lambda: all(v >= version for v in _worker_config_versions(p)), 30,
             what=f"every worker at configuration version {version}")


def lead(p, zip_code: str = "10001") -> tuple[str, str]:
    """A new accepted hireflow lead on the nurses list; (lead id, address)."""
    addr = f"t-{uuid.uuid4().hex[:10]}@example.com"
    [lid] = submit(p, "hireflow", [{"email": addr, "first_name": "Rosa", "partner": "indeed-xml", "list": "nurses",
                                   "location": {"zip": zip_code, "country": "US"},
                                   "interests": {"keywords": ["nurse"]}}])
    wait_for(lambda: (s := p.redis.get(f"ls:lead:hireflow:{lid}")) and orjson.loads(s)["status"] == "accepted",
             60, what="the lead accepted")
    return lid, addr


def event(p, person: dict, name: str, headers: dict | None = None, **props) -> httpx.Response:
    return httpx.post(f"{p.api_url}/v1/events", json={**person, "name": name, "properties": props},
                      headers={"authorization": f"Bearer {KEY}", **(headers or {})}, timeout=30)


def sent_to(addr: str) -> list[dict]:
    """What the Postmark stand-in took for this address (hireflow's nurses list sends through it)."""
    return [m for m in httpx.get(f"{CTX['providers']}/sent/postmark", timeout=10).json() if m["to"] == addr]


TAILS: dict[str, TopicTail] = {}


def Tail(p, topic: str) -> TopicTail:
    return TopicTail(p.settings.kafka_bootstrap, f"{p.prefix}{topic}", CODEC)


def topic_events(p, topic: str) -> list[tuple[str, dict]]:
    if topic not in TAILS:
        TAILS[topic] = Tail(p, topic)
    return TAILS[topic].events()


def outcomes(p, lid: str) -> list[tuple[str, dict]]:
    return [(n, ev) for n, ev in topic_events(p, "triggers.events") if ev["lead_id"] == lid]


def named(p, lid: str, name: str, trigger: str | None = None) -> list[dict]:
    return [ev for n, ev in outcomes(p, lid) if n == name and (trigger is None or ev.get("trigger") == trigger)]


def skew(p, ms: int) -> None:
    p.redis.set("ls:clockskew", ms)


def settle(seconds: float = 3.0) -> None:
    """Give the engine time to do what it must not do (a second send); the assertions follow."""
    time.sleep(seconds)


# -- the conditions ----------------------------------------------------------------------------

def test_three_nursing_views_in_a_day_send_one_follow_up_and_the_cooldown_holds_the_fourth(iso):
    lid, addr = lead(iso)
    for i, cat in enumerate(["nursing", "retail", "nursing"]):
        assert event(iso, {"email": addr}, "job_viewed", category=cat, title=f"Job {i}").status_code == 202
    settle()
    assert sent_to(addr) == [] and named(iso, lid, "trigger.fired") == []  # two nursing views: not yet
    r = event(iso, {"email": addr.upper()}, "job_viewed", category="Nursing", title="ICU Nurse")
    assert r.status_code == 202 and r.json()["lead_id"] == lid and r.json()["outcome"] == "accepted"
    [mail] = wait_for(lambda: sent_to(addr), 60, what="the follow-up email")
    assert "nursing" in mail["subject"].lower() and "Rosa" in mail["subject"]
    body = mail["request"]["TextBody"]
    assert "most recently ICU Nurse" in body  # a merge tag from the triggering event
    assert "You are already on it" in body  # a conditional block on the lead's lists
    event(iso, {"lead_id": lid}, "job_viewed", category="nursing", title="Night Nurse")
    wait_for(lambda: [e for e in named(iso, lid, "trigger.suppressed") if e["reason"] == "cooldown"], 60,
             what="the fourth view suppressed by the cooldown")
    settle()
    assert len(sent_to(addr)) == 1
    [fired] = named(iso, lid, "trigger.fired", "viewed-3-nursing")
    assert fired["template"] == "nursing-follow-up" and fired["channel"] == "email"


def test_a_product_events_properties_are_sealed_but_those_the_brand_keeps_clear(iso):
    """hireflow keeps category, job_id and company clear (tenants/demo.yaml): every other
    property's value is sealed with the person's key on product.events, and in the triggered
    message's request on sends.priority; the engine matched on them and the message shows them."""
    lid, addr = lead(iso)
    title = f"ICU Nurse {uuid.uuid4().hex[:8]}"
    for _ in range(3):
        r = event(iso, {"lead_id": lid}, "job_viewed", category="nursing", title=title, salary=52000)
        assert r.status_code == 202, r.text
    [mail] = wait_for(lambda: sent_to(addr), 60, what="the follow-up email")
    assert f"most recently {title}" in mail["request"]["TextBody"]  # opened to compose
    views = wait_for(lambda: (v := [ev for n, ev in topic_events(iso, "product.events") if ev["lead_id"] == lid])
                     and len(v) == 3 and v, 60, what="the three views on product.events")
    for ev in views:
        props = orjson.loads(ev["properties"])
        assert props["category"] == "nursing" and is_sealed(props["title"]) and is_sealed(props["salary"])
        assert title not in ev["properties"] and "52000" not in ev["properties"]
    assert orjson.loads(opened(iso.settings, "product.tracked", views[0])["properties"]) == {
        "category": "nursing", "title": title, "salary": 52000}  # the lead's key opens them, types and all
    [req] = [ev for n, ev in topic_events(iso, "sends.priority") if ev["lead_id"] == lid and ev["kind"] == "triggered"]
    cause = orjson.loads(req["context"])["event"]
    assert cause["name"] == "job_viewed" and cause["category"] == "nursing" and is_sealed(cause["title"])
    assert title not in req["context"]
    assert orjson.loads(opened(iso.settings, "send.requested", req)["context"])["event"]["title"] == title
    # about someone nobody knows (recorded): only what the brand keeps clear is written
    r = event(iso, {"email": f"nobody-{uuid.uuid4().hex[:8]}@example.com"}, "job_viewed", category="nursing",
              title=title)
    assert r.status_code == 202 and r.json()["outcome"] == "recorded_unknown"
    [recorded] = wait_for(lambda: [ev for n, ev in topic_events(iso, "product.events")
                                   if ev["event_id"] == r.json()["event_id"]], 60, what="the recorded event")
    assert orjson.loads(recorded["properties"]) == {"category": "nursing"}


def test_the_queue_path_takes_json_product_events_as_the_api_does_sealed_then_forgets_them(iso):
    """A brand's JSON on product.intake.json: resolved, sealed (those kept clear excepted) and
    written to product.events by the intake_json agent; a redelivery with its idempotency key is
    the same event; a stranger is recorded with the clear properties only; what the API would
    refuse is a dead letter with its reason; the clear JSON is deleted once read."""
    lid, addr = lead(iso)
    title, key, tag = f"Ward nurse {uuid.uuid4().hex[:8]}", f"view-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    stranger = f"nobody-{tag}@example.com"
    good = orjson.dumps({"tenant": "hireflow", "event": {"email": addr, "name": "job_viewed", "idempotency_key": key,
                                                         "properties": {"category": "nursing", "title": title}}})
    bad = {b"json": b'{"tenant": "hireflow", "event": ', b"shape": orjson.dumps({"event": {}}),
           b"tenant": orjson.dumps({"tenant": "nobody", "event": {"lead_id": lid, "name": "job_viewed"}}),
           b"platform": orjson.dumps({"tenant": "hireflow", "event": {"email": addr, "name": "email.clicked"}})}
    iso.produce("product.intake.json", [(tag.encode(), good), (tag.encode(), good)]
                + [(tag.encode(), orjson.dumps({"tenant": "hireflow", "event": {
                    "email": stranger, "name": "job_viewed", "properties": {"category": "nursing", "title": title}}}))]
                + [(f"{tag}-{k.decode()}".encode(), v) for k, v in bad.items()])
    mine = wait_for(lambda: (v := [ev for n, ev in topic_events(iso, "product.events") if ev["lead_id"] == lid])
                    and len(v) == 2 and v, 60, what="the event (twice) on product.events")
    assert mine[0]["event_id"] == mine[1]["event_id"]  # the same event: the engine and ClickHouse take it once
    assert mine[0]["source"] == "queue" and mine[0]["resolved"] and mine[0]["email"] is None
    props = orjson.loads(mine[0]["properties"])
    assert props["category"] == "nursing" and is_sealed(props["title"]) and title not in mine[0]["properties"]
    assert orjson.loads(opened(iso.settings, "product.tracked", mine[0])["properties"]) == {
        "category": "nursing", "title": title}
    [recorded] = wait_for(lambda: [ev for n, ev in topic_events(iso, "product.events")
                                   if ev["lead_id"] == lead_id_of("hireflow", "email", stranger)], 60,
                          what="the stranger's event recorded")
    assert not recorded["resolved"] and orjson.loads(recorded["properties"]) == {"category": "nursing"}
    reasons = {"json": "not JSON", "shape": "expected an object", "tenant": "unknown tenant 'nobody'",
               "platform": "is a platform event name"}
    for k, reason in reasons.items():
        [m] = read_dead_letters(iso.settings, "product.intake.json", f"{tag}-{k}".encode())
        assert reason in dict(m.headers())["dlq.reason"].decode()
        assert addr.encode() not in m.value() and (m.value() == b"" if k == "json" else m.value().startswith(b"{"))
    assert b'"email":"[redacted]","name":"email.clicked"' in read_dead_letters(
        iso.settings, "product.intake.json", f"{tag}-platform".encode())[0].value()  # its shape, for the partner
    # raw input, clear: gone from product.intake.json once the intake_json group has read it
    wait_for(lambda: not records_holding(iso.settings, f"{iso.prefix}product.intake.json", addr.encode()), 90,
             what="the JSON forgotten once read")


def test_segment_rules_enter_as_events_happen_and_are_readable_through_the_api(iso):
    lid, addr = lead(iso)
    event(iso, {"lead_id": lid}, "job_viewed", category="nursing")
    settle()
    assert not named(iso, lid, "segment.entered")
    event(iso, {"lead_id": lid}, "job_viewed", category="nursing")
    [entered] = wait_for(lambda: named(iso, lid, "segment.entered"), 60, what="segment.entered")
    assert entered["segment"] == "nursing-interest"
    r = httpx.get(f"{iso.api_url}/v1/tenants/hireflow/segments/nursing-interest/members",
                  headers={"authorization": f"Bearer {KEY}"}, params={"count": 1000})
    # an ingest key may not read segments; the platform admin may
    assert r.status_code == 403
    admin = {"authorization": "Bearer " + iso_admin_key(iso), "x-tenant": "hireflow"}
    r = httpx.get(f"{iso.api_url}/v1/tenants/hireflow/segments/nursing-interest/members", headers=admin,
                  params={"count": 1000})
    assert r.status_code == 200 and lid in r.json()["members"] and r.json()["size"] >= 1
    assert httpx.get(f"{iso.api_url}/v1/tenants/hireflow/segments/nope/members", headers=admin).status_code == 404


def iso_admin_key(p) -> str:
    """The demo tenant file's platform admin key (its comment gives the plain key)."""
    return "ls_admin_17f2101e43e0a65cd613e4d23f96d925"


def test_an_abandoned_application_is_reminded_at_the_deadline_and_a_finished_one_is_not(iso):
    skew(iso, 0)
    a, a_addr = lead(iso)
    b, b_addr = lead(iso)
    c, c_addr = lead(iso)
    event(iso, {"lead_id": a}, "application_started", job_id="J1", job_title="ICU Nurse", company="Mercy")
    event(iso, {"lead_id": b}, "application_started", job_id="J2", job_title="Ward Nurse")
    event(iso, {"lead_id": c}, "application_started", job_id="J3", job_title="Midwife")
    for who in (a, b, c):
        wait_for(lambda: named(iso, who, "trigger.scheduled", "abandoned-application"), 60, what="the timer")
    event(iso, {"lead_id": b}, "application_completed", job_id="J2")
    event(iso, {"lead_id": c}, "application_completed", job_id="J-other")  # another job: not this one
    settle()
    assert not sent_to(a_addr) and not sent_to(b_addr)  # nothing before the deadline
    skew(iso, 2 * H + 5_000)  # two hours later, as far as the engine's timers can tell
    try:
        [mail] = wait_for(lambda: sent_to(a_addr), 60, what="the reminder")
        assert "ICU Nurse" in mail["subject"] and "at Mercy" in mail["request"]["TextBody"]
        wait_for(lambda: sent_to(c_addr), 60, what="the reminder for the other job")
        [done] = wait_for(lambda: named(iso, b, "trigger.suppressed", "abandoned-application"), 60,
                          what="the finished application's timer suppressed")
        assert done["reason"] == "completed"
    finally:
        skew(iso, 0)
    settle()
    assert not sent_to(b_addr) and len(sent_to(a_addr)) == 1


def test_the_goal_event_ends_a_waiting_action(iso):
    put(iso, Ref("trigger", "hireflow", "saved-search-nudge"), {
        "when": {"event": "search_saved"}, "action": {"template": "nursing-follow-up", "delay": "30m"},
        "goal": {"event": "job_applied"}, "cooldown": "1h"})
    skew(iso, 0)
    lid, addr = lead(iso)
    other, other_addr = lead(iso)
    event(iso, {"lead_id": lid}, "search_saved", query="nurse")
    event(iso, {"lead_id": other}, "search_saved", query="nurse")
    wait_for(lambda: named(iso, lid, "trigger.scheduled") and named(iso, other, "trigger.scheduled"), 60,
             what="both nudges scheduled")
    event(iso, {"lead_id": lid}, "job_applied", job_id="J9")
    settle(2)
    skew(iso, 31 * 60_000)
    try:
        [gone] = wait_for(lambda: named(iso, lid, "trigger.suppressed", "saved-search-nudge"), 60, what="goal exit")
        assert gone["reason"] == "goal_reached"
        wait_for(lambda: sent_to(other_addr), 60, what="the nudge of the one who did not apply")
    finally:
        skew(iso, 0)
    assert not sent_to(addr)


def test_attribute_score_segment_and_history_conditions(iso):
    put(iso, Ref("trigger", "hireflow", "engaged-nurse"), {
        "when": {"event": "profile_viewed"}, "cooldown": "0s",
        "conditions": [{"attribute": {"field": "zip", "equals": "10001"}}, {"score": {"at_least": 4}},
                       {"segment": {"in": "nursing-interest"}},
                       {"history": {"trigger": "viewed-3-nursing", "within": "7d", "sent": False}}],
        "action": {"template": "nursing-follow-up"}})
    ok, ok_addr = lead(iso)
    far, far_addr = lead(iso, zip_code="94105")  # the attribute fails
    low, low_addr = lead(iso)  # the score fails
    out, out_addr = lead(iso)  # not in the segment
    asyncio.run(_score(iso, [(ok, 2), (far, 2), (out, 2), (low, 0)]))  # two human clicks weigh 6
    for who in (ok, far, low):
        for _ in range(2):
            event(iso, {"lead_id": who}, "job_viewed", category="nursing")
        wait_for(lambda: named(iso, who, "segment.entered"), 60, what="the segment")
    for who in (ok, far, low, out):
        event(iso, {"lead_id": who}, "profile_viewed")
    wait_for(lambda: sent_to(ok_addr), 60, what="the message to the one who meets every condition")
    settle()
    assert not sent_to(far_addr) and not sent_to(low_addr) and not sent_to(out_addr)
    # history: once viewed-3-nursing has sent to them, engaged-nurse no longer fires
    event(iso, {"lead_id": ok}, "job_viewed", category="nursing")  # the third nursing view: the follow-up
    wait_for(lambda: named(iso, ok, "trigger.fired", "viewed-3-nursing"), 60, what="the follow-up")
    event(iso, {"lead_id": ok}, "profile_viewed")
    settle()
    assert len(named(iso, ok, "trigger.fired", "engaged-nurse")) == 1


async def _score(p, leads: list[tuple[str, int]]) -> None:
    import redis.asyncio as aioredis
    r = aioredis.Redis.from_url(p.settings.redis_url)
    await EngagementStore(r).apply([{"seen": f"test-{lid}-{n}", "key": ("hireflow", lid),
                                     "inc": {"human_clicks": 1}, "max": {}}
                                    for lid, clicks in leads for n in range(clicks)])
    await r.aclose()


def test_caps_per_day_hold_across_triggers(iso):
    put(iso, Ref("tenant", None, "hireflow"), {"triggering": {"per_day": 2}})
    put(iso, Ref("trigger", "hireflow", "ping"), {"when": {"event": "ping"}, "cooldown": "0s",
                                                 "action": {"template": "nursing-follow-up"}})
    try:
        lid, addr = lead(iso)
        for n in range(3):
            event(iso, {"lead_id": lid}, "ping", n=n)
        wait_for(lambda: [e for e in named(iso, lid, "trigger.suppressed") if e["reason"] == "capped_day"], 60,
                 what="the third message capped")
        wait_for(lambda: len(sent_to(addr)) == 2, 60, what="two messages")
        settle()
        assert len(sent_to(addr)) == 2 and len(named(iso, lid, "trigger.fired", "ping")) == 2
    finally:
        put(iso, Ref("tenant", None, "hireflow"), {"triggering": {"per_day": 20}})


def test_quiet_hours_defer_the_message_to_the_morning(iso):
    ny_hour = datetime.now(timezone.utc).astimezone(__import__("zoneinfo").ZoneInfo("America/New_York")).hour
    window = f"{ny_hour:02d}:00-{(ny_hour + 2) % 24:02d}:00"  # now is inside it, in New York
    put(iso, Ref("tenant", None, "hireflow"), {"triggering": {"quiet_hours": window}})
    put(iso, Ref("trigger", "hireflow", "ping"), {"when": {"event": "ping"}, "cooldown": "0s",
                                                 "action": {"template": "nursing-follow-up"}})
    skew(iso, 0)
    try:
        lid, addr = lead(iso)  # zip 10001: New York
        event(iso, {"lead_id": lid}, "ping")
        [deferred] = wait_for(lambda: named(iso, lid, "trigger.deferred"), 60, what="the deferral")
        until_ms = int(deferred["until"].timestamp() * 1000)
        assert deferred["reason"] == "quiet_hours" and until_ms > int(time.time() * 1000)
        settle()
        assert not sent_to(addr)
        skew(iso, until_ms - int(time.time() * 1000) + 2_000)
        wait_for(lambda: sent_to(addr), 60, what="the message after the quiet hours")
    finally:
        skew(iso, 0)
        put(iso, Ref("tenant", None, "hireflow"), {"triggering": {"quiet_hours": None}})


# -- people, input, idempotency ---------------------------------------------------------------

def test_unknown_people_are_recorded_or_refused_per_the_tenants_policy(iso):
    stranger = {"email": f"nobody-{uuid.uuid4().hex[:8]}@example.com"}
    r = event(iso, stranger, "job_viewed")
    assert r.status_code == 202 and r.json()["outcome"] == "recorded_unknown"
    recorded = wait_for(lambda: [ev for n, ev in topic_events(iso, "product.events")
                                 if ev["event_id"] == r.json()["event_id"]], 60, what="the recorded event")
    assert recorded[0]["resolved"] is False
    iso.redis.delete(INTACT)  # Redis lost its state: a person not found may be one it has not rebuilt yet
    try:
        r = event(iso, stranger, "job_viewed")
        assert r.status_code == 503 and r.json()["error"] == "rebuilding" and r.headers["retry-after"] == "30"
    finally:
        iso.redis.set(INTACT, "test")
    put(iso, Ref("tenant", None, "hireflow"), {"triggering": {"unknown_person": "reject"}})
    try:
        r = event(iso, stranger, "job_viewed")
        assert r.status_code == 422 and r.json()["error"] == "unknown_person"
        lid, addr = lead(iso)
        r = httpx.post(f"{iso.api_url}/v1/events/batch", headers={"authorization": f"Bearer {KEY}"},
                       json={"events": [{"lead_id": lid, "name": "job_viewed"}, {**stranger, "name": "job_viewed"}]})
        assert r.status_code == 422 and [p["field"] for p in r.json()["problems"]] == ["events.1"]
    finally:
        put(iso, Ref("tenant", None, "hireflow"), {"triggering": {"unknown_person": "record"}})
    # the queue path names people by address too; an unknown one is said, not dropped
    now = int(time.time() * 1000)
    ev = {"event_id": new_event_id(now, os.urandom(10)), "tenant": "hireflow", "occurred_at": now,
          "schema": "product.tracked@1", "causation_id": None, "source": "queue", "lead_id": "", "name": "job_viewed",
          "properties": "{}", "idempotency_key": None, "received_at": now, "resolved": True,
          "email": stranger["email"], "phone": None}
    iso.produce("product.events", [(b"x", CODEC.encode("product.tracked", ev))])
    unknown_lid = lead_id_of("hireflow", "email", stranger["email"])
    wait_for(lambda: [e for e in named(iso, unknown_lid, "trigger.suppressed") if e["reason"] == "unknown_person"],
             60, what="the unknown person said on triggers.events")


def test_bad_input_gets_clear_errors(iso):
    auth = {"authorization": f"Bearer {KEY}"}
    url = f"{iso.api_url}/v1/events"
    r = httpx.post(url, headers=auth, json={"email": "a@example.com", "name": "Bad Name"})
    assert r.status_code == 422 and r.json()["problems"][0]["field"] == "name"
    r = httpx.post(url, headers=auth, json={"name": "job_viewed"})
    assert r.status_code == 422 and "exactly one of lead_id, email, phone" in r.text
    r = httpx.post(url, headers=auth, json={"email": "a@example.com", "name": "x", "properties": {"p": "y" * 1000,
                                                                                                 "q": "z" * 1000,
                                                                                                 "r": "w" * 1000,
                                                                                                 "s": "v" * 1000,
                                                                                                 "t": "u" * 1000}})
    assert r.status_code == 422 and r.json()["problems"][0]["field"] == "properties"
    assert httpx.post(url, headers={"authorization": "Bearer nope"}, json={}).status_code == 401
    assert httpx.post(url, headers=auth, content=b"{not json").status_code == 422
    big = {"events": [{"email": "a@example.com", "name": "x"}] * 1001}
    assert httpx.post(f"{url}/batch", headers=auth, json=big).status_code == 413


def test_a_redelivered_or_replayed_event_never_sends_again(iso):
    put(iso, Ref("trigger", "hireflow", "ping"), {"when": {"event": "ping"}, "cooldown": "0s",
                                                 "action": {"template": "nursing-follow-up"}})
    lid, addr = lead(iso)
    first = event(iso, {"lead_id": lid}, "ping", headers={"idempotency-key": "k-" + lid})
    again = event(iso, {"lead_id": lid}, "ping", headers={"idempotency-key": "k-" + lid})  # a client's retry
    assert first.json()["event_id"] == again.json()["event_id"]
    wait_for(lambda: sent_to(addr), 60, what="the message")
    # the same event produced once more (a redelivery), and an old one (a replay, a backfill)
    [raw] = [ev for n, ev in topic_events(iso, "product.events") if ev["event_id"] == first.json()["event_id"]][:1]
    iso.produce("product.events", [(lid.encode(), CODEC.encode("product.tracked", raw))])
    old = {**raw, "event_id": new_event_id(int(time.time() * 1000) - 3 * H, os.urandom(10)),
           "occurred_at": int(time.time() * 1000) - 3 * H}
    iso.produce("product.events", [(lid.encode(), CODEC.encode("product.tracked", old))])
    settle(5)
    assert len(sent_to(addr)) == 1
    assert len({e["send_id"] for e in named(iso, lid, "trigger.fired")}) == 1


def test_platform_events_start_triggers_too(iso):
    put(iso, Ref("trigger", "hireflow", "accepted-hello"), {
        "when": {"event": "lead.accepted", "where": {"list": "nurses"}}, "action": {"template": "nursing-follow-up"}})
    try:
        lid, addr = lead(iso)
        [fired] = wait_for(lambda: named(iso, lid, "trigger.fired", "accepted-hello"), 60, what="the trigger")
        wait_for(lambda: sent_to(addr), 60, what="the message")
    finally:
        put(iso, Ref("trigger", "hireflow", "accepted-hello"), None)


def test_timers_survive_a_sigkilled_worker_none_lost_none_doubled(iso):
    put(iso, Ref("trigger", "hireflow", "delayed-ping"), {"when": {"event": "delayed_ping"}, "cooldown": "0s",
                                                         "action": {"template": "nursing-follow-up", "delay": "1h"}})
    skew(iso, 0)
    people = [lead(iso) for _ in range(12)]
    for lid, _ in people:
        event(iso, {"lead_id": lid}, "delayed_ping")
    wait_for(lambda: iso.redis.zcard("ls:timers") >= len(people), 60, what="the timers pending")
    [worker] = [w for w in iso.supervisor.status()["agents"]["triggers"]["workers"]]
    os.kill(worker["pid"], signal.SIGKILL)
    skew(iso, H + 5_000)
    try:
        iso.supervisor.wait(lambda s: any(w["ready"] and w["pid"] != worker["pid"] for w in s["workers"]),
                            "triggers", 120, "a new triggers worker")
        for lid, addr in people:
            wait_for(lambda: sent_to(addr), 90, what=f"the delayed message to {addr}")
    finally:
        skew(iso, 0)
    settle()
    assert all(len(sent_to(addr)) == 1 for _, addr in people)
    assert iso.redis.zcard("ls:timers") == 0


def test_a_query_segment_is_refreshed_from_clickhouse_with_entries_and_exits_said(iso):
    lid, addr = lead(iso)
    other, _ = lead(iso)
    put(iso, Ref("segment", "hireflow", "applied-lately"), {
        "query": "SELECT DISTINCT lead_id FROM events WHERE tenant = {tenant} AND event_type = 'product.tracked' "
                 "AND visitParamExtractString(payload, 'name') = 'job_applied_q'", "refresh": "2s"})
    try:
        event(iso, {"lead_id": lid}, "job_applied_q", job_id="J1")
        [entered] = wait_for(lambda: [e for e in named(iso, lid, "segment.entered") if e["segment"] == "applied-lately"],
                             90, what="the query segment's entry")
        admin = {"authorization": "Bearer " + iso_admin_key(iso), "x-tenant": "hireflow"}
        members = httpx.get(f"{iso.api_url}/v1/tenants/hireflow/segments/applied-lately/members", headers=admin,
                            params={"count": 1000}).json()
        assert lid in members["members"] and other not in members["members"]
        put(iso, Ref("segment", "hireflow", "applied-lately"), {  # the query changed: nobody matches now
            "query": "SELECT DISTINCT lead_id FROM events WHERE tenant = {tenant} AND event_type = 'nothing'"})
        [exited] = wait_for(lambda: [e for e in named(iso, lid, "segment.exited") if e["segment"] == "applied-lately"],
                            90, what="the query segment's exit")
        assert exited["causation_id"] is None and iso.redis.scard("ls:segm:hireflow:applied-lately") == 0
    finally:
        put(iso, Ref("segment", "hireflow", "applied-lately"), None)


# -- replay ------------------------------------------------------------------------------------

TRIGGER_STATE = ("ls:tev:*", "ls:tfired:*", "ls:tcap:*", "ls:seg:*", "ls:segm:*")


def trigger_state(r) -> dict:
    """Everything the trigger engine keeps in Redis, comparable (TTLs aside)."""
    out: dict = {}
    for pattern in TRIGGER_STATE:
        for k in r.scan_iter(match=pattern, count=5000):
            kind = r.type(k)
            out[k] = (sorted(r.zrange(k, 0, -1, withscores=True)) if kind == b"zset" else
                      sorted(r.smembers(k)) if kind == b"set" else r.hgetall(k))
    out["timers"] = sorted(r.zrange("ls:timers", 0, -1, withscores=True))
    out["actions"] = {k: orjson.loads(r.get(k)) for k in r.scan_iter("ls:timer:*")}
    return out


def test_replay_rebuilds_histories_segments_cooldowns_caps_and_timers_and_sends_nothing(iso):
    skew(iso, 0)
    viewer, viewer_addr = lead(iso)
    for title in ("A", "B", "C"):  # the follow-up fires (cooldown, cap) and the lead enters nursing-interest
        event(iso, {"lead_id": viewer}, "job_viewed", category="nursing", title=title)
    wait_for(lambda: sent_to(viewer_addr), 60, what="the follow-up")
    applicant, applicant_addr = lead(iso)
    event(iso, {"lead_id": applicant}, "application_started", job_id="J9", job_title="Night Nurse", company="Mercy")
    wait_for(lambda: named(iso, applicant, "trigger.scheduled", "abandoned-application"), 60, what="the timer")
    settle()
    iso.stop_workers()
    try:
        before = trigger_state(iso.redis)
        assert f"ls:tfired:hireflow:{viewer}".encode() in before
        assert viewer.encode() in before[b"ls:segm:hireflow:nursing-interest"]
        assert before["timers"] and before["actions"]
        assert len(before[f"ls:tev:hireflow:{applicant}".encode()]) == 2  # accepted, application_started
        for pattern in TRIGGER_STATE + ("ls:timer:*",):
            for k in iso.redis.scan_iter(match=pattern):
                iso.redis.delete(k)
        iso.redis.delete("ls:timers")
        out = iso.replay("--redis")
        assert "timers=" in out and "timers_without_cause=0" in out, out
        assert trigger_state(iso.redis) == before
    finally:
        iso.start_workers()
    iso.supervisor.wait(lambda s: any(w["ready"] for w in s["workers"]), "triggers", 120, "the triggers worker")
    settle()
    assert len(sent_to(viewer_addr)) == 1 and not sent_to(applicant_addr)  # the replay sent nothing
    event(iso, {"lead_id": viewer}, "job_viewed", category="nursing", title="D")  # the cooldown came back
    wait_for(lambda: [e for e in named(iso, viewer, "trigger.suppressed") if e["reason"] == "cooldown"], 60,
             what="the cooldown after the replay")
    skew(iso, 2 * H + 5_000)  # the rebuilt timer fires at its deadline, once
    try:
        [mail] = wait_for(lambda: sent_to(applicant_addr), 60, what="the reminder from the rebuilt timer")
        assert "Night Nurse" in mail["subject"]
    finally:
        skew(iso, 0)
    settle()
    assert len(sent_to(applicant_addr)) == 1 and len(sent_to(viewer_addr)) == 1
