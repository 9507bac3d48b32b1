"""The fault drill's invariants, each returning (how many things were checked, violations)."""
from __future__ import annotations

import time
from collections import Counter
from email.parser import BytesHeaderParser

import httpx
import redis

from projections.clickhouse import connect
from scaling.client import SupervisorClient
from stack.chaos_faults import Fault
from stack.chaos_load import TENANT, Ledger
from streams.settings import Settings

KAFKA_GRACE_S = 15.0  # after the broker is back, producers reconnect: a 503 then is still the outage's
RESTART_GRACE_S = 5.0  # a process killed and started again: connections refused until it listens

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


def sent_once(s: Settings, since: float) -> Check:
    parser, seen = BytesHeaderParser(), Counter()
    for path in s.mail_dir.glob("*.eml"):
        if path.stat().st_mtime < since:
            continue
        with open(path, "rb") as f:
            sid = parser.parse(f).get("X-Leadstream-Send")
        if sid:
            seen[sid] += 1
    return sum(seen.values()), [f"{sid}: {n} times" for sid, n in seen.items() if n > 1]


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


def _within(t: float, windows: list[tuple[float, float]], grace: float) -> bool:
    return any(a <= t <= b + grace for a, b in windows)


def no_5xx(ledger: Ledger, faults: list[Fault]) -> Check:
    kafka = [(f.began, f.ended) for f in faults if f.kind == "kafka"]
    api = [(f.began, f.ended) for f in faults if f.kind == "kill_api"]
    bad = [f"{code} at {t:.0f}" for t, code in ledger.server_errors if code != 503 or not _within(t, kafka, KAFKA_GRACE_S)]
    return sum(ledger.statuses.values()) + ledger.unreachable, bad + (
        [f"{ledger.unreachable} requests unanswered"] if ledger.unreachable and not api else [])


def tracking_answered(ledger: Ledger, faults: list[Fault]) -> Check:
    """The tracking front answered every request but while it was being restarted, and never
    a 5xx but a 503 for a link it could not look up while Redis was down."""
    down = [(f.began, f.ended) for f in faults if f.kind == "kill_tracking"]
    redis_down = [(f.began, f.ended) for f in faults if f.kind == "redis"]

    def excused(t: float, what: str) -> bool:
        if what == "503":
            return _within(t, redis_down, RESTART_GRACE_S)
        return not what.isdigit() and _within(t, down, RESTART_GRACE_S)  # refused while it restarted
    bad = [f"{what} at {t:.0f}" for t, what in ledger.hit_failures if not excused(t, what)]
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
