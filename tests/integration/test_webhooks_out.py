"""Outbound webhooks end to end on a private platform (stack.isolated): leads submitted to the
private intake topic -> intake -> leads.events -> the webhooks_out agent -> a hook receiver
stand-in of this module's own, which checks every signature. Only the tenant given a webhook
in this module's tenant file gets deliveries; what no endpoint takes lands on
webhooks.outbound.dead."""
from __future__ import annotations

import json
import os
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import yaml
from confluent_kafka import Consumer, TopicPartition

from domain.identity import new_event_id
from domain.lead_input import LeadIn
from domain.submission import build_submitted
from schemas.codec import SCHEMA_DIR, default_codec
from stack.isolated import IsolatedPlatform
from stack.standins import hook_receiver
from streams.settings import ROOT, get_settings, load_tenants
from tests.integration.conftest import IDS, opened, read_dead_letters, wait_for

S = get_settings()
CODEC = default_codec()
HOOKED, PLAIN = "jobsnearby", "hireflow"  # with a webhook, without one
SECRET = f"whsec-{uuid.uuid4().hex}"  # not the receiver's default: the tenant's own secret must sign
PRIMARY, FAILOVER = "t1", "t1b"
EVENTS = ["lead.*", "send.*", "engagement.clicked"]  # engagement.opened is left out on purpose
CTX: dict = {}
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def iso(tmp_path_factory):
    url, stop_receiver = hook_receiver.start(0, secrets={PRIMARY: SECRET, FAILOVER: SECRET})
    data = yaml.safe_load((ROOT / "tenants" / "demo.yaml").read_text())
    data["tenants"][HOOKED]["webhook"] = {"url": f"{url}/hooks/{PRIMARY}", "failover_url": f"{url}/hooks/{FAILOVER}",
                                          "secret": SECRET, "events": EVENTS, "attempts": 6}
    path = tmp_path_factory.mktemp("tenants") / "tenants.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    book = load_tenants(path)
    assert book.tenants[HOOKED].webhook and book.tenants[PLAIN].webhook is None
    CTX.update(hooks=url, book=book)
    try:
        with IsolatedPlatform(redis_db=12, agents=("intake", "webhooks_out"),
                              env={"LEADSTREAM_TENANTS_FILE": str(path)},
                              keep=bool(os.environ.get("KEEP_ISO"))) as p:
            yield p
    finally:
        stop_receiver()


@pytest.fixture(autouse=True)
def endpoints_behave(iso):
    """Every test starts with both endpoints answering 200 and nothing recorded."""
    for name in (PRIMARY, FAILOVER):
        control(name, mode="ok")
        httpx.delete(f"{CTX['hooks']}/received/{name}").raise_for_status()
    yield


# ---- helpers ------------------------------------------------------------------------------------

def control(name: str, **change) -> None:
    httpx.post(f"{CTX['hooks']}/control/{name}", json=change).raise_for_status()


def received(name: str, lids) -> list[dict]:
    """What endpoint `name` got about these leads, in arrival order."""
    lids = set(lids)
    return [r for r in httpx.get(f"{CTX['hooks']}/received/{name}").json()
            if r["body"] and r["body"].get("lead_id") in lids]


def delivered(name: str, lids) -> list[dict]:
    return [r for r in received(name, lids) if r["status"] == 200]


def submit(p: IsolatedPlatform, tenant: str, leads: list[dict]) -> list[str]:
    """lead.submitted straight to the private intake topic; returns the lead ids."""
    t, now, records = CTX["book"].tenants[tenant], int(time.time() * 1000), []
    for body in leads:
        sub = build_submitted(LeadIn.model_validate(body), t, new_event_id(now, os.urandom(10)), now, "test", ids=IDS)
        records.append((sub["lead_id"].encode(), CODEC.encode("lead.submitted", sub)))
    p.produce("leads.submitted", records)
    return [k.decode() for k, _ in records]


def new_leads(p: IsolatedPlatform, tenant: str, n: int, tag: str) -> list[str]:
    uid = uuid.uuid4().hex[:8]
    lst = "daily-jobs" if tenant == HOOKED else "tech-weekly"
    partner = "indeed-xml" if tenant == HOOKED else "p"
    return submit(p, tenant, [{"email": f"{tag}{i}.{uid}@example.com", "partner": partner, "list": lst,
                               "location": {"zip": "10001", "country": "US"}} for i in range(n)])


def read_topic(p: IsolatedPlatform, topic: str, keys, done=None, timeout: float = 60.0) -> list:
    """The private topic's messages whose key is one of `keys`, in offset order per partition,
    read from the beginning until done(messages) (done None: for `timeout` seconds)."""
    keys = {k.encode() if isinstance(k, str) else k for k in keys}
    c = Consumer({"bootstrap.servers": S.kafka_bootstrap, "group.id": f"t-{uuid.uuid4().hex}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    name = f"{p.prefix}{topic}"
    try:
        parts = c.list_topics(name, timeout=10).topics[name].partitions
        c.assign([TopicPartition(name, q, 0) for q in parts])
        found, deadline = [], time.monotonic() + timeout
        while True:
            found += [m for m in c.consume(1000, timeout=0.5) if not m.error() and m.key() in keys]
            if done is not None and done(found):
                return found
            if time.monotonic() > deadline:
                if done is None:
                    return found
                raise AssertionError(f"timed out reading {name}: {len(found)} messages")
    finally:
        c.close()


def lead_events(p: IsolatedPlatform, lids: list[str], count: int) -> dict[str, list[tuple[str, dict]]]:
    """Each lead's events on the private leads.events, in order, once there are `count` in all
    (their sealed fields opened: the brand's endpoint gets them clear)."""
    msgs = read_topic(p, "leads.events", lids, lambda found: len(found) >= count)
    out: dict[str, list[tuple[str, dict]]] = {lid: [] for lid in lids}
    for m, pair in zip(msgs, opened(p.settings, [CODEC.decode(m.value()) for m in msgs])):
        out[m.key().decode()].append(pair)
    return out


def wait_committed(p: IsolatedPlatform, msgs: list, timeout: float = 60.0) -> None:
    """Wait until the webhooks_out group has committed past every one of these messages: the
    agent is done with them (delivered, dead-lettered or left out)."""
    c = Consumer({"bootstrap.servers": S.kafka_bootstrap, "group.id": f"{p.prefix}leadstream-webhooks_out",
                  "enable.auto.commit": False})
    try:
        def past() -> bool:
            parts = c.committed([TopicPartition(m.topic(), m.partition()) for m in msgs], timeout=10)
            return all(tp.offset > m.offset() for tp, m in zip(parts, msgs))
        wait_for(past, timeout, 0.5, "the webhooks_out group to commit past the events")
    finally:
        c.close()


def jsonable(value):
    """The event as the tenant should see it in "data": datetimes as epoch milliseconds."""
    if isinstance(value, datetime):
        return (value - EPOCH) // timedelta(milliseconds=1)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def example(name: str, lid: str, tenant: str = HOOKED) -> dict:
    """A schema example, made this test's own: new event id, this lead, now."""
    agg, event = name.split(".")
    ev = json.loads((SCHEMA_DIR / agg / "examples" / f"{event}.v1.json").read_text())
    now = int(time.time() * 1000)
    return {**ev, "event_id": new_event_id(now, os.urandom(10)), "lead_id": lid, "tenant": tenant,
            "occurred_at": now}


# ---- tests --------------------------------------------------------------------------------------

def test_every_lead_event_arrives_once_signed_with_its_event_id_in_order_per_lead(iso):
    uid = uuid.uuid4().hex[:8]
    people = [{"email": f"w{i}.{uid}@example.com", "first_name": f"W{i}", "partner": "indeed-xml",
               "list": "daily-jobs", "location": {"zip": "10001", "country": "US"}} for i in range(5)]
    lids = submit(iso, HOOKED, people)
    # two of them come again (another list: lead.resubmitted), then ask to leave (lead.unsubscribed)
    submit(iso, HOOKED, [{**people[i], "list": "warehouse"} for i in (0, 1)])
    now = int(time.time() * 1000)
    iso.produce("leads.submitted", [(lids[i].encode(), CODEC.encode("lead.unsubscribe_requested", {
        "event_id": new_event_id(now, os.urandom(10)), "tenant": HOOKED, "occurred_at": now,
        "schema": "lead.unsubscribe_requested@1", "causation_id": None, "source": "test",
        "lead_id": lids[i], "reason": "asked_by_phone"})) for i in (0, 1)])
    facts = lead_events(iso, lids, 5 + 2 + 2)
    assert [n for n, _ in facts[lids[0]]] == ["lead.accepted", "lead.resubmitted", "lead.unsubscribed"]
    assert all([n for n, _ in facts[lid]] == ["lead.accepted"] for lid in lids[2:])

    wait_for(lambda: len(delivered(PRIMARY, lids)) >= 9, 60, what="the nine events at the primary")
    time.sleep(1.5)  # anything extra (a duplicate) would arrive now
    got = received(PRIMARY, lids)
    assert len(got) == 9 and all(r["status"] == 200 and r["signature_ok"] and r["attempt"] == 1 for r in got)
    assert not received(FAILOVER, lids)
    for lid in lids:
        mine = [r for r in got if r["body"]["lead_id"] == lid]
        assert [r["event_id"] for r in mine] == [ev["event_id"] for _, ev in facts[lid]]  # each once, in order
        for r, (name, ev) in zip(mine, facts[lid]):
            body = r["body"]
            assert body["event_id"] == ev["event_id"] == r["event_id"] == body["data"]["event_id"]
            assert (body["event"], body["tenant"], body["lead_id"]) == (name, HOOKED, lid)
            occurred = (ev["occurred_at"] - EPOCH) // timedelta(milliseconds=1)
            assert body["occurred_at"] == body["data"]["occurred_at"] == occurred
            assert body["data"] == jsonable(ev)  # the whole event, timestamps as epoch ms
            assert r["content_type"] == "application/json" and r["user_agent"].startswith("leadstream-webhooks/")
    first = next(r for r in got if r["body"]["lead_id"] == lids[0])
    assert first["body"]["data"]["first_name"] == "W0" and first["body"]["data"]["list"] == "daily-jobs"


def test_a_failing_primary_hands_every_event_to_the_failover(iso):
    control(PRIMARY, mode="fail")
    lids = new_leads(iso, HOOKED, 4, "fo")
    facts = lead_events(iso, lids, 4)
    ids = {ev["event_id"] for evs in facts.values() for _, ev in evs}
    wait_for(lambda: {r["event_id"] for r in delivered(FAILOVER, lids)} == ids, 60, what="the events at the failover")
    at_failover = received(FAILOVER, lids)
    assert len(at_failover) == 4 and all(r["signature_ok"] and r["attempt"] == 2 for r in at_failover)
    at_primary = received(PRIMARY, lids)
    assert sorted(r["event_id"] for r in at_primary) == sorted(ids)
    assert all(r["status"] == 500 and r["signature_ok"] and r["attempt"] == 1 for r in at_primary)


def test_endpoints_failing_for_a_while_get_every_event_after_retries(iso):
    control(PRIMARY, mode="fail", fail_next=4)
    control(FAILOVER, mode="fail", fail_next=4)
    lids = new_leads(iso, HOOKED, 3, "rt")
    facts = lead_events(iso, lids, 3)
    ids = {ev["event_id"] for evs in facts.values() for _, ev in evs}

    def arrived() -> list[dict]:
        return delivered(PRIMARY, lids) + delivered(FAILOVER, lids)
    wait_for(lambda: {r["event_id"] for r in arrived()} == ids, 90, what="every event after the retries")
    time.sleep(1.5)
    ok = arrived()
    assert sorted(r["event_id"] for r in ok) == sorted(ids)  # none missing, none twice
    assert all(r["signature_ok"] for r in received(PRIMARY, lids) + received(FAILOVER, lids))
    failed = [r for r in received(PRIMARY, lids) + received(FAILOVER, lids) if r["status"] == 500]
    assert len(failed) == 8  # both endpoints' four failures were spent on these events
    assert max(r["attempt"] for r in ok) >= 3  # delivered in a later round, after a backoff


def test_events_no_endpoint_takes_land_on_the_dead_topic_with_why(iso):
    control(PRIMARY, mode="gone")
    control(FAILOVER, mode="gone")
    lids = new_leads(iso, HOOKED, 3, "gone")
    facts = lead_events(iso, lids, 3)
    by_id = {ev["event_id"]: ev for evs in facts.values() for _, ev in evs}
    dead = read_topic(iso, "webhooks.outbound.dead", lids, lambda found: len(found) >= 3)
    assert len(dead) == 3
    hooks = CTX["hooks"]
    for m in dead:
        h = {k: v.decode() for k, v in m.headers()}
        name, ev = CODEC.decode(m.value())  # the original Avro bytes
        assert name == "lead.accepted" and ev["event_id"] in by_id and m.key().decode() == ev["lead_id"]
        assert h["webhook.event"] == "lead.accepted" and h["webhook.event_id"] == ev["event_id"]
        assert h["webhook.tenant"] == HOOKED
        assert h["webhook.endpoint"] == f"{hooks}/hooks/{PRIMARY}"
        assert h["webhook.failover"] == f"{hooks}/hooks/{FAILOVER}"
        assert h["webhook.attempts"] == "2"  # 410 is permanent: one request to each, no retries
        assert "410" in h["webhook.error"]
        assert h["webhook.topic"] == f"{iso.prefix}leads.events"
    # each endpoint was asked once per event, and nothing was delivered
    for name in (PRIMARY, FAILOVER):
        got = received(name, lids)
        assert sorted(r["event_id"] for r in got) == sorted(by_id) and all(r["status"] == 410 for r in got)


def test_a_tenant_without_a_webhook_gets_no_deliveries(iso):
    plain = new_leads(iso, PLAIN, 3, "plain")
    hooked = new_leads(iso, HOOKED, 1, "beside")
    msgs = read_topic(iso, "leads.events", plain, lambda found: len(found) >= 3)
    assert all(CODEC.decode(m.value())[0] == "lead.accepted" for m in msgs)
    wait_committed(iso, msgs)  # the agent has seen them and moved on
    wait_for(lambda: delivered(PRIMARY, hooked), 30, what="the other tenant's event beside them")
    for name in (PRIMARY, FAILOVER):
        every = httpx.get(f"{CTX['hooks']}/received/{name}").json()
        assert not [r for r in every if r["body"] and r["body"].get("tenant") == PLAIN]
        assert not received(name, plain)
    assert not read_topic(iso, "webhooks.outbound.dead", plain, timeout=5)


def test_send_and_engagement_events_are_delivered_when_the_tenant_subscribed_to_them(iso):
    lid = uuid.uuid4().hex[:24]
    dispatched, clicked, opened = (example(n, lid) for n in ("send.dispatched", "engagement.clicked",
                                                             "engagement.opened"))
    iso.produce("sends.events", [(lid.encode(), CODEC.encode("send.dispatched", dispatched))])
    iso.produce("engagement.events", [(lid.encode(), CODEC.encode("engagement.opened", opened)),
                                      (lid.encode(), CODEC.encode("engagement.clicked", clicked))])
    wait_for(lambda: len(delivered(PRIMARY, [lid])) >= 2, 60, what="send.dispatched and engagement.clicked")
    msgs = read_topic(iso, "engagement.events", [lid], lambda found: len(found) >= 2)
    wait_committed(iso, msgs)
    got = {r["body"]["event"]: r for r in received(PRIMARY, [lid])}
    assert set(got) == {"send.dispatched", "engagement.clicked"}  # engagement.opened: not subscribed
    assert got["send.dispatched"]["event_id"] == dispatched["event_id"]
    assert got["send.dispatched"]["body"]["data"]["send_id"] == dispatched["send_id"]
    assert got["engagement.clicked"]["body"]["data"]["destination_url"] == clicked["destination_url"]
    assert got["engagement.clicked"]["body"]["occurred_at"] == clicked["occurred_at"]
    assert all(r["signature_ok"] for r in got.values())


def test_an_undecodable_message_is_dead_lettered_and_the_rest_still_delivered(iso):
    lid = uuid.uuid4().hex[:24]
    after = example("send.dispatched", lid)
    iso.produce("sends.events", [(lid.encode(), b"\x00 not avro at all"),
                                 (lid.encode(), CODEC.encode("send.dispatched", after))])
    [bad] = read_dead_letters(iso.settings, "sends.events", lid.encode(), timeout=60)
    h = {k: v.decode() for k, v in bad.headers()}
    assert bad.value() == b"\x00 not avro at all"
    assert h["dlq.consumer"] == "webhooks_out" and h["dlq.reason"].startswith("undecodable")
    wait_for(lambda: delivered(PRIMARY, [lid]), 60, what="the event after the bad one")
    assert [r["event_id"] for r in received(PRIMARY, [lid])] == [after["event_id"]]
