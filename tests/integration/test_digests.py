"""Activity digests end to end on a private platform: activity through the API, a digest defined
through the control plane, the run planned at the members' local send time (a test clock moves
the planner forward), chunks digested on the priority path before the standard one, and the mail
at the SMTP sink. Then the failure paths: bad and unknown input refused, chunks redelivered and
runs planned again (nothing sent twice), a digest worker SIGKILLed mid-run (nothing lost)."""
from __future__ import annotations

import email
import email.policy
import os
import signal
import time
import uuid

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from domain.config_entities import Ref
from domain.digests import HOUR_MS, DigestConfig, digest_send_id, latest_period, run_id
from domain.identity import new_event_id
from schemas.codec import DecodeError, default_codec
from stack.isolated import IsolatedPlatform
from tests.integration.conftest import wait_for
from tests.integration.test_sending import submit
from tests.integration.test_triggers import put

CODEC = default_codec()
KEY = "ls_jobsnearby_e3b283fb174ccf85ef320c848425bd8c"  # the demo tenant file's jobsnearby key
AGENTS = ("intake", "activity", "digests_priority", "digests_standard", "sender_bulk")
CTX: dict = {}
DAY = 24 * HOUR_MS


@pytest.fixture(scope="module")
def iso(tmp_path_factory):
    from stack.standins import smtp_sink
    folder = tmp_path_factory.mktemp("mail")
    smtp_port, _, stop_smtp = smtp_sink.start(port=0, folder=folder)
    CTX["mail"] = folder
    env = {"LEADSTREAM_SMTP_PORT": str(smtp_port), "LEADSTREAM_MAIL_DIR": str(folder), "LEADSTREAM_TEST_CLOCK": "1",
           "LEADSTREAM_DIGEST_TICK_S": "0.5", "LEADSTREAM_DIGEST_CHUNK_SIZE": "20"}
    with IsolatedPlatform(redis_db=47, agents=AGENTS, env=env, fronts=("api", "tracking"), metrics=True) as p:
        put(p, Ref("template", "jobsnearby", "digest"), {"channel": "email", "description": "activity digest"})
        yield p
    stop_smtp()


# -- helpers ---------------------------------------------------------------------------------

def post(p, body: dict, path: str = "/v1/activity", headers: dict | None = None) -> httpx.Response:
    return httpx.post(f"{p.api_url}{path}", json=body, timeout=30,
                      headers={"authorization": f"Bearer {KEY}", **(headers or {})})


def accepted_leads(p, n: int) -> list[tuple[str, str]]:
    """n new accepted jobsnearby leads on daily-jobs: (lead id, address)."""
    addrs = [f"dg-{uuid.uuid4().hex[:10]}@example.com" for _ in range(n)]
    lids = submit(p, "jobsnearby", [{"email": a, "first_name": "Dee", "partner": "indeed-xml", "list": "daily-jobs",
                                     "location": {"zip": "10001", "country": "US"}} for a in addrs])
    wait_for(lambda: all(p.redis.exists(f"ls:lead:jobsnearby:{lid}") for lid in lids), 60, what="leads accepted")
    return list(zip(lids, addrs))


def mails_to(address: str) -> list[email.message.EmailMessage]:
    out = []
    for path in CTX["mail"].glob("*.eml"):
        raw = path.read_bytes()
        if f"To: {address}".encode() in raw or f"<{address}>".encode() in raw:
            out.append(email.message_from_bytes(raw, policy=email.policy.default))
    return out


def text_of(msg) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def send_time_ahead(hours: int = 2) -> tuple[str, int]:
    """A UTC send time `hours` ahead (whole hours), and its instant."""
    at = (int(time.time() * 1000) // HOUR_MS + hours) * HOUR_MS
    return time.strftime("%H:%M", time.gmtime(at / 1000)), at


def move_clock_to(p, at_ms: int) -> None:
    p.redis.set("ls:clockskew", at_ms - int(time.time() * 1000) + 1000)


def run_hash(p, run: str) -> dict:
    return {k.decode(): v.decode() for k, v in p.redis.hgetall(f"ls:dgrun:{run}").items()}


def topic_events(p, topic: str) -> list[tuple[str, dict, bytes, bytes]]:
    """Every event on one of the platform's topics so far: (name, event, key, value)."""
    name = f"{p.prefix}{topic}"
    c = Consumer({"bootstrap.servers": p.settings.kafka_bootstrap, "group.id": f"t-{uuid.uuid4().hex[:6]}",
                  "enable.auto.commit": False})
    parts = c.list_topics(name, timeout=10).topics[name].partitions
    out = []
    for part in parts:
        lo, hi = c.get_watermark_offsets(TopicPartition(name, part), timeout=10)
        if hi <= lo:
            continue
        c.assign([TopicPartition(name, part, lo)])
        got = 0
        while got < hi - lo:
            for m in c.consume(500, timeout=2):
                if m.error():
                    continue
                got += 1
                try:
                    ev_name, ev = CODEC.decode(m.value())
                except DecodeError:  # the queue-path test's junk
                    continue
                out.append((ev_name, ev, m.key(), m.value()))
    c.close()
    return out


# -- the input -------------------------------------------------------------------------------

def test_bad_activity_on_the_queue_path_is_dead_lettered_with_its_reason_and_the_rest_kept(iso):
    now = int(time.time() * 1000)

    def posted(item: str, **over) -> bytes:
        ev = {"event_id": new_event_id(now, os.urandom(10)), "tenant": "jobsnearby", "occurred_at": now,
              "schema": "activity.posted@1", "causation_id": None, "source": "queue", "item_id": item,
              "group_id": "q-group", "group_kind": "community", "title": "Queued", "url": "https://q.test/1",
              "score": 1.0, "author_lead_id": None, "posted_at": now, **over}
        return CODEC.encode("activity.posted", ev)
    joined = {"event_id": new_event_id(now, os.urandom(10)), "tenant": "jobsnearby", "occurred_at": now,
              "schema": "activity.joined@1", "causation_id": None, "source": "queue", "lead_id": "L-q",
              "group_id": "q-group", "group_kind": "community", "timezone": "Mars/Olympus"}
    iso.produce("activity.events", [(b"q", b"not avro at all"), (b"q", posted("nan", score=float("nan"))),
                                    (b"q", posted("t", tenant="no-such-brand")),
                                    (b"L-q", CODEC.encode("activity.joined", joined)), (b"q", posted("good"))])
    wait_for(lambda: iso.redis.exists("ls:dgitem:jobsnearby:good"), 60, what="the good item kept")
    dead = wait_for(lambda: len(d := dlq_reasons(iso, "activity.events")) >= 4 and d, 60, what="4 dead letters")
    assert any("not a finite number" in r for r in dead) and any("no-such-brand" in r for r in dead)
    assert any("Mars/Olympus" in r for r in dead) and len(dead) == 4
    assert not iso.redis.exists("ls:dgitem:jobsnearby:nan") and iso.redis.hget("ls:dgtz:jobsnearby", "L-q") is None


def dlq_reasons(p, topic: str) -> list[str]:
    name = f"{p.prefix}{topic}.dlq"
    c = Consumer({"bootstrap.servers": p.settings.kafka_bootstrap, "group.id": f"t-{uuid.uuid4().hex[:6]}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([name])
    out, idle = [], 0
    while idle < 3:
        msgs = c.consume(100, timeout=1)
        idle = idle + 1 if not msgs else 0
        out += [dict(m.headers() or [])["dlq.reason"].decode() for m in msgs if not m.error()]
    c.close()
    return out


def test_bad_activity_is_refused_with_the_field_named_and_nothing_is_produced(iso):
    cases = [
        ({"kind": "posted", "group_id": "g1", "title": "t", "url": "https://x.test/1"}, "item_id"),
        ({"kind": "posted", "group_id": "g1", "item_id": "i", "title": "t", "url": "javascript:alert(1)"}, "url"),
        ({"kind": "joined", "group_id": "g1"}, "exactly one of"),
        ({"kind": "joined", "group_id": "g 1", "lead_id": "x"}, "group id"),
        ({"kind": "joined", "group_id": "g1", "lead_id": "x", "timezone": "Mars/Olympus"}, "IANA"),
        ({"kind": "posted", "group_id": "g1", "item_id": "i", "title": "t", "url": "https://x.test", "score": "high"},
         "score"),
        ({"kind": "shared", "group_id": "g1"}, "kind"),
    ]
    for body, words in cases:
        r = post(iso, body)
        assert r.status_code == 422, (body, r.text)
        assert words in r.text, (body, r.text)
    r = post(iso, {"kind": "joined", "group_id": "g1", "email": "nobody-known@example.com"})
    assert r.status_code == 422 and r.json()["error"] == "unknown_person"
    r = post(iso, {"kind": "joined", "group_id": "g1", "lead_id": "L"}, headers={"authorization": "Bearer ls_nope"})
    assert r.status_code == 401
    r = post(iso, {"events": [{"kind": "left", "group_id": "g1", "lead_id": "L"}] * 1001}, "/v1/activity/batch")
    assert r.status_code == 413
    # a batch with one bad event takes none of them
    r = post(iso, {"events": [{"kind": "posted", "group_id": "g1", "item_id": "ok", "title": "t",
                               "url": "https://x.test/ok"}, {"kind": "posted", "group_id": "g1"}]}, "/v1/activity/batch")
    assert r.status_code == 422 and "events.1" in r.text
    assert not [e for e in topic_events(iso, "activity.events") if e[1].get("item_id") == "ok"]


def test_a_digest_goes_once_to_each_member_with_something_new_priority_first_inactive_left_out(iso):
    hhmm, send_at = send_time_ahead()
    put(iso, Ref("digest", "jobsnearby", "community"), DigestConfig.model_validate({
        "list": "daily-jobs", "template": "digest", "send_time": hhmm, "top_k": 3, "catch_up_hours": 1,
        "group_kinds": ["community"], "inactive_days": 2, "large_run_members": 1, "priority_active_days": 1,
    }).model_dump(mode="json"))
    people = accepted_leads(iso, 6)
    (a, a_addr), (b, b_addr), (c, c_addr), (d, d_addr), (e, e_addr), (f, f_addr) = people
    now = int(time.time() * 1000)
    iso_at = lambda ms: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))  # noqa: E731
    joins = [{"kind": "joined", "group_id": "nurses-nyc", "lead_id": lid, "timezone": "UTC"} for lid in (a, b, c)]
    joins += [{"kind": "joined", "group_id": "acme-corp", "group_kind": "employer", "lead_id": d, "timezone": "UTC"},
              # E was last seen 3 days ago (left out: the run is large); F 1.5 days ago (standard path)
              {"kind": "joined", "group_id": "nurses-nyc", "lead_id": e, "timezone": "UTC", "at": iso_at(now - 3 * DAY)},
              {"kind": "joined", "group_id": "nurses-nyc", "email": f_addr, "timezone": "UTC",
               "at": iso_at(now - 36 * HOUR_MS)}]
    r = post(iso, {"events": joins}, "/v1/activity/batch")
    assert r.status_code == 202, r.text
    assert r.json()["events"][-1]["lead_id"] == f  # named by email, resolved to the lead id
    items = [{"kind": "posted", "group_id": "nurses-nyc", "item_id": f"p{n}", "title": f"Post number {n}",
              "url": f"https://community.test/p/{n}", "score": float(n)} for n in range(1, 7)]
    items[5]["author_lead_id"] = a  # A wrote the best post: everyone else sees it first, A never
    items += [{"kind": "posted", "group_id": "acme-corp", "group_kind": "employer", "item_id": "job-1",
               "title": "Employer news", "url": "https://community.test/j/1", "score": 100.0}]
    r = post(iso, {"events": items}, "/v1/activity/batch", headers={"Idempotency-Key": "posts-1"})
    assert r.status_code == 202
    again = post(iso, {"events": items}, "/v1/activity/batch", headers={"Idempotency-Key": "posts-1"})
    assert [x["event_id"] for x in again.json()["events"]] == [x["event_id"] for x in r.json()["events"]]
    wait_for(lambda: iso.redis.zcard(f"ls:dgpeople:jobsnearby:UTC") >= 6 and
             iso.redis.exists(f"ls:dgitem:jobsnearby:p6"), 30, what="activity kept")

    move_clock_to(iso, send_at)
    period = latest_period(DigestConfig(list="daily-jobs", send_time=hhmm), "UTC", send_at)
    run = run_id("jobsnearby", "community", "UTC", period.key)
    h = wait_for(lambda: (h := run_hash(iso, run)).get("finished_at") and h, 90, what="the run finished")
    assert (h["priority"], h["standard"], h["left_out"]) == ("4", "1", "1")  # A B C D now; F; E left out
    assert (h["requested"], h["nothing_new"], h["members"]) == ("4", "1", "5")

    # the group's best three of the period, less what was the member's own: A gets two
    for addr, expected in ((a_addr, [5, 4]), (b_addr, [6, 5, 4]), (c_addr, [6, 5, 4]), (f_addr, [6, 5, 4])):
        got = wait_for(lambda: mails_to(addr), 60, what=f"the digest to {addr}")
        assert len(got) == 1
        text = text_of(got[0])
        positions = [text.index(f"Post number {n}") for n in expected]
        assert positions == sorted(positions), text  # best first
        assert all(f"Post number {n}\n" not in text for n in set(range(1, 7)) - set(expected)), text
        assert "Employer news" not in text  # an employer group: not this digest's kind
    assert mails_to(d_addr) == [] and mails_to(e_addr) == []
    # an item's link goes through the tracking front (a click recorded) to the item
    lines = text_of(mails_to(b_addr)[0]).splitlines()
    link = lines[[n for n, line in enumerate(lines) if "Post number 6" in line][0] + 1].strip()
    assert link.startswith(iso.tracking_url) and "community.test" not in link
    hop = httpx.get(link, follow_redirects=False, timeout=10, headers={"user-agent": "Mozilla/5.0 (X11; Linux)"})
    assert hop.status_code in (302, 303, 307) and hop.headers["location"] == "https://community.test/p/6"

    done = [ev for name, ev, _, _ in topic_events(iso, "digests.events") if name == "digest.chunk_done"
            and ev["run"] == run]
    assert [ev["path"] for ev in sorted(done, key=lambda ev: ev["occurred_at"])] == ["priority", "standard"]
    names = [name for name, ev, _, _ in topic_events(iso, "digests.events") if ev["run"] == run]
    assert names.count("digest.planned") == 1 and names.count("digest.run_finished") >= 1
    CTX.update(run=run, people=people, send_at=send_at)


def test_chunks_redelivered_and_a_run_planned_again_send_nothing_twice(iso):
    run, people = CTX["run"], CTX["people"]
    chunks = [(k, v) for topic in ("digests.priority", "digests.standard")
              for name, ev, k, v in topic_events(iso, topic) if ev["run"] == run]
    assert chunks
    iso.produce("digests.priority", [(k, v) for k, v in chunks if b'priority' in v])
    iso.produce("digests.standard", [(k, v) for k, v in chunks if b'standard' in v])
    iso.redis.hdel(f"ls:dgrun:{run}", "produced")  # the planner plans the run once more
    wait_for(lambda: run_hash(iso, run).get("produced"), 30, what="the run planned again")
    for agent, topic in (("digests_priority", "digests.priority"), ("digests_standard", "digests.standard")):
        wait_for(lambda: drained(iso, agent, topic), 60, what=f"{topic} consumed to its end")
    wait_for(lambda: drained(iso, "sender_bulk", "sends.bulk"), 60, what="sends.bulk consumed to its end")
    after = run_hash(iso, run)
    assert (after["requested"], after["done_chunks"], after["members"]) == ("4", "2", "5")  # each chunk counted once
    requests = [ev["send_id"] for name, ev, _, _ in topic_events(iso, "sends.bulk") if ev.get("causation_id") == run]
    assert len(requests) == len(set(requests)) == 4  # chunks already done are not digested again
    for _, addr in people:
        assert len(mails_to(addr)) <= 1


def test_a_digest_worker_killed_mid_run_loses_no_member_and_sends_nobody_two(iso):
    members = accepted_leads(iso, 1000)
    hhmm, send_at = send_time_ahead(3)
    put(iso, Ref("digest", "jobsnearby", "big"), DigestConfig.model_validate({
        "list": "daily-jobs", "template": "digest", "send_time": hhmm, "top_k": 2, "catch_up_hours": 1,
        "group_kinds": ["feed"]}).model_dump(mode="json"))
    now = int(time.time() * 1000)
    records = []
    for lid, _ in members:
        ev = {"event_id": new_event_id(now, os.urandom(10)), "tenant": "jobsnearby", "occurred_at": now,
              "schema": "activity.joined@1", "causation_id": None, "source": "test", "lead_id": lid,
              "group_id": "big-feed", "group_kind": "feed", "timezone": "Europe/London"}
        records.append((lid.encode(), CODEC.encode("activity.joined", ev)))
    for n in range(5):
        ev = {"event_id": new_event_id(now, os.urandom(10)), "tenant": "jobsnearby", "occurred_at": now,
              "schema": "activity.posted@1", "causation_id": None, "source": "test", "item_id": f"bf{n}",
              "group_id": "big-feed", "group_kind": "feed", "title": f"Feed item {n}", "url": f"https://f.test/{n}",
              "score": float(n), "author_lead_id": None, "posted_at": now}
        records.append((b"big-feed", CODEC.encode("activity.posted", ev)))
    iso.produce("activity.events", records)
    wait_for(lambda: iso.redis.zcard("ls:dgpeople:jobsnearby:Europe/London") >= 1000, 60, what="members kept")

    period = latest_period(DigestConfig(list="daily-jobs", send_time=hhmm), "Europe/London", send_at)
    run = run_id("jobsnearby", "big", "Europe/London", period.key)
    move_clock_to(iso, send_at)
    wait_for(lambda: int(run_hash(iso, run).get("done_chunks") or 0) >= 1, 90, every=0.01, what="the first chunk done")
    for w in iso.supervisor.workers("digests_priority"):
        os.kill(w["pid"], signal.SIGKILL)
    at_kill = int(run_hash(iso, run)["done_chunks"])
    assert at_kill < 50  # killed mid-run
    h = wait_for(lambda: (h := run_hash(iso, run)).get("finished_at") and h, 180, what="the run finished")
    assert (h["members"], h["requested"], h["done_chunks"], h["chunks"]) == ("1000", "1000", "50", "50")
    requested = [ev["send_id"] for name, ev, _, _ in topic_events(iso, "sends.bulk")
                 if name == "send.requested" and ev["causation_id"] == run]
    assert set(requested) == {digest_send_id("jobsnearby", "big", lid, period.key) for lid, _ in members}
    for _, addr in members:
        got = wait_for(lambda: mails_to(addr), 120, what=f"the digest to {addr}")
        assert len(got) == 1


def drained(p, agent: str, topic: str) -> bool:
    """The agent's consumer group has committed every message of the topic."""
    name = f"{p.prefix}{topic}"
    c = Consumer({"bootstrap.servers": p.settings.kafka_bootstrap, "group.id": f"{p.prefix}leadstream-{agent}",
                  "enable.auto.commit": False})
    try:
        parts = [TopicPartition(name, n) for n in c.list_topics(name, timeout=10).topics[name].partitions]
        committed = c.committed(parts, timeout=10)
        return all(c.get_watermark_offsets(tp, timeout=10)[1] <= max(tp.offset, 0) for tp in committed)
    finally:
        c.close()


def test_every_digest_key_belongs_to_a_declared_family_with_its_bound(iso):
    """After the runs above: the private Redis holds only declared families, TTL families within
    their lifetimes, and every digest family is among them (so the check covers them)."""
    from projections.redis_keys import FAMILIES, family_of
    counts, strays = {f.name: 0 for f in FAMILIES}, []
    for key in iso.redis.scan_iter(count=10000):
        fam = family_of(key.decode())
        if fam is None:
            strays.append(key.decode())
            continue
        counts[fam.name] += 1
        if fam.bound == "ttl":
            ttl = iso.redis.ttl(key)
            assert ttl == -2 or 0 <= ttl <= fam.max_ttl_s, f"{key!r}: TTL {ttl} (at most {fam.max_ttl_s})"
    assert not strays[:20], f"keys of no declared family: {strays[:20]}"
    for name in ("digest_bucket", "digest_item", "digest_memberships", "digest_people", "digest_zone_of",
                 "digest_zones", "digest_groups", "digest_snapshot", "digest_run", "digest_chunk", "digest_last_run",
                 "digest_first_seen"):
        assert counts[name] > 0, name
    assert counts["digest_memberships"] <= counts["lead"]  # one per member, and members are leads
    assert counts["digest_zones"] == counts["digest_zone_of"] == counts["digest_groups"] == 1  # one tenant


DIGEST_STATE = ("ls:dgtop:*", "ls:dgitem:*", "ls:dgmem:*", "ls:dgpeople:*", "ls:dgtz:*", "ls:dgzones:*",
                "ls:dggroup:*")


def digest_state(r) -> dict:
    """Every item and membership key with its contents (scores and fields as Redis holds them)."""
    out = {}
    for pattern in DIGEST_STATE:
        for k in r.scan_iter(match=pattern, count=10000):
            kind = r.type(k)
            out[k] = (r.zrange(k, 0, -1, withscores=True) if kind == b"zset" else r.hgetall(k) if kind == b"hash"
                      else sorted(r.smembers(k)))
    return out


def test_items_and_memberships_wiped_are_rebuilt_equal_by_the_replay_and_nothing_is_sent_again(iso):
    people = CTX["people"]
    iso.stop_workers()
    try:
        before = digest_state(iso.redis)
        assert any(k.startswith(b"ls:dgtop:") for k in before) and any(k.startswith(b"ls:dgmem:") for k in before)
        for pattern in DIGEST_STATE:
            for k in iso.redis.scan_iter(match=pattern):
                iso.redis.delete(k)
        out = iso.replay("--redis")
        assert "replay done" in out, out
        assert digest_state(iso.redis) == before
    finally:
        iso.start_workers()
    for agent in AGENTS:
        iso.supervisor.wait(lambda s: any(w["ready"] for w in s["workers"]), agent, 120, f"the {agent} worker")
    time.sleep(3)  # a planner tick or more: the runs are there, so nothing is planned or sent again
    for _, addr in people:
        assert len(mails_to(addr)) <= 1
