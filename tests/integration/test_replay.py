"""Projections are rebuilt from the topics and come out identical."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from stack.services import start, stop
from streams.settings import ROOT
from tests.integration.conftest import auth, read_model, wait_decisions


def _snapshot_redis(rds) -> dict:
    out = {k: rds.get(k) for k in rds.scan_iter("ls:lead:*", count=5000)}
    for k in rds.scan_iter("ls:optout:*"):
        out[k] = sorted(rds.smembers(k))
    return out


def _clickhouse_counts(ch, db: str) -> tuple:
    events = ch.execute(f"SELECT event_type, count(), uniqExact(event_id) FROM {db}.events FINAL "
                        f"WHERE event_type LIKE 'lead.%' GROUP BY event_type ORDER BY event_type")
    daily = ch.execute(f"SELECT tenant, event_type, reason, uniqExactMerge(events) FROM {db}.daily_lead_counts "
                       f"GROUP BY tenant, event_type, reason ORDER BY tenant, event_type, reason")
    history = ch.execute(f"SELECT entity_key, version, op, actor, data, change FROM {db}.config_history FINAL "
                         f"ORDER BY entity_key, version")
    return events, daily, history


@pytest.fixture
def workers_stopped(services):
    """The supervisor, and with it every worker, stopped for the replay; started again after."""
    stop(services["supervisor"], timeout=60)
    yield
    start(services["supervisor"], {**os.environ, "PYTHONPATH": str(ROOT)})


def _some_traffic(api, keys, uid, ch, settings):
    leads = [{"email": f"r{i}.{uid}@example.com", "partner": "ziprecruiter", "list": "daily-jobs"} for i in range(20)]
    leads += [{"email": f"r0.{uid}@example.com", "partner": "indeed-xml", "list": "warehouse"},
              {"email": f"r1.{uid}@mailinator.com", "partner": "indeed-xml", "list": "warehouse"}]
    r = api.post("/v1/leads/batch", json={"leads": leads}, headers=auth(keys["jobsnearby"])).json()
    wait_decisions(ch, settings.clickhouse_database, [x["event_id"] for x in r["leads"]])
    lid = r["leads"][5]["lead_id"]
    read_model(api, keys["jobsnearby"], lid)
    u = api.post(f"/v1/leads/{lid}/unsubscribe", headers=auth(keys["jobsnearby"])).json()
    wait_decisions(ch, settings.clickhouse_database, [u["event_id"]])
    read_model(api, keys["jobsnearby"], lid, lambda d: d["status"] == "unsubscribed")


def test_emptied_redis_and_clickhouse_are_rebuilt_identically(api, keys, uid, ch, settings, rds, workers_stopped):
    before_redis = _snapshot_redis(rds)
    before_ch = _clickhouse_counts(ch, settings.clickhouse_database)
    assert len(before_redis) > 20 and before_ch[0] and before_ch[2]  # lead events and configuration changes
    for k in list(rds.scan_iter("ls:lead:*", count=5000)):
        rds.delete(k)
    assert not list(rds.scan_iter("ls:lead:*"))
    out = subprocess.run([sys.executable, "-m", "runtime.replay"], cwd=ROOT, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "replay done" in out.stdout and "redis" in out.stdout
    assert _snapshot_redis(rds) == before_redis
    assert _clickhouse_counts(ch, settings.clickhouse_database) == before_ch


@pytest.fixture(autouse=True)
def _traffic_first(request, api, keys, ch, settings):
    # Make sure there is varied traffic (accepted, rejected, merged, unsubscribed) to replay,
    # decided while the workers still run.
    import uuid
    _some_traffic(api, keys, uuid.uuid4().hex[:8], ch, settings)


def _settled_marks(rds) -> dict[bytes, bytes]:
    return {k: v for k in rds.scan_iter("ls:send:*", count=5000)
            if (v := rds.get(k)) is not None and v.startswith((b"sent|", b"failed|"))}


def test_send_marks_lost_with_redis_come_back_from_the_send_events(rds, workers_stopped):
    """At most once survives a Redis that lost its marks: the replay writes each settled send's
    mark again from sends.events (the very event, so a redelivered request re-emits it instead
    of sending), with the lifetime it has left; a claim that is there is kept."""
    import orjson
    from projections.redis_sends import MARK_TTL_S
    before = _settled_marks(rds)
    assert len(before) >= 10, "no settled sends to lose"  # the traffic's welcome emails, at least
    keys = list(rds.scan_iter("ls:send:*", count=5000))
    for i in range(0, len(keys), 5000):
        rds.delete(*keys[i:i + 5000])
    rds.set("ls:send:a-live-claim", "inflight|someone|1", ex=3600)  # outlives the replay (minutes on a big stack)
    out = subprocess.run([sys.executable, "-m", "runtime.replay", "--redis"], cwd=ROOT, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert out.returncode == 0, out.stderr
    after = _settled_marks(rds)
    missing = [k for k in before if k not in after]
    assert not missing, f"{len(missing)} marks not rebuilt, e.g. {missing[:3]}"
    from schemas.codec import default_codec
    codec = default_codec()
    for k, v in before.items():
        word, _, doc = v.partition(b"|")
        word2, _, doc2 = after[k].partition(b"|")
        was, now = orjson.loads(doc), orjson.loads(doc2)
        assert word2 == word and now["name"] == was["name"], k
        assert all(now["event"][f] == was["event"][f] for f in ("event_id", "send_id", "occurred_at", "lead_id")), k
        codec.encode(now["name"], now["event"])  # what a redelivered request re-emits encodes again
        assert 0 < rds.pttl(k) <= MARK_TTL_S * 1000
    assert rds.get("ls:send:a-live-claim") == b"inflight|someone|1"
    rds.delete("ls:send:a-live-claim")


@pytest.fixture
def sent_leads(api, keys, uid, rds) -> list[str]:
    """Five leads whose welcome emails went out (their history is written after delivery)."""
    from tests.integration.conftest import wait_for
    leads = [{"email": f"sent{i}.{uid}@example.com", "partner": "ziprecruiter", "list": "daily-jobs",
              "location": {"zip": "10001", "country": "US"}} for i in range(5)]
    r = api.post("/v1/leads/batch", json={"leads": leads}, headers=auth(keys["jobsnearby"]))
    assert r.status_code == 202, r.text
    lids = [x["lead_id"] for x in r.json()["leads"]]
    wait_for(lambda: all(rds.exists(f"ls:hist:jobsnearby:{lid}") for lid in lids), 120, 0.5, "five welcome emails")
    return lids


def _sent_state(rds, lids: list[str]) -> dict:
    import orjson
    out = {}
    for k in rds.scan_iter("ls:link:*", count=5000):
        rec = orjson.loads(rds.get(k) or b"{}")
        if rec.get("lead_id") in lids:
            out[k] = rds.get(k)
    for lid in lids:
        out[f"hist:{lid}"] = rds.lrange(f"ls:hist:jobsnearby:{lid}", 0, -1)
        out[f"jobs:{lid}"] = rds.zrange(f"ls:sentjobs:jobsnearby:{lid}", 0, -1, withscores=True)
    return out


def _a_send_after_the_wipe(rds, lid: str, history: list[bytes]) -> bytes:
    """What the sender writes for a send to `lid` made after the wipe (projections/redis_sends)."""
    import orjson

    from projections.redis_sends import history_entry
    newest = orjson.loads(history[0])
    d = {**newest, "send_id": "after-the-wipe", "tenant": "jobsnearby", "lead_id": lid}
    entry = history_entry(d, newest["at"] + 60_000)
    rds.lpush(f"ls:hist:jobsnearby:{lid}", entry)
    rds.zadd(f"ls:sentjobs:jobsnearby:{lid}", {"jobsnearby:job:after-the-wipe": newest["at"] + 60_000})
    return entry


def test_links_histories_and_jobs_sent_lost_with_redis_come_back_and_old_links_still_redirect(
        sent_leads, rds, settings, workers_stopped):
    """A Redis wipe loses no tracked link: every composed message's links went to sends.links
    (acknowledged by Kafka) before the message left, and the replay writes them back, so a click
    on an email sent before the wipe still redirects. Each lead's send history and the jobs it was
    sent come back from send.dispatched; provider message ids too."""
    import httpx
    import orjson
    before = _sent_state(rds, sent_leads)
    links = [k for k in before if isinstance(k, bytes)]
    assert len(links) >= 5 * 3, f"the welcome emails' links: {len(links)}"
    assert all(before[f"hist:{lid}"] for lid in sent_leads) and any(before[f"jobs:{lid}"] for lid in sent_leads)
    pmsgs = {k: rds.get(k) for k in rds.scan_iter("ls:pmsg:*", count=5000)}
    for pattern in ("ls:link:*", "ls:hist:*", "ls:sentjobs:*", "ls:pmsg:*"):
        keys = list(rds.scan_iter(pattern, count=5000))
        for i in range(0, len(keys), 5000):
            rds.delete(*keys[i:i + 5000])
    assert not rds.exists(links[0]) and not rds.exists(f"ls:hist:jobsnearby:{sent_leads[0]}")
    # the workers go on until someone acts: a send made after the wipe is all the lead's history holds
    later = _a_send_after_the_wipe(rds, sent_leads[0], before[f"hist:{sent_leads[0]}"])
    out = subprocess.run([sys.executable, "-m", "runtime.replay", "--redis"], cwd=ROOT, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert out.returncode == 0, out.stderr
    after = _sent_state(rds, sent_leads)
    assert after[f"hist:{sent_leads[0]}"] == [later] + before[f"hist:{sent_leads[0]}"]  # merged, not skipped
    assert (b"jobsnearby:job:after-the-wipe", float(orjson.loads(later)["at"])) in after[f"jobs:{sent_leads[0]}"]
    rds.lrem(f"ls:hist:jobsnearby:{sent_leads[0]}", 0, later)
    rds.zrem(f"ls:sentjobs:jobsnearby:{sent_leads[0]}", "jobsnearby:job:after-the-wipe")
    after = _sent_state(rds, sent_leads)
    assert after == before
    assert all(0 < rds.pttl(k) <= 90 * 86_400_000 for k in links)
    assert {k: rds.get(k) for k in pmsgs} == pmsgs  # (none if no provider that calls back sent lately)
    click = next(orjson.loads(before[k]) for k in links if orjson.loads(before[k])["kind"] == "click"
                 and orjson.loads(before[k])["destination_url"])
    r = httpx.get(f"{settings.tracking_base_url}/c/{click['code']}", follow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["location"].startswith(click["destination_url"].split("?")[0])


def test_bootstrap_marks_a_fresh_redis_intact_and_leaves_a_wiped_one_to_the_replay():
    """ls:intact says Redis holds the platform's state (the tracking front's misses are 404s, the
    supervisor's gauge is 1). The bootstrap marks a Redis with nothing to lose yet; a Redis that
    lost its state while the topics hold events stays unmarked, with a warning, until the replay
    has rebuilt it."""
    import json

    from projections.redis_keys import INTACT
    from schemas.codec import SCHEMA_DIR, default_codec
    from stack.isolated import IsolatedPlatform
    accepted = json.loads((SCHEMA_DIR / "lead" / "examples" / "accepted.v2.json").read_text())
    with IsolatedPlatform(redis_db=15, agents=()) as p:
        assert p.redis.get(INTACT) == b"bootstrap"  # empty topics: nothing to lose
        p.produce("leads.events", [(accepted["lead_id"].encode(), default_codec().encode("lead.accepted", accepted))])
        p.redis.flushdb()  # the wipe
        out = p._run("-m", "runtime.bootstrap")
        assert "WARNING: Redis holds none of the platform's state" in out and not p.redis.exists(INTACT)
        assert "replay done" in p.replay("--redis")
        assert p.redis.get(INTACT) == b"replay"
        assert p.redis.exists(f"ls:lead:{accepted['tenant']}:{accepted['lead_id']}")
        assert "holds the platform's state" in p._run("-m", "runtime.bootstrap")


def _engagement_state(rds, lids: list[str]) -> dict:
    out = {}
    for lid in lids:
        out[f"eng:{lid}"] = rds.hgetall(f"ls:eng:jobsnearby:{lid}")
        out[f"seen:{lid}"] = rds.zscore("ls:lastseen:jobsnearby:email", lid)
    return out


def test_engagement_counters_last_seen_times_and_daily_counts_lost_with_redis_come_back(
        sent_leads, rds, settings, services):
    """After a wipe the hygiene agent would never prune a lead it no longer has a last-seen time
    for, scores would restart at zero, a redelivered open would count again and the senders
    would have no jobs until the feeds' next polls: the replay brings the last-seen times, the
    counters and the events counted lately back from the topics, each brand's sends of the day
    (its daily volume), the live jobs, the webhooks' first times and soft bounces, and the
    partners' leads of the day on capped lists."""
    import time

    import httpx
    import orjson

    from tests.integration.conftest import wait_for
    pixels = {}
    for k in rds.scan_iter("ls:link:*", count=5000):
        rec = orjson.loads(rds.get(k) or b"{}")
        if rec.get("lead_id") in sent_leads and rec["kind"] == "open":
            pixels[rec["lead_id"]] = rec["code"]
    assert set(pixels) == set(sent_leads)
    for n, lid in enumerate(sent_leads[:3]):  # three people open their welcome email
        r = httpx.get(f"{settings.tracking_base_url}/o/{pixels[lid]}", timeout=10,
                      headers={"User-Agent": f"Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 replay/{n}"})
        assert r.status_code == 200
    wait_for(lambda: all(rds.hget(f"ls:eng:jobsnearby:{lid}", "human_opens") == b"1" for lid in sent_leads[:3]),
             120, 0.5, "three human opens counted")
    stop(services["supervisor"], timeout=60)
    try:
        before = _engagement_state(rds, sent_leads)
        assert all(before[f"seen:{lid}"] for lid in sent_leads)
        assert before[f"seen:{sent_leads[0]}"] > before[f"seen:{sent_leads[4]}"] - 60_000  # the open moved it
        day = time.strftime("%Y-%m-%d", time.gmtime())
        jobs = {t: rds.hgetall(f"ls:jobs:{t}") for t in ("jobsnearby", "shiftly")}
        assert len(jobs["jobsnearby"]) > 1000
        firsts = {k: rds.get(k) for k in rds.scan_iter("ls:whfirst:*", count=5000)}
        softs = {k: rds.zrange(k, 0, -1, withscores=True) for k in rds.scan_iter("ls:soft:*", count=5000)}
        sources = {k: rds.get(k) for k in rds.scan_iter("ls:srccap:*", count=5000)}
        for pattern in ("ls:eng:*", "ls:engseen:*", "ls:lastseen:*", "ls:daycap:*", "ls:cap:*", "ls:jobs:*",
                        "ls:whfirst:*", "ls:soft:*", "ls:srccap:*"):
            keys = list(rds.scan_iter(pattern, count=5000))
            for i in range(0, len(keys), 5000):
                rds.delete(*keys[i:i + 5000])
        out = subprocess.run([sys.executable, "-m", "runtime.replay", "--redis"], cwd=ROOT, capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
        assert out.returncode == 0, out.stderr
        assert _engagement_state(rds, sent_leads) == before
        assert {t: rds.hgetall(f"ls:jobs:{t}") for t in jobs} == jobs
        # each first time of an observation on the topic is back as it was (a webhook no send was
        # found for is dropped, not produced: its first time is lost, and never read again)
        assert all(rds.get(k) in (None, v) for k, v in firsts.items())
        assert {k: rds.zrange(k, 0, -1, withscores=True) for k in rds.scan_iter("ls:soft:*", count=5000)} == softs
        # each count back, at least as high (every list is counted, also before a cap was set on it)
        assert all(int(rds.get(k) or 0) >= int(v) for k, v in sources.items())
        counted = [k for k in rds.scan_iter("ls:engseen:*", count=5000)]
        assert counted and all(0 < rds.pttl(k) <= 7 * 86_400_000 for k in counted[:50])
        volume = int(rds.get(f"ls:daycap:jobsnearby:email:{day}") or 0)
        assert volume >= 5  # at least the five welcomes (tests/runtime/test_replay_sent.py: how they are counted)
    finally:
        start(services["supervisor"], {**os.environ, "PYTHONPATH": str(ROOT)})
