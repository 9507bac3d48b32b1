"""The consent ledger end to end on the live stack: records through the API (every refusal
named, nothing taken from a batch with one bad record, a retry recorded once), folded by the
hygiene agent into the lead's current consent (by the records' own time, not their arrival),
checked by the sender (a withdrawn marketing consent skips the lead's messages; a later consent
given lets them go), every record in ClickHouse; and the projection rebuilt by the replay."""
from __future__ import annotations

import os
import random
import time

from domain.identity import new_event_id
from schemas.codec import default_codec
from stack.isolated import IsolatedPlatform
from tests.integration.conftest import auth, email_lead_id, read_model, wait_for
from tests.integration.test_api import lead

CODEC = default_codec()
T = "jobsnearby"


def consent_of(api, key: str, **who) -> dict:
    r = api.get("/v1/consent", params=who, headers=auth(key))
    assert r.status_code == 200, r.text
    return r.json()


def record(api, key: str, body: dict, **headers):
    return api.post("/v1/consent", json=body, headers={**auth(key), **headers})


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def send_request(settings, producer, lid: str, n: int) -> str:
    """A welcome request for the lead, produced as the planner would; returns its send id."""
    now = int(time.time() * 1000)
    sid = f"consent-test-{lid}-{n}"
    req = {"event_id": new_event_id(now, os.urandom(10)), "tenant": T, "occurred_at": now,
           "schema": "send.requested@4", "causation_id": None, "source": "test", "lead_id": lid, "send_id": sid,
           "channel": "email", "list": "daily-jobs", "kind": "welcome", "due_at": now,
           "local_date": time.strftime("%Y-%m-%d", time.gmtime(now / 1000)), "attempt": 1, "not_before": None,
           "trigger": None, "partner": "ziprecruiter"}
    producer.produce(f"{settings.topic_prefix}sends.priority", key=lid.encode(),
                     value=CODEC.encode("send.requested", req))
    producer.flush(10)
    return sid


def outcome(ch, settings, sid: str):
    rows = ch.execute(f"SELECT event_type, visitParamExtractString(payload, 'reason') FROM "
                      f"{settings.clickhouse_database}.events WHERE event_type IN ('send.skipped', "
                      f"'send.dispatched', 'send.failed') AND visitParamExtractString(payload, 'send_id') = %(s)s",
                      {"s": sid})
    return rows[0] if rows else None


def test_a_withdrawal_stops_the_leads_messages_until_a_later_consent_and_an_older_record_changes_nothing(
        api, keys, uid, ch, settings, producer):
    key, address = keys[T], f"ann.{uid}@example.com"
    given_at = int(time.time() * 1000) - 3_600_000
    r = api.post("/v1/leads", json=lead(uid, consent={"at": iso(given_at), "ip": "203.0.113.9",
                                                      "text": "Send me jobs"}), headers=auth(key))
    assert r.status_code == 202, r.text
    lid = r.json()["lead_id"]
    read_model(api, key, lid, lambda d: d["status"] == "accepted")
    first = wait_for(lambda: (c := consent_of(api, key, email=address))["purposes"] and c, 60,
                     what="the consent the lead came with")
    assert first["purposes"]["marketing"]["granted"] is True and first["purposes"]["marketing"]["at"] == given_at
    assert first["purposes"]["marketing"]["via"] == "lead:ziprecruiter" and first["sending_allowed"] is True

    now = int(time.time() * 1000)
    r = record(api, key, {"email": address.upper(), "granted": False, "via": "preference_center",
                          "ip": "198.51.100.4"})
    assert r.status_code == 202, r.text
    assert (r.json()["lead_id"], r.json()["channel"], r.json()["purpose"]) == (lid, "email", "marketing")
    wait_for(lambda: not consent_of(api, key, lead_id=lid)["sending_allowed"], 60, what="the withdrawal folded")
    skipped = send_request(settings, producer, lid, 1)
    assert wait_for(lambda: outcome(ch, settings, skipped), 90, what="the request screened") == (
        "send.skipped", "consent_withdrawn")

    # last year's form imported today: older than the withdrawal, it changes nothing
    r = record(api, key, {"lead_id": lid, "granted": True, "via": "import", "text": "Old form",
                          "at": iso(now - 86_400_000)})
    assert r.status_code == 202, r.text
    marker = record(api, key, {"lead_id": lid, "purpose": "profiling", "granted": False, "via": "import"})
    assert marker.status_code == 202
    wait_for(lambda: "profiling" in consent_of(api, key, lead_id=lid)["purposes"], 60, what="the records after it")
    assert consent_of(api, key, lead_id=lid)["sending_allowed"] is False

    r = record(api, key, {"lead_id": lid, "granted": True, "via": "signup_form", "text": "Yes, jobs again",
                          "ip": "2001:db8::5"})
    assert r.status_code == 202
    wait_for(lambda: consent_of(api, key, lead_id=lid)["sending_allowed"], 60, what="the new consent folded")
    going = send_request(settings, producer, lid, 2)
    assert wait_for(lambda: outcome(ch, settings, going), 90, what="the second request screened")[0] == "send.dispatched"

    rows = wait_for(lambda: (x := ch.execute(
        f"SELECT event_type, visitParamExtractString(payload, 'via') FROM {settings.clickhouse_database}.events "
        f"FINAL WHERE lead_id = %(l)s AND event_type LIKE 'consent.%%' ORDER BY event_id", {"l": lid})) and
        len(x) == 4 and x, 60, what="the ledger in ClickHouse")
    assert sorted(rows) == sorted([("consent.withdrawn", "preference_center"), ("consent.given", "import"),
                                   ("consent.withdrawn", "import"), ("consent.given", "signup_form")])
    sealed_in_clickhouse(ch, settings, lid)


def sealed_in_clickhouse(ch, settings, lid: str) -> None:
    """The records' ip and text are sealed in the log (and so in ClickHouse): no clear ip, and
    they open with the lead's own data key only."""
    import asyncio

    import orjson

    from domain.sealing import is_sealed, open_event
    from runtime.deps import build
    payloads = [(t, orjson.loads(p)) for t, p in ch.execute(
        f"SELECT event_type, payload FROM {settings.clickhouse_database}.events FINAL WHERE lead_id = %(l)s "
        f"AND event_type LIKE 'consent.%%'", {"l": lid})]
    assert payloads and not any("198.51.100.4" in str(p) or "2001:db8::5" in str(p) for _, p in payloads)
    assert all(is_sealed(p["ip"]) for _, p in payloads if p["ip"] is not None)

    async def keys():
        deps = build(settings)
        try:
            return await deps.data_keys().keys_for(T, [lid], 0, create=False)
        finally:
            await deps.redis.aclose()
    dek = asyncio.run(keys())[lid]
    opened = {open_event(t, p, dek)["ip"] for t, p in payloads}
    assert opened == {None, "198.51.100.4", "2001:db8::5"}


def test_every_bad_record_is_refused_by_name_and_a_batch_is_all_or_nothing(api, keys, uid):
    key = keys[T]
    r = api.post("/v1/leads", json=lead(uid), headers=auth(key))
    lid = r.json()["lead_id"]
    read_model(api, key, lid, lambda d: d["status"] == "accepted")
    cases = [({"lead_id": lid, "granted": True, "via": "x"}, "text"),
             ({"lead_id": lid, "granted": False, "via": "x", "ip": "999.1.1.1"}, "ip"),
             ({"lead_id": lid, "email": "a@b.test", "granted": False, "via": "x"}, "exactly one"),
             ({"lead_id": lid, "granted": False, "via": "x", "at": "2026-01-01T00:00:00"}, "time zone"),
             ({"lead_id": lid, "granted": False, "via": "x", "at": iso(int(time.time() * 1000) + 3_600_000)},
              "future"),
             ({"lead_id": lid, "granted": False, "via": "x", "purpose": "ALL"}, "purpose"),
             ({"lead_id": lid, "granted": False, "via": "x", "extra": 1}, "extra")]
    for body, problem in cases:
        r = record(api, key, body)
        assert r.status_code == 422 and problem in r.text.lower(), (body, r.text)
    stranger = record(api, key, {"email": f"nobody.{uid}@example.com", "granted": False, "via": "x"})
    assert stranger.status_code == 422 and stranger.json()["error"] == "unknown_person"
    # another brand's key cannot reach this lead: to it, the person is unknown
    other = record(api, keys["hireflow"], {"lead_id": lid, "granted": False, "via": "x"})
    assert other.status_code == 422 and other.json()["error"] == "unknown_person"
    assert api.get("/v1/consent", params={"lead_id": lid}, headers=auth(keys["hireflow"])).status_code == 404
    assert record(api, "ls_not_a_key", {"lead_id": lid, "granted": False, "via": "x"}).status_code == 401

    batch = {"records": [{"lead_id": lid, "granted": False, "via": "x"},
                         {"email": f"nobody.{uid}@example.com", "granted": False, "via": "x"}]}
    r = api.post("/v1/consent/batch", json=batch, headers=auth(key))
    assert r.status_code == 422 and r.json()["problems"][0]["field"] == "records.1.email"
    too_many = {"records": [{"lead_id": lid, "granted": False, "via": "x"}] * (settings_max(api) + 1)}
    assert api.post("/v1/consent/batch", json=too_many, headers=auth(key)).status_code == 413
    # a record taken after them: once it is folded, anything a refused request produced would be too
    assert record(api, key, {"lead_id": lid, "purpose": "analytics", "granted": True, "via": "x",
                             "text": "ok"}).status_code == 202
    purposes = wait_for(lambda: (c := consent_of(api, key, lead_id=lid)["purposes"]) and c, 60, what="the marker")
    assert list(purposes) == ["analytics"]  # nothing of any refused record


def settings_max(api) -> int:
    from streams.settings import get_settings
    return get_settings().max_batch_leads


def test_a_retried_record_is_recorded_once(api, keys, uid, ch, settings):
    key = keys[T]
    lid = api.post("/v1/leads", json=lead(uid), headers=auth(key)).json()["lead_id"]
    read_model(api, key, lid, lambda d: d["status"] == "accepted")
    body = {"lead_id": lid, "granted": False, "via": "support_call", "idempotency_key": f"call-{uid}"}
    ids = {record(api, key, body).json()["event_id"] for _ in range(3)}
    batch = {"records": [{"lead_id": lid, "granted": True, "via": "form", "text": "ok"}]}
    again = {api.post("/v1/consent/batch", json=batch, headers={**auth(key), "Idempotency-Key": f"b-{uid}"})
             .json()["records"][0]["event_id"] for _ in range(2)}
    assert len(ids) == 1 and len(again) == 1
    count = wait_for(lambda: ch.execute(
        f"SELECT count() FROM {settings.clickhouse_database}.events FINAL WHERE lead_id = %(l)s "
        f"AND event_type LIKE 'consent.%%'", {"l": lid})[0][0] == 2, 60, what="two records in ClickHouse")
    assert count


def test_the_replay_rebuilds_every_leads_current_consent_as_the_agent_kept_it():
    with IsolatedPlatform(redis_db=52, agents=("hygiene",)) as p:
        rnd, now = random.Random(7), int(time.time() * 1000)
        records = []
        for i in range(300):
            lid = f"L{i % 40:03d}"
            granted = rnd.random() < 0.5
            name = "consent.given" if granted else "consent.withdrawn"
            ev = {"event_id": new_event_id(now + i, os.urandom(10)), "tenant": T, "occurred_at": now,
                  "schema": f"{name}@1", "causation_id": None, "source": "test", "lead_id": lid, "channel": "email",
                  "purpose": rnd.choice(["marketing", "marketing", "profiling"]), "at": now - rnd.randrange(5) * 1000,
                  "via": "import", "text": "t" if granted else None, "ip": None, "recorded_by": "test"}
            records.append((lid.encode(), CODEC.encode(name, ev)))
        p.produce("consent.events", records)
        # leads that came with consent: one later withdrawn (above, L000's records), two only by it
        from streams.settings import ROOT
        import json
        example = json.loads((ROOT / "schemas/lead/examples/accepted.v2.json").read_text())
        accepted = []
        for i, lid in enumerate(("L000", "LNEW1", "LNEW2")):
            ev = {**example, "event_id": new_event_id(now - 10_000 + i, os.urandom(10)), "lead_id": lid,
                  "occurred_at": now - 10_000, "address": f"{lid.lower()}@example.com",
                  "consent": {"at": now - 20_000, "ip": None, "text": "Jobs by email"}}
            accepted.append((lid.encode(), CODEC.encode("lead.accepted", ev)))
        p.produce("leads.events", accepted)

        def snapshot():
            keys = sorted(p.redis.keys("ls:consent*"))
            return {k: (p.redis.hgetall(k) if k.startswith(b"ls:consent:") else p.redis.smembers(k)) for k in keys}
        wait_for(lambda: len(p.redis.keys("ls:consent:*")) == 42, 60, what="42 leads' consent")
        wait_for(lambda: p.lag("hygiene") == 0, 90, what="the hygiene agent to have handled every record")
        live = snapshot()
        assert live[f"ls:consentoff:{T}".encode()]  # some leads withdrew
        assert live[f"ls:consent:{T}:LNEW1".encode()][b"marketing"].startswith(f"{now - 20_000}|0|".encode())
        p.stop_workers()
        p.redis.delete(*p.redis.keys("ls:consent*"))
        assert "replay done" in p.replay("--redis")
        assert snapshot() == live
