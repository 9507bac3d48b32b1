"""A small known history for the analytics tests, and the answers counted from it in Python.

`batches()` is what the analytics writer receives: a few hundred leads of two brands (and a
brand missing from the tenant file) over five days, with their sends and what people and
machines did with them, plus copies: events redelivered in later batches, a whole batch sent
again (a crash before the commit), a click revised to a machine, an open reported late but
earlier in time. `expected()` counts the answers from the distinct events, independently of
the SQL: the oracle the rollups must equal.
"""
from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from domain.analytics import METRICS, AnalyticsRequest, AnalyticsScope, buckets
from domain.analytics_catalogue import DEFER_REASONS, FAIL_REASONS, REJECT_REASONS, UNSUBSCRIBE_REASONS
from domain.identity import new_event_id

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
DAYS = [date(2025, 11, 23) + timedelta(days=i) for i in range(5)]  # 23..27; tests ask 24..26 mostly
SHARES = {"jobsnearby": 0.7, "hireflow": 0.5}  # "ghost" has none: its split is unknown
BRANDS = {
    "jobsnearby": {"partners": ["ziprecruiter", "indeed-xml"], "lists": {"daily-jobs": "email", "sms-alerts": "sms"}},
    "hireflow": {"partners": ["careers", "ziprecruiter"], "lists": {"daily": "email"}},
    "ghost": {"partners": ["ziprecruiter"], "lists": {"daily": "email"}},
}
PLACES = [("US", "NY"), ("US", "TX"), ("US", "CA"), ("CA", "ON")]
KEYWORDS = ["nurse", "driver", "cook", "icu"]
CATEGORIES = ["healthcare", "logistics"]
PROVIDERS = {"email": ["smtp", "sendgrid"], "sms": ["twilio"]}


def _example(name: str, version: int) -> dict:
    agg, ev = name.split(".")
    return json.loads((SCHEMAS / agg / "examples" / f"{ev}.v{version}.json").read_text())


_EXAMPLES = {n: _example(n, v) for n, v in [
    ("lead.submitted", 1), ("lead.accepted", 1), ("lead.rejected", 1), ("lead.resubmitted", 1),
    ("lead.unsubscribed", 2), ("send.requested", 2), ("send.dispatched", 2), ("send.failed", 2),
    ("send.deferred", 2), ("send.skipped", 2), ("send.delivered", 2), ("send.bounced", 2),
    ("engagement.opened", 2), ("engagement.clicked", 2), ("engagement.complained", 2), ("engagement.replied", 2)]}


class History:
    def __init__(self, seed: int = 7):
        self.rnd = random.Random(seed)
        self.events: list[tuple[str, dict]] = []
        self.late: list[tuple[str, dict]] = []  # written in a later batch than their time says
        self.n = 0

    def ev(self, name: str, at_ms: int, later: bool = False, **fields) -> dict:
        self.n += 1
        e = dict(_EXAMPLES[name])
        e.update(event_id=new_event_id(at_ms, self.n.to_bytes(10, "big")), occurred_at=at_ms, **fields)
        (self.late if later else self.events).append((name, e))
        return e


def _ms(day: date, seconds: int) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000) + seconds * 1000


def _history() -> History:
    h = History()
    r = h.rnd
    for i in range(360):
        tenant = r.choice(["jobsnearby", "jobsnearby", "hireflow", "ghost"])
        brand = BRANDS[tenant]
        list_, channel = r.choice(sorted(brand["lists"].items()))
        partner = r.choice(brand["partners"])
        day = r.choice(DAYS)
        at = _ms(day, r.randrange(0, 20 * 3600))
        lead = f"L{i:04d}"
        country, state = r.choice(PLACES)
        interests = {"keywords": r.sample(KEYWORDS, r.randrange(0, 3)), "categories": r.sample(CATEGORIES, r.randrange(0, 2))}
        common = dict(tenant=tenant, lead_id=lead, channel=channel, partner=partner, list=list_)
        carrier = {"carrier": r.choice(["verizon", "t-mobile"])} if channel == "sms" else {}
        location = {"zip": "10001", "city": "X", "state": state, "country": country, "lat": None, "lon": None}
        h.ev("lead.submitted", at, location=location, interests=interests, **common, **carrier)
        fate = r.random()
        if fate < 0.12:
            h.ev("lead.rejected", at + 1, reasons=r.sample(REJECT_REASONS, r.choice([1, 1, 2])), **common, **carrier)
            continue
        if fate < 0.2:
            h.ev("lead.resubmitted", at + 1, outcome=r.choice(["merged", "already_on_list", "kept_cold"]),
                 status="accepted", **common, **carrier)
            continue
        h.ev("lead.accepted", at + 1, location=location if r.random() < 0.8 else None, interests=interests,
             region=country, **common, **carrier)
        if r.random() < 0.1:
            h.ev("lead.unsubscribed", at + 2, reason=r.choice(UNSUBSCRIBE_REASONS[:4] + ("odd reason",)),
                 tenant=tenant, lead_id=lead, channel=channel, partner=partner)
        for s in range(r.choice([1, 1, 2])):
            _send(h, common, at + 3600_000 * (s + 1))
    return h


def _send(h: History, common: dict, at: int) -> None:
    r = h.rnd
    send_id = f"S{h.n:06d}"
    kind = r.choice(["daily", "daily", "welcome"])
    base = dict(common, send_id=send_id, kind=kind)
    h.ev("send.requested", at, attempt=0, **base)
    if r.random() < 0.15:
        reason = r.choice(["rate_limited", "provider_transient: 429 slow down", "quiet_hours"])
        h.ev("send.deferred", at + 10, reason=reason, attempt=0, **base)
        h.ev("send.requested", at + 20, attempt=1, **base)
    fate = r.random()
    if fate < 0.08:
        h.ev("send.skipped", at + 30, reason=r.choice(["daily_cap", "no_matching_jobs"]), **base)
        return
    provider = r.choice(PROVIDERS[common["channel"]])
    if fate < 0.14:
        h.ev("send.failed", at + 30, provider=provider, reason=r.choice(FAIL_REASONS), error="x", **base)
        return
    template = r.choice(["tA", "tB"])
    creative = r.choice(["c1", "", None])
    h.ev("send.dispatched", at + 30, provider=provider, template=f"{common['tenant']}/{common['list']}",
         template_version=template, creative=creative, **base)
    facts = dict(common, send_id=send_id, provider=provider, template=template)
    facts.pop("list")
    if provider != "smtp":
        if r.random() < 0.85:
            h.ev("send.delivered", at + 60, list=common["list"], **facts)
        elif r.random() < 0.5:
            h.ev("send.bounced", at + 60, list=common["list"], bounce_type=r.choice(["hard", "soft"]), **facts)
    touch = dict(common, send_id=send_id, template=template, creative="")
    for k in range(r.choice([0, 0, 1, 2, 3])):  # people opening
        h.ev("engagement.opened", at + 600 * (k + 1), actor="human", is_bot=False, reason="", **touch)
    if r.random() < 0.4:  # a privacy proxy
        h.ev("engagement.opened", at + 90, actor="proxy", is_bot=True, reason="apple_mpp", **touch)
    if r.random() < 0.1:  # a provider reports an open earlier than ours, late
        h.ev("engagement.opened", at + 70, later=True, actor="human", is_bot=False, reason="", via="sendgrid", **touch)
    clicks = []
    for k in range(r.choice([0, 0, 1, 2])):
        src = r.choice(["feedA", "feedB"])
        crt = r.choice(["", "c1"])
        clicks.append(h.ev("engagement.clicked", at + 900 * (k + 1), actor="human", is_bot=False, reason="",
                           slot="creative" if crt else "job", job_source=src, cpc_cents=r.choice([25, 40, 90]),
                           **(touch | {"creative": crt})))
    if clicks and r.random() < 0.3:  # the first click turns out to be a scanner's burst
        h.late.append(("engagement.clicked", clicks[0] | {"actor": "bot", "is_bot": True, "reason": "burst",
                                                          "revision": 1}))
    if r.random() < 0.2:
        h.ev("engagement.clicked", at + 95, actor="bot", is_bot=True, reason="scanner", slot="job",
             job_source="feedA", cpc_cents=40, **touch)
    if r.random() < 0.05:
        h.ev("engagement.clicked", at + 96, actor="bot", is_bot=True, reason="honeypot", slot="honeypot",
             job_source="", cpc_cents=500, **touch)
    if r.random() < 0.04:
        h.ev("engagement.complained", at + 5000, tenant=common["tenant"], lead_id=common["lead_id"],
             send_id=send_id, provider="ses", reason="abuse", partner=common["partner"])
    if common["channel"] == "sms" and r.random() < 0.3:
        h.ev("engagement.replied", at + 7000, tenant=common["tenant"], lead_id=common["lead_id"], provider="twilio",
             intent=r.choice(["stop", "help", "more", "other"]), keyword="X", partner=common["partner"])


def batches() -> list[list[tuple[str, dict]]]:
    """What the writer receives, copies and late arrivals included, in this order."""
    h = _history()
    evs = h.events
    out = [evs[i:i + 250] for i in range(0, len(evs), 250)]
    out.insert(2, out[1])  # a batch sent again: a crash between the insert and the commit
    out.append([evs[i] for i in range(0, len(evs), 9)] + h.late[:len(h.late) // 2])  # redelivered copies
    out.append(h.late + [evs[3], evs[3]])  # late arrivals (and their copies), a copy twice in one batch
    return out


def distinct() -> list[tuple[str, dict]]:
    """Every event once, each revision of a click once."""
    seen, out = set(), []
    for batch in batches():
        for name, ev in batch:
            key = (ev["event_id"], ev.get("revision") or 0)
            if key not in seen:
                seen.add(key)
                out.append((name, ev))
    return out


# --- the oracle --------------------------------------------------------------------------

def _at(ev) -> datetime:
    return datetime.fromtimestamp(ev["occurred_at"] // 1000, tz=timezone.utc).replace(tzinfo=None)


def _loc(ev, key) -> str:
    loc = ev.get("location") or {}
    if key == "country":
        return loc.get("country") or ev.get("region") or ""
    return loc.get(key) or ""


def facts() -> list[tuple[str, datetime, dict, int]]:
    """(base metric, time, dimensions, value) for every distinct event; keyword and category
    hold tuples (a lead counts under each)."""
    out = []
    latest: dict[str, tuple[str, dict]] = {}

    def add(metric, ev, value=1, **dims):
        d = {k: ev.get(k) or "" for k in ("tenant", "partner", "list", "channel")} | {"variant": ""} | dims
        out.append((metric, _at(ev), d, value))

    for name, ev in distinct():
        if name.startswith("lead."):
            dims = dict(provider=ev.get("carrier", ""), country=_loc(ev, "country"), state=_loc(ev, "state"),
                        keyword=tuple((ev.get("interests") or {}).get("keywords") or [""]),
                        category=tuple((ev.get("interests") or {}).get("categories") or [""]))
            if name == "lead.submitted":
                add("leads_submitted", ev, **dims)
            elif name == "lead.accepted":
                add("leads_accepted", ev, **dims)
            elif name == "lead.rejected":
                add("leads_rejected", ev, provider=dims["provider"])
                for reason in ev["reasons"]:
                    add(f"leads_rejected_{reason}", ev, provider=dims["provider"])
            elif name == "lead.resubmitted":
                add("leads_duplicate", ev, provider=dims["provider"])
                add(f"leads_duplicate_{ev['outcome']}", ev, provider=dims["provider"])
            elif name == "lead.unsubscribed":
                add("unsubscribes", ev, provider="")
                if ev["reason"] in UNSUBSCRIBE_REASONS:
                    add(f"unsubscribes_{ev['reason']}", ev, provider="")
        elif name.startswith("send."):
            dims = dict(provider=ev.get("provider", ""), kind=ev.get("kind", ""),
                        template=ev.get("template_version") if name == "send.dispatched" else ev.get("template", ""),
                        creative=ev.get("creative") or "")
            short = name.split(".")[1]
            if short == "requested":
                add("sends_requested" if not ev["attempt"] else "sends_retried", ev, **dims)
            elif short in ("dispatched", "delivered"):
                add(f"sends_{short}", ev, **dims)
            elif short == "bounced":
                add(f"bounces_{ev['bounce_type']}", ev, **dims)
            else:
                add(f"sends_{short}", ev, **dims)
                reason = ev["reason"].split(":")[0]
                known = {"failed": FAIL_REASONS, "deferred": DEFER_REASONS}.get(short)
                if known is None or reason in known:
                    add(f"sends_{short}_{reason}", ev, **dims)
        elif name in ("engagement.opened", "engagement.clicked"):
            cur = latest.get(ev["event_id"])
            if cur is None or ev["revision"] > cur[1]["revision"]:
                latest[ev["event_id"]] = (name, ev)
        elif name == "engagement.complained":
            add("complaints", ev, provider=ev["provider"])
        elif name == "engagement.replied":
            add("sms_replies", ev, provider=ev["provider"])
            add(f"sms_replies_{ev['intent']}", ev, provider=ev["provider"])
    firsts: dict[tuple, dict] = {}
    for name, ev in latest.values():
        actor = "machine" if ev["is_bot"] else "human"
        what = "opens" if name == "engagement.opened" else "clicks"
        dims = dict(template=ev["template"], creative=ev["creative"], job_source=ev["job_source"], provider="")
        add(f"{what}_{actor}", ev, **dims)
        if what == "clicks" and ev["slot"] != "honeypot":
            add("revenue_cents" if actor == "human" else "machine_click_cents", ev, ev["cpc_cents"], **dims)
            if actor == "human":
                bp = int(round(SHARES[ev["tenant"]] * 10_000)) if ev["tenant"] in SHARES else 0
                add("_brand_bp_cents", ev, ev["cpc_cents"] * bp, **dims)
                add("_unshared_cents", ev, 0 if ev["tenant"] in SHARES else ev["cpc_cents"], **dims)
        key = (ev["send_id"], what, actor)
        if key not in firsts or (ev["occurred_at"], ev["event_id"]) < (firsts[key]["occurred_at"], firsts[key]["event_id"]):
            firsts[key] = ev
    for (_, what, actor), ev in firsts.items():
        add(f"{what}_{actor}_unique", ev, template=ev["template"], creative="", job_source="", provider="")
    return out


def expected(request: AnalyticsRequest, scope: AnalyticsScope, series: bool) -> dict[tuple, dict[str, int]]:
    """{(bucket or None, group values...): {base metric: value}} for the request in the scope."""
    start = datetime(request.since.year, request.since.month, request.since.day)
    end = datetime(request.until.year, request.until.month, request.until.day) + timedelta(days=1)
    filters = request.filter_map
    starts = buckets(request)
    out: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    wanted = {m for n in request.metrics for m in _inputs(n)}
    for metric, at, dims, value in facts():
        if metric not in wanted or not start <= at < end:
            continue
        if scope.tenants is not None and dims["tenant"] not in scope.tenants:
            continue
        if scope.partner is not None and dims["partner"] != scope.partner:
            continue
        if any(not set(_values(dims.get(d, ""))) & set(v) for d, v in filters.items()):
            continue
        bucket = max(b for b in starts if b <= at) if series else None
        for g in _combinations(dims, request.group_by, filters):
            out[(bucket, *g)][metric] += value
    return {k: dict(v) for k, v in out.items()}


def _inputs(name: str) -> list[str]:
    m = METRICS[name]
    return [name] if not m.derived else [x for i in m.inputs for x in _inputs(i)]


def _values(v) -> tuple:
    return v if isinstance(v, tuple) else (v,)


def _combinations(dims: dict, group_by, filters) -> list[tuple]:
    """The groups a fact counts in: once per matching value of a many-valued dimension
    (keyword, category) that is grouped or filtered by."""
    out = [()]
    for d in list(group_by) + [d for d in filters if d not in group_by and isinstance(dims.get(d), tuple)]:
        vals = [v for v in _values(dims.get(d, "")) if d not in filters or v in filters[d]]
        out = [g + (v,) for g in out for v in vals]
    return [g[:len(group_by)] for g in out]


def load(client, db: str) -> int:
    """A fresh database `db` holding the history, written batch by batch like the agent does;
    returns how many rows were written."""
    from projections.clickhouse import EventsWriter, migrate
    from projections.event_rows import event_row
    client.execute(f"DROP DATABASE IF EXISTS {db}")
    migrate(client, db)
    writer = EventsWriter(client, db)
    written = 0
    for offset, batch in enumerate(batches()):
        for name, ev in batch:
            writer.submit(event_row(name, ev, "t", 0, offset, datetime(2025, 12, 1) + timedelta(seconds=offset)))
        written += writer.flush()
    return written
