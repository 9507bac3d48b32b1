"""The preference page on the tracking front (GET/POST /p/{code}), in process against the real
Kafka and Redis: the page, one event per valid choice on the intake's topic, strict 400s,
404 for a tampered, unknown or foreign code, 405 for other methods, and GET changing nothing.

Private to this module: a topic prefix of its own (with the demo configuration imported into
it, for the brand's name and the lists' cadences) and Redis database 56."""
from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import orjson
import pytest
import redis
import redis.asyncio as aioredis
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from api.tracking import TrackingApp
from domain.links import LinkRecord, signed_code
from domain.preferences import pause_end
from projections.redis_keys import INTACT
from schemas.codec import default_codec
from streams.settings import get_settings
from streams.spool import SpoolingProducer
from streams.topics import SUBMITTED, all_topics
from tests.integration.conftest import drop_topics, seed_config_topic, wait_for

REDIS_DB = 56
CODEC = default_codec()
FORM = {"content-type": "application/x-www-form-urlencoded"}


class Front:
    """A TrackingApp of this module's own, driven on one event loop."""

    def __init__(self, tmp):
        base = get_settings()
        self.prefix = f"t-prefs-{uuid.uuid4().hex[:8]}."
        self.redis_url = base.redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
        self.s = base.model_copy(update={"topic_prefix": self.prefix, "redis_url": self.redis_url, "spool_dir": tmp})
        self.key = self.s.link_key_ring[0]
        self.topic = self.prefix + SUBMITTED
        self.r = redis.Redis.from_url(self.redis_url)
        self.loop = self.client = None

    def start(self, tmp) -> None:
        self.r.flushdb()
        self.r.set(INTACT, "test")  # a Redis that holds the platform's state (not wiped)
        seed_config_topic(self.s, self.prefix)
        spec = next(t for t in all_topics() if t.name == SUBMITTED)
        admin = AdminClient({"bootstrap.servers": self.s.kafka_bootstrap})
        admin.create_topics([NewTopic(self.topic, 1, 1, config=spec.config())])[self.topic].result()
        self.loop = asyncio.new_event_loop()
        self.producer = SpoolingProducer(self.s.kafka_bootstrap, tmp / "spool")
        self.app = TrackingApp(self.s, producer=self.producer, redis_client=aioredis.Redis.from_url(self.redis_url))
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://front")
        wait_for(lambda: "jobsnearby" in self.app.config.book.tenants, 60, what="the front's configuration")
        self.counter = int(time.time())

    def link(self, lead_id: str, list_name: str = "daily-jobs", kind: str = "preferences") -> str:
        """A stored link record of this kind for this lead (as the sender stores them); its code."""
        self.counter += 1
        code = signed_code(self.counter, self.key)
        rec = LinkRecord(code=code, kind=kind, send_id=f"send-{lead_id}", tenant="jobsnearby", lead_id=lead_id,
                         destination_url="https://jobs.example/1" if kind == "click" else "", job_key="",
                         position=0, cpc_cents=0, list=list_name, template="t1", campaign="", creative="",
                         created_ms=int(time.time() * 1000), slot=kind)
        self.r.set(f"ls:link:{code}", orjson.dumps(rec.to_dict()))
        return code

    def request(self, method: str, path: str, **kw) -> httpx.Response:
        return self.loop.run_until_complete(self.client.request(method, path, **kw))

    def events(self, lead_id: str, n: int | None = None, timeout: float = 30) -> list[dict]:
        """The events on the intake's topic keyed by this lead (waiting until there are n)."""
        def read():
            c = Consumer({"bootstrap.servers": self.s.kafka_bootstrap, "group.id": f"t-{uuid.uuid4().hex}",
                          "enable.auto.commit": False, "enable.partition.eof": True})
            c.assign([TopicPartition(self.topic, 0, 0)])
            out = []
            try:
                while True:
                    msgs = c.consume(500, timeout=1.0)
                    if not msgs:
                        break
                    done = False
                    for m in msgs:
                        if m.error():
                            done = True
                            continue
                        if m.key() == lead_id.encode():
                            out.append(CODEC.decode(m.value()))
                    if done:
                        break
            finally:
                c.close()
            return out
        if n is None:
            return read()
        return wait_for(lambda: (got := read()) and len(got) >= n and got, timeout,
                        what=f"{n} events of {lead_id}")

    def marker(self) -> None:
        """A valid choice of another lead, seen on the topic: whatever was produced before is there too."""
        lid = f"marker-{uuid.uuid4().hex[:6]}"
        assert self.request("POST", f"/p/{self.link(lid)}", content=b"action=leave_list", headers=FORM).status_code == 200
        self.events(lid, 1)

    def close(self) -> None:
        if self.client is not None:
            self.loop.run_until_complete(self.client.aclose())
            self.loop.run_until_complete(self.app.redis.aclose())
            self.producer.close()
            self.loop.close()
        self.r.flushdb()
        drop_topics(self.s, self.prefix)


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prefs-front")
    f = Front(tmp)
    try:
        f.start(tmp)
        yield f
    finally:
        f.close()


def snapshot(r: redis.Redis) -> dict:
    return {k: r.dump(k) for k in sorted(r.keys("*"))}


def test_the_page_shows_the_brand_the_list_the_current_settings_and_the_choices(front):
    lid = f"page-{uuid.uuid4().hex[:6]}"
    paused_until = int(time.time() * 1000) + 5 * 86_400_000
    front.r.set(f"ls:lead:jobsnearby:{lid}", orjson.dumps({"preferences": {"daily-jobs": {
        "cadence": "weekdays", "paused_until_ms": paused_until, "left": False}}}))
    code = front.link(lid)
    r = front.request("GET", f"/p/{code}")
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert "no-store" in r.headers["cache-control"]
    page = r.text
    assert '<html lang="en">' in page and "<title>Manage Daily job alerts</title>" in page
    assert "<h1>Manage Daily job alerts</h1>" in page and "Jobs Nearby" in page
    assert ": on weekdays (Monday to Friday)." in page and "Paused until" in page
    assert page.count(f'<form method="post" action="/p/{code}">') == 4
    for action in ("cadence", "pause", "leave_list", "leave_all"):
        assert f'<input type="hidden" name="action" value="{action}">' in page
    assert '<input type="radio" name="cadence" value="weekdays" checked>' in page
    assert [v for v in ("daily", "weekdays", "3_per_week", "1_per_week")
            if f'name="cadence" value="{v}"' in page] == ["daily", "weekdays", "3_per_week", "1_per_week"]
    assert all(f'name="weeks" value="{w}"' in page for w in (1, 2, 4))
    assert page.count("<legend>") == 4 and "<label>" in page  # every control is named for a screen reader


def test_a_weekday_list_offers_no_daily_and_a_lead_unknown_to_redis_still_gets_the_choices(front):
    r = front.request("GET", f"/p/{front.link('nobody-yet', 'sms-alerts')}")
    assert r.status_code == 200
    assert 'value="daily"' not in r.text and 'value="weekdays" checked' in r.text and 'value="1_per_week"' in r.text


def test_get_and_head_change_nothing(front):
    lid = f"looker-{uuid.uuid4().hex[:6]}"
    code = front.link(lid)
    before = snapshot(front.r)
    for _ in range(3):  # a mail scanner, a prefetcher, the person
        assert front.request("GET", f"/p/{code}").status_code == 200
    head = front.request("HEAD", f"/p/{code}")
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 1000
    front.request("GET", f"/p/{code}?action=leave_all")  # a query string is not a choice
    assert snapshot(front.r) == before
    front.marker()
    assert front.events(lid) == []


@pytest.mark.parametrize("body,fields,said", [
    (b"action=cadence&cadence=3_per_week", {"action": "cadence", "cadence": "3_per_week", "pause_weeks": 0},
     "three times a week"),
    (b"action=pause&weeks=2", {"action": "pause", "cadence": "", "pause_weeks": 2}, "Paused"),
    (b"action=leave_list", {"action": "leave_list", "cadence": "", "pause_weeks": 0}, "You have left Daily job alerts"),
    (b"action=leave_all", {"action": "leave_all", "cadence": "", "pause_weeks": 0}, "You are unsubscribed"),
])
def test_each_choice_produces_one_request_on_the_intakes_topic(front, body, fields, said):
    lid = f"chooser-{uuid.uuid4().hex[:6]}"
    code = front.link(lid)
    before = snapshot(front.r)
    at = int(time.time() * 1000)
    r = front.request("POST", f"/p/{code}", content=body, headers={"content-type": "application/x-www-form-urlencoded; charset=utf-8"})
    assert r.status_code == 200 and said in r.text and "no-store" in r.headers["cache-control"]
    assert snapshot(front.r) == before  # the front writes no projection
    [(name, ev)] = front.events(lid, 1)
    assert name == "lead.preferences_requested" and ev["schema"] == "lead.preferences_requested@1"
    assert {k: ev[k] for k in fields} == fields
    assert (ev["tenant"], ev["lead_id"], ev["list"], ev["send_id"], ev["code"], ev["source"]) == \
        ("jobsnearby", lid, "daily-jobs", f"send-{lid}", code, "tracking")
    if fields["action"] == "pause":
        until = time.strftime("%A %d %B %Y", time.gmtime(pause_end(at, 2) / 1000))
        assert until in r.text


@pytest.mark.parametrize("body,headers,problem", [
    (b"action=forget_me", FORM, "action must be one of cadence, pause, leave_list, leave_all"),
    (b"action=pause&weeks=3", FORM, "weeks must be one of 1, 2, 4"),
    (b"action=cadence&cadence=hourly", FORM, "cadence must be one of"),
    (b"action=leave_list&weeks=1", FORM, "takes no field"),
    (b"", FORM, "action must be one of"),
    (b'{"action": "leave_all"}', {"content-type": "application/json"}, "application/x-www-form-urlencoded"),
    (b"action=leave_all&pad=" + b"x" * 5000, FORM, "larger than 1024 bytes"),
])
def test_a_bad_choice_is_a_400_page_saying_why_and_produces_nothing(front, body, headers, problem):
    lid = f"bad-{uuid.uuid4().hex[:6]}"
    code = front.link(lid)
    r = front.request("POST", f"/p/{code}", content=body, headers=headers)
    assert r.status_code == 400 and "<h1>Not saved</h1>" in r.text and problem in r.text
    assert f'<a href="/p/{code}">Back to the choices</a>' in r.text
    front.marker()
    assert front.events(lid) == []


def test_a_cadence_the_list_does_not_offer_is_a_400(front):
    code = front.link(f"sms-{uuid.uuid4().hex[:6]}", "sms-alerts")  # weekdays: nobody is offered more
    r = front.request("POST", f"/p/{code}", content=b"action=cadence&cadence=daily", headers=FORM)
    assert r.status_code == 400 and "cadence must be one of weekdays, 3_per_week, 1_per_week" in r.text


def test_tampered_unknown_and_foreign_codes_are_404_and_other_methods_405(front):
    lid = f"probe-{uuid.uuid4().hex[:6]}"
    code = front.link(lid)
    tampered = code[:-1] + ("A" if code[-1] != "A" else "B")
    unknown = signed_code(10 ** 12 + 7, front.key)  # signed, but no message ever had it
    click = front.link(lid, kind="click")  # a real code, of another kind
    for path in (f"/p/{tampered}", f"/p/{unknown}", f"/p/{click}", "/p/", "/p/not!a!code"):
        assert front.request("GET", path).status_code == 404, path
        assert front.request("POST", path, content=b"action=leave_all", headers=FORM).status_code == 404, path
    for method in ("PUT", "DELETE", "PATCH"):
        r = front.request(method, f"/p/{code}", content=b"action=leave_all", headers=FORM)
        assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, POST"
    front.marker()
    assert front.events(lid) == []


def test_a_code_that_fails_its_signature_is_never_looked_up_even_with_a_record_under_it(front):
    """The signature is checked before the link is looked up, and only codes that passed are
    remembered (a remembered one is not checked again): a record stored under a forged code is
    never served, however often it is asked for, while a good code answers from memory."""
    good = front.link(f"sig-{uuid.uuid4().hex[:6]}", kind="click")
    forged = good[:-1] + ("A" if good[-1] != "A" else "B")
    front.r.set(f"ls:link:{forged}", front.r.get(f"ls:link:{good}"))  # a record under the forged code
    cached = len(front.app.cache)
    for _ in range(2):
        assert front.request("GET", f"/c/{forged}").status_code == 404
    assert len(front.app.cache) == cached  # never looked up, so never remembered
    for _ in range(2):  # the second from the front's memory
        r = front.request("GET", f"/c/{good}")
        assert r.status_code == 302 and r.headers["location"] == "https://jobs.example/1"
    assert len(front.app.cache) == cached + 1


def test_redis_unreachable_is_a_503_with_retry_after_never_a_500(tmp_path):
    """A link not in the front's cache while Redis does not answer (restarting, failing over):
    the front waits a moment, then 503 with Retry-After and nothing recorded; once Redis is
    reachable the same link works."""
    front = Front(tmp_path)
    front.start(tmp_path)
    try:
        code = front.link("lead-unreachable", kind="click")
        real = front.app.redis
        front.app.redis = aioredis.Redis.from_url("redis://127.0.0.1:1/0")  # nothing listens there
        for method, path in (("GET", f"/c/{code}"), ("HEAD", f"/c/{code}"), ("GET", f"/o/{code}")):
            r = front.request(method, path)
            assert r.status_code == 503 and r.headers["retry-after"] == "5", (method, path, r.status_code)
        front.app.redis = real
        r = front.request("GET", f"/c/{code}")
        assert r.status_code == 302 and r.headers["location"] == "https://jobs.example/1"
    finally:
        front.close()


def test_while_a_wiped_redis_is_rebuilt_a_missing_link_is_a_503_not_a_404_and_is_not_remembered(tmp_path):
    """Redis lost its state (no ls:intact) and the replay has not put the links back yet: a link
    the front cannot find answers 503 with Retry-After (come back), not 404 (no such link), and
    that miss is not cached, so once the record is back the same link redirects at once. With
    Redis marked intact, an unknown code is a 404 as before."""
    front = Front(tmp_path)
    front.start(tmp_path)
    try:
        code = front.link("lead-wiped", kind="click")
        record = front.r.get(f"ls:link:{code}")
        front.r.flushdb()  # the wipe
        for method in ("GET", "HEAD"):
            r = front.request(method, f"/c/{code}")
            assert r.status_code == 503 and r.headers["retry-after"] == "5", (method, r.status_code)
        front.r.set(f"ls:link:{code}", record)  # what the replay writes back ...
        front.r.set(INTACT, "replay")  # ... and, at its end, the mark
        r = front.request("GET", f"/c/{code}")
        assert r.status_code == 302 and r.headers["location"] == "https://jobs.example/1"
        unknown = signed_code(10 ** 12 + 11, front.key)
        assert front.request("GET", f"/c/{unknown}").status_code == 404
    finally:
        front.close()
