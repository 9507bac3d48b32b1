"""The fault drill's invariants, each returning (how many things were checked, violations)."""
from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from email.parser import BytesHeaderParser

import httpx
import orjson
import redis
from confluent_kafka import Consumer, TopicPartition

from domain.identity import LeadIds
from projections.clickhouse import connect
from projections.event_rows import event_key
from scaling.client import SupervisorClient
from stack.chaos_faults import Fault
from runtime.deps import build
from stack.chaos_load import LIST, TENANT, Ledger
from streams.settings import Settings

KAFKA_GRACE_S = 15.0  # after the broker is back, producers reconnect: a 503 then is still the outage's
RESTART_GRACE_S = 5.0  # a process killed and started again: connections refused until it listens
CLIENT_TIMEOUT_S = 15.0  # the load's HTTP client gives up on the API after this (stack/chaos_load.py)

Check = tuple[int, list[str]]


def drained(s: Settings, timeout: float = 900.0) -> float:
    client, calm, t0, silent_since = SupervisorClient(s.supervisor_port), 0, time.monotonic(), None
    while time.monotonic() - t0 < timeout:
        try:
            lags = [a.get("lag") for a in client.status()["agents"].values()]
            silent_since = None
        except OSError:
            lags, silent_since = [None], silent_since or time.monotonic()
            if time.monotonic() - silent_since > 30:
                raise RuntimeError("the supervisor stopped answering (see .stack/logs/supervisor.log)")
        calm = calm + 1 if all(lag == 0 for lag in lags) else 0
        if calm >= 5:
            return time.monotonic() - t0
        time.sleep(1)
    raise RuntimeError("the backlog did not drain")


def decided_once(s: Settings, ledger: Ledger) -> Check:
    ch, r = connect(s.clickhouse_host, s.clickhouse_port), redis.Redis.from_url(s.redis_url)
    ids = sorted(ledger.answered)
    counts: dict[str, int] = {}
    for n in range(0, len(ids), 5000):
        counts.update(ch.execute(
            f"SELECT lead_id, uniqExact(event_id) FROM {s.clickhouse_database}.events "
            "WHERE tenant = %(t)s AND event_type IN ('lead.accepted', 'lead.rejected') AND lead_id IN %(ids)s "
            "GROUP BY lead_id", {"t": TENANT, "ids": tuple(ids[n:n + 5000])}))
    bad = [f"{lid}: {counts.get(lid, 0)} decisions" for lid in ids if counts.get(lid, 0) != 1]
    pipe = r.pipeline(transaction=False)
    for lid in ids:
        pipe.exists(f"ls:lead:{TENANT}:{lid}")
    missing = [lid for lid, ok in zip(ids, pipe.execute()) if not ok]
    return len(ids), bad + [f"{lid}: no read model" for lid in missing]


SEND_HEADER = re.compile(r"^X-Leadstream-Send:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


def sent_once(s: Settings, since: float) -> Check:
    """No send id reached the sinks twice: the SMTP relay's folder (since the drill began) and
    the brand's fallback provider (the Mailgun stand-in keeps each message's MIME)."""
    parser, seen = BytesHeaderParser(), Counter()
    for path in s.mail_dir.glob("*.eml"):
        if path.stat().st_mtime < since:
            continue
        with open(path, "rb") as f:
            sid = parser.parse(f).get("X-Leadstream-Send")
        if sid:
            seen[sid] += 1
    for msg in httpx.get(f"{s.providers_url}/sent/mailgun", timeout=60).json():
        if (m := SEND_HEADER.search(msg.get("mime") or "")) is not None:
            seen[m.group(1)] += 1
    return sum(seen.values()), [f"{sid}: {n} times" for sid, n in seen.items() if n > 1]


def sends_settled(s: Settings, ledger: Ledger) -> Check:
    """No send is lost: each accepted drill lead's welcome was dispatched, failed for good or
    skipped, or is waiting for its retry (deferred); none was requested and then left."""
    ch, ids = connect(s.clickhouse_host, s.clickhouse_port), sorted(ledger.answered)
    db, fates = s.clickhouse_database, {}
    for n in range(0, len(ids), 5000):
        chunk = tuple(ids[n:n + 5000])
        accepted = {lid for (lid,) in ch.execute(
            f"SELECT DISTINCT lead_id FROM {db}.events WHERE tenant = %(t)s AND event_type = 'lead.accepted' "
            "AND lead_id IN %(ids)s", {"t": TENANT, "ids": chunk})}
        seen = dict(ch.execute(
            f"SELECT lead_id, groupUniqArray(event_type) FROM {db}.send_events WHERE tenant = %(t)s "
            "AND kind = 'welcome' AND lead_id IN %(ids)s GROUP BY lead_id", {"t": TENANT, "ids": chunk}))
        fates.update((lid, set(seen.get(lid, []))) for lid in accepted)
    bad = [f"{lid}: {sorted(types) or 'no send event'}" for lid, types in fates.items()
           if not types & {"send.dispatched", "send.failed", "send.skipped", "send.deferred"}]
    waiting = sum(1 for t in fates.values() if "send.deferred" in t and not t & {"send.dispatched", "send.failed", "send.skipped"})
    if waiting:
        print(f"[chaos] {waiting} welcome emails still waiting for their retry", flush=True)
    return len(fates), bad


def hits_once(s: Settings, ledger: Ledger, run: str) -> Check:
    """Every hit the tracking front answered is one engagement event in ClickHouse (by its user agent)."""
    ch = connect(s.clickhouse_host, s.clickhouse_port)
    found = dict(ch.execute(
        f"SELECT visitParamExtractString(payload, 'user_agent') AS ua, uniqExact(event_id) "
        f"FROM {s.clickhouse_database}.events WHERE tenant = %(t)s "
        "AND event_type IN ('engagement.opened', 'engagement.clicked') AND position(payload, %(mark)s) > 0 "
        "GROUP BY ua", {"t": TENANT, "mark": f"chaos/{run}/"}))
    bad = [f"{ua.rsplit(' ', 1)[-1]}: {found.get(ua, 0)} events" for ua in ledger.hits if found.get(ua, 0) != 1]
    bad += [f"{ua.rsplit(' ', 1)[-1]}: in ClickHouse, never answered" for ua in found if ua not in ledger.hits]
    return len(ledger.hits), bad


def product_events_once(s: Settings, ledger: Ledger) -> Check:
    """Every product event answered 202 is one row in ClickHouse (a retried batch, with its
    idempotency keys, made no second event)."""
    ch, ids = connect(s.clickhouse_host, s.clickhouse_port), sorted(ledger.product)
    rows: dict[str, int] = {}
    for n in range(0, len(ids), 5000):
        rows.update(ch.execute(
            f"SELECT event_id, count() FROM {s.clickhouse_database}.events WHERE tenant = %(t)s "
            "AND event_type = 'product.tracked' AND event_id IN %(ids)s GROUP BY event_id",
            {"t": TENANT, "ids": tuple(ids[n:n + 5000])}))
    return len(ids), [f"{eid}: {rows.get(eid, 0)} rows" for eid in ids if rows.get(eid, 0) != 1]


def replied_texts(s: Settings, texts: set[str]) -> Counter:
    """How many engagement.replied events ClickHouse holds for each of these texts (the drill's
    replies: "... N" from +1212555NNNN), their sealed texts opened with the senders' data keys."""
    ids = LeadIds(s.lead_id_secret)
    leads = sorted({ids.of(TENANT, "sms", f"+1212555{int(t.rsplit(' ', 1)[1]) % 10_000:04d}") for t in texts})
    ch = connect(s.clickhouse_host, s.clickhouse_port)
    rows = []
    for n in range(0, len(leads), 2000):
        rows += ch.execute(f"SELECT event_id, any(payload) FROM {s.clickhouse_database}.events WHERE tenant = %(t)s "
                           "AND event_type = 'engagement.replied' AND lead_id IN %(l)s GROUP BY event_id",
                           {"t": TENANT, "l": tuple(leads[n:n + 2000])})

    async def opened() -> list[tuple[str, dict]]:
        deps = build(s)
        try:
            return await deps.sealer().open([("engagement.replied", orjson.loads(p)) for _, p in rows])
        finally:
            await deps.redis.aclose()
    return Counter(ev.get("text") for _, ev in asyncio.run(opened()))


def replies_once(s: Settings, ledger: Ledger, run: str) -> Check:
    """Every SMS reply the webhook endpoint answered 2xx for is one engagement.replied event."""
    mark = f"Thank you kindly {run} "
    found = {t: n for t, n in replied_texts(s, ledger.replies | ledger.replies_refused).items()
             if t and t.startswith(mark)}
    bad = [f"{text!r}: {found.get(text, 0)} events" for text in ledger.replies if found.get(text, 0) != 1]
    # a reply answered 503 because Kafka did not confirm it in time may still have been written
    # (the producer delivers it once the broker is back, or the broker had it and its answer was
    # lost): a 503 cannot know. Twilio's retry carries the same MessageSid, the event id, so it
    # collapses: once is right for those too; twice, or one never posted, is not.
    taken_anyway = [t for t in found if t not in ledger.replies and t in ledger.replies_refused and found[t] == 1]
    if taken_anyway:
        print(f"[chaos] {len(taken_anyway)} SMS replies answered 503 (or not answered) were taken all the same, "
              "once each", flush=True)
    bad += [f"{text!r}: {found[text]} events, never answered 2xx" for text in found
            if text not in ledger.replies and text not in taken_anyway]
    return len(ledger.replies), bad


def _within(t: float, windows: list[tuple[float, float]], grace: float, before: float = 0.0) -> bool:
    return any(a - before <= t <= b + grace for a, b in windows)


def _overlaps(made: float, answered: float, windows: list[tuple[float, float]], grace: float) -> bool:
    """Whether a request was in flight at some moment of a window (or its grace after)."""
    return any(made <= b + grace and answered >= a for a, b in windows)


def _at(t: float, faults: list[Fault]) -> str:
    """A monotonic time as seconds since the drill began."""
    start = faults[0].began - faults[0].at_s if faults else 0.0
    return f"+{t - start:.0f}s"


def no_5xx(ledger: Ledger, faults: list[Fault]) -> Check:
    """The API answered no 5xx but 503: while Kafka was down (every endpoint), while Redis was
    down or being rebuilt (product events: a person not found may not be rebuilt yet; webhooks:
    a provider message id cannot be looked up), and answered every request but while it was
    killed and started again (made in that window: refused or cut off)."""
    kafka = [(f.began, f.ended) for f in faults if f.kind == "kafka"]
    redis_out = [(f.began, f.ended) for f in faults if f.kind in ("redis", "redis_wipe")]
    api = [(f.began, f.ended) for f in faults if f.kind == "kill_api"]

    def excused(made: float, answered: float, code: int, what: str) -> bool:
        return code == 503 and (_overlaps(made, answered, kafka, KAFKA_GRACE_S)
                                or (not what.startswith("leads") and _overlaps(made, answered, redis_out, RESTART_GRACE_S)))
    bad = [f"{code} from {what}, made at {_at(made, faults)}, answered at {_at(answered, faults)}"
           for made, answered, code, what in ledger.server_errors if not excused(made, answered, code, what)]
    # a request made up to the client's timeout before the kill was in flight when it came
    bad += [f"unanswered, made at {_at(t, faults)}" for t in ledger.unreachable
            if not _within(t, api, RESTART_GRACE_S, before=CLIENT_TIMEOUT_S)]
    answered = sum(ledger.statuses.values()) + sum(ledger.product_statuses.values()) + sum(ledger.reply_statuses.values())
    return answered + len(ledger.unreachable), bad


def tracking_answered(ledger: Ledger, faults: list[Fault]) -> Check:
    """The tracking front answered every request but while it was being restarted, and never
    a 5xx but a 503 for a link it could not look up while Redis was down."""
    down = [(f.began, f.ended) for f in faults if f.kind == "kill_tracking"]
    # Redis down, or wiped and not yet rebuilt: a link not in the front's cache is a 503
    redis_down = [(f.began, f.ended) for f in faults if f.kind in ("redis", "redis_wipe")]

    def excused(t: float, what: str) -> bool:
        if what == "503":
            return _within(t, redis_down, RESTART_GRACE_S)
        return not what.isdigit() and _within(t, down, RESTART_GRACE_S)  # refused while it restarted
    bad = [f"{what} at {_at(t, faults)}" for t, what in ledger.hit_failures if not excused(t, what)]
    unanswered = sum(1 for _, what in ledger.hit_failures if not what.isdigit())
    return sum(ledger.hit_statuses.values()) + unanswered, bad


def alerts(s: Settings, faults: list[Fault], since: float, wait_s: float) -> tuple[list[dict], list[str]]:
    """Each alert a fault should raise, fired through Alertmanager to the Slack stand-in and
    resolved afterwards: waits up to wait_s for the last resolution. Returns a row per
    expected alert (fired/resolved seconds after the fault) and the violations."""
    expected = [(f, name, text) for f in faults for name, text in f.expects]
    deadline = time.monotonic() + wait_s
    while True:
        rows = [_alert_row(f, name, text, _notes(s, since)) for f, name, text in expected]
        if all(r["resolved_s"] is not None for r in rows) or time.monotonic() > deadline:
            break
        time.sleep(5)
    bad = [f"{r['alert']} ({r['names']}) " + ("never fired" if r["fired_s"] is None else "did not resolve")
           for r in rows if r["fired_s"] is None or r["resolved_s"] is None]
    return rows, bad


def _notes(s: Settings, since: float) -> list[tuple[float, str, str, str]]:
    """(received at, firing|resolved, alert name, text) of the Slack stand-in's alert messages since `since`."""
    got = httpx.get(f"{s.hooks_url}/received/alerts", timeout=10).json()
    out = []
    for m in got:
        if m["received_at"] < since:
            continue
        for a in (m["body"] or {}).get("attachments", []):
            state, _, name = a.get("title", "").partition(": ")
            out.append((m["received_at"], state, name, a.get("text", "")))
    return out


def _alert_row(f: Fault, name: str, text: str, notes: list) -> dict:
    wall_at = time.time() - (time.monotonic() - f.began)
    fired = [t for t, state, n, body in notes if n == name and state == "firing" and text in body and t >= wall_at]
    resolved = [t for t, state, n, body in notes if n == name and state == "resolved" and text in body
                and fired and t > min(fired)]
    return {"alert": name, "names": text, "fault": f.name,
            "fired_s": round(min(fired) - wall_at, 1) if fired else None,
            "resolved_s": round(min(resolved) - wall_at, 1) if resolved else None}


def clickhouse_equals_topics(s: Settings, since: float) -> Check:
    """Per event type, the drill brand's events on the analytics topics since the drill began
    (from the offsets of its start time to the ends now) are each in ClickHouse exactly once, and
    ClickHouse holds nothing from those offsets that the topics do not."""
    from agents.analytics import TOPICS
    from schemas.codec import DecodeError, default_codec
    codec, ranges, topic_keys = default_codec(), [], {}
    c = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": "chaos-check", "enable.auto.commit": False,
                  "enable.partition.eof": True})
    try:
        for name in (f"{s.topic_prefix}{t}" for t in TOPICS):
            parts = [TopicPartition(name, p, int(since * 1000)) for p in c.list_topics(name, timeout=10).topics[name].partitions]
            for tp in c.offsets_for_times(parts, timeout=30):
                end = c.get_watermark_offsets(TopicPartition(name, tp.partition), timeout=10)[1]
                if 0 <= tp.offset < end:
                    ranges.append((name, tp.partition, tp.offset, end))
        c.assign([TopicPartition(t, p, lo) for t, p, lo, _ in ranges])
        left = {(t, p): hi for t, p, _, hi in ranges}
        while left:
            for m in c.consume(5000, timeout=1.0):
                key = (m.topic(), m.partition())
                if m.error() or key not in left or m.offset() >= left[key]:
                    continue
                if m.offset() + 1 >= left[key]:
                    left.pop(key)
                try:
                    name, ev = codec.decode(m.value() or b"")
                except DecodeError:
                    continue
                if ev.get("tenant") == TENANT:
                    topic_keys.setdefault(name, set()).add(event_key(ev))
    finally:
        c.close()
    where = " OR ".join(f"(topic = '{t}' AND partition = {p} AND offset >= {lo} AND offset < {hi})"
                        for t, p, lo, hi in ranges) or "0"
    ch, db = connect(s.clickhouse_host, s.clickhouse_port), s.clickhouse_database
    in_range = {k: name for name, k in ch.execute(
        f"SELECT event_type, event_key FROM {db}.events WHERE tenant = %(t)s AND ({where})", {"t": TENANT})}
    wanted = {k: name for name, keys in topic_keys.items() for k in keys}
    rows: dict[str, int] = {}  # a key produced again lies at two offsets: ClickHouse keeps the first copy's
    every = sorted(wanted)
    for n in range(0, len(every), 5000):
        rows.update(ch.execute(f"SELECT event_key, count() FROM {db}.events WHERE tenant = %(t)s "
                               "AND event_key IN %(keys)s GROUP BY event_key", {"t": TENANT, "keys": tuple(every[n:n + 5000])}))
    bad = []
    for name in sorted(set(wanted.values()) | set(in_range.values())):
        keys = [k for k, nm in wanted.items() if nm == name]
        missing = sum(1 for k in keys if k not in rows)
        copies = sum(1 for k in keys if rows.get(k, 0) > 1)
        invented = sum(1 for k, nm in in_range.items() if nm == name and k not in wanted)
        if missing or copies or invented:
            bad.append(f"{name}: {len(keys)} in the topics; not in ClickHouse {missing}, in it twice {copies}, "
                       f"in it but not in the topics {invented}")
    return sum(len(k) for k in topic_keys.values()), bad


REPLAY_DB = 3  # a spare Redis database the drill's replay rebuilds into


def read_models_equal_replay(s: Settings, ledger: Ledger) -> tuple[int, list[str]]:
    """The live Redis read models of the drill's leads equal what a replay of the topics builds
    in a fresh database: each lead's read model, its place in the planner's schedule, its send
    history (newest first; sends of one millisecond in either order), its engagement counters
    and its last-seen time (what the hygiene agent prunes by)."""
    import subprocess
    import sys

    from stack.__main__ import child_env
    from streams.settings import ROOT
    url = s.redis_url.rsplit("/", 1)[0] + f"/{REPLAY_DB}"
    live, rebuilt = redis.Redis.from_url(s.redis_url), redis.Redis.from_url(url)
    rebuilt.flushdb()
    out = subprocess.run([sys.executable, "-m", "runtime.replay", "--redis"], cwd=ROOT,
                         env={**child_env(), "LEADSTREAM_REDIS_URL": url}, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        return 0, [f"the replay failed: {out.stderr[-500:]}"]
    try:
        ids, bad = sorted(ledger.answered), []
        for n in range(0, len(ids), 2000):
            chunk = ids[n:n + 2000]
            a, b = _models(live, chunk), _models(rebuilt, chunk)
            bad += [f"{lid}: {what} differs: live {x!r}, replayed {y!r}"
                    for lid in chunk for what, x, y in zip(MODEL_PARTS, a[lid], b[lid])
                    if x != y]
        return len(ids), bad
    finally:
        rebuilt.flushdb()


MODEL_PARTS = ("read model", "schedule", "send history", "engagement counters", "last seen")


def _models(r: redis.Redis, lids: list[str]) -> dict[str, tuple]:
    pipe = r.pipeline(transaction=False)
    for lid in lids:
        pipe.get(f"ls:lead:{TENANT}:{lid}")
        pipe.zscore(f"ls:due:{TENANT}", f"{lid}|{LIST}")
        pipe.lrange(f"ls:hist:{TENANT}:{lid}", 0, -1)
        pipe.hgetall(f"ls:eng:{TENANT}:{lid}")
        pipe.zscore(f"ls:lastseen:{TENANT}:email", lid)
    got, n = pipe.execute(), len(MODEL_PARTS)
    return {lid: (got[n * i], got[n * i + 1], _newest_first(got[n * i + 2]), got[n * i + 3], got[n * i + 4])
            for i, lid in enumerate(lids)}


def _newest_first(history: list[bytes]) -> list[bytes]:
    return sorted(history, key=lambda e: (orjson.loads(e)["at"], orjson.loads(e)["send_id"]), reverse=True)
