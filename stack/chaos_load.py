"""The fault drill's load: what it sends and what it was answered (the ledger).

Three threads run for the whole drill: leads through the API's batch endpoint, lead.submitted
records produced straight to the intake topic (the queue path), and tracking hits: the pixel
and one link of the welcome emails the drill's own leads receive, each fetched once with a
user agent of its own, so ClickHouse can be asked for exactly that hit afterwards.
"""
from __future__ import annotations

import os
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser

import httpx
from confluent_kafka import Producer

from domain.identity import LeadIds, new_event_id
from domain.lead_input import LeadIn
from domain.submission import build_submitted
from schemas.codec import default_codec
from streams.settings import Settings, load_tenants

TENANT, LIST, PARTNER = "jobsnearby", "daily-jobs", "ziprecruiter"
TRACKED = re.compile(rb"(https?://[^\s\"'<>]+/([oc])/([A-Za-z0-9_-]+))")


@dataclass
class Ledger:
    """What the load saw: leads answered, answers by status, 5xx and unanswered requests with their time."""

    answered: dict[str, str] = field(default_factory=dict)  # lead id -> "api" | "queue"
    statuses: Counter = field(default_factory=Counter)
    # (made, answered, status, endpoint): a request made during an outage may be answered after it
    server_errors: list[tuple[float, float, int, str]] = field(default_factory=list)
    unreachable: list[float] = field(default_factory=list)  # when each unanswered request was made (monotonic)
    hits: dict[str, str] = field(default_factory=dict)  # user agent of an answered hit -> "o" | "c"
    hit_statuses: Counter = field(default_factory=Counter)
    hit_failures: list[tuple[float, str]] = field(default_factory=list)  # (when, status or error)
    api_ms: list[tuple[float, float]] = field(default_factory=list)  # (when, ms) of each 202 (the soak's p99)
    hit_ms: list[tuple[float, float]] = field(default_factory=list)  # (when, ms) of each answered hit
    product: set[str] = field(default_factory=set)  # event ids of product events answered 202
    product_statuses: Counter = field(default_factory=Counter)
    replies: set[str] = field(default_factory=set)  # text of each SMS reply the API answered 2xx for
    # text of each reply posted but answered otherwise (503, or no answer): the provider retries it
    replies_refused: set[str] = field(default_factory=set)
    reply_statuses: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def lead(i: int, run: str) -> dict:
    return {"email": f"chaos.{run}.{i}@example.com", "first_name": "Cha", "partner": PARTNER, "list": LIST,
            "location": {"zip": "10001", "country": "US"}, "interests": {"keywords": ["nurse"]}}


def _each_second(done: threading.Event, step) -> None:
    while not done.is_set():
        tick = time.monotonic()
        step()
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))


def _post(c: httpx.Client, path: str, body: dict, ledger: Ledger, statuses: Counter, taken, what: str) -> None:
    """POST to the API; its answer counted, a 5xx or no answer noted with its time, taken(r)
    called (under the ledger's lock) for a 202."""
    t0 = time.monotonic()
    try:
        r = c.post(path, json=body)
    except httpx.HTTPError:
        with ledger.lock:
            ledger.unreachable.append(t0)
        return
    with ledger.lock:
        statuses[r.status_code] += 1
        if r.status_code == 202:
            taken(r, t0)
        elif r.status_code >= 500:
            ledger.server_errors.append((t0, time.monotonic(), r.status_code, f"{what} ({r.text[:160]})"))


def api_load(s: Settings, key: str, run: str, rate: int, done: threading.Event, ledger: Ledger) -> None:
    n = [0]

    def taken(r: httpx.Response, t0: float) -> None:
        ledger.api_ms.append((t0, (time.monotonic() - t0) * 1000))
        ledger.answered.update((x["lead_id"], "api") for x in r.json()["leads"])
    with httpx.Client(base_url=s.api_url, timeout=15, headers={"Authorization": f"Bearer {key}"}) as c:
        def step() -> None:
            batch = [lead(n[0] + i, run) for i in range(rate)]
            n[0] += rate
            _post(c, "/v1/leads/batch", {"leads": batch}, ledger, ledger.statuses, taken, "leads")
        _each_second(done, step)


def queue_load(s: Settings, run: str, rate: int, done: threading.Event, ledger: Ledger) -> None:
    tenant, codec = load_tenants(s.tenants_file).tenants[TENANT], default_codec()
    # log_level 2: the broker's planned outage would print a connection error every half second
    producer = Producer({"bootstrap.servers": s.kafka_bootstrap, "enable.idempotence": True, "linger.ms": 20,
                         "message.timeout.ms": 300_000, "log_level": 2})

    def acked(err, msg):
        if err is None:
            with ledger.lock:
                ledger.answered[msg.key().decode()] = "queue"
    n = [10_000_000]
    ids = LeadIds(s.lead_id_secret)

    def step() -> None:
        now = int(time.time() * 1000)
        for _ in range(rate):
            sub = build_submitted(LeadIn.model_validate(lead(n[0], run)), tenant, new_event_id(now, os.urandom(10)),
                                  now, "chaos", ids=ids)
            n[0] += 1
            try:
                producer.produce(f"{s.topic_prefix}leads.submitted", codec.encode("lead.submitted", sub),
                                 sub["lead_id"].encode(), on_delivery=acked)
            except BufferError:
                break
        producer.poll(0)
    _each_second(done, step)
    producer.flush(180)


def product_load(s: Settings, key: str, run: str, rate: int, done: threading.Event, ledger: Ledger) -> None:
    """Product events through the API's batch endpoint: people among the drill's leads (answered
    a while ago, so decided) view nursing jobs, which the brand's triggers follow up. Every
    fifth batch is sent twice with its idempotency keys (a client's retry): the same event ids."""
    n, rng = [0], random.Random(run)
    with httpx.Client(base_url=s.api_url, timeout=15, headers={"Authorization": f"Bearer {key}"}) as c:
        def post(events: list[dict]) -> None:
            _post(c, "/v1/events/batch", {"events": events}, ledger, ledger.product_statuses,
                  lambda r, t0: ledger.product.update(e["event_id"] for e in r.json()["events"]), "events")

        def step() -> None:
            with ledger.lock:
                known = [lid for lid, how in ledger.answered.items() if how == "api"][:-200]
            if not known:
                return
            events = []
            for _ in range(rate):
                n[0] += 1
                events.append({"lead_id": rng.choice(known), "name": "job_viewed",
                               "properties": {"category": "nursing", "job": f"chaos-{n[0] % 50}"},
                               "idempotency_key": f"chaos-{run}-{n[0]}"})
            post(events)
            if n[0] % (5 * rate) < rate:
                post(events)
        _each_second(done, step)


def reply_load(s: Settings, run: str, rate: int, done: threading.Event, ledger: Ledger) -> None:
    """SMS replies to the brand's number, as Twilio posts them (signed, through the providers'
    stand-in), each with a text of its own so ClickHouse can be asked for exactly that reply."""
    n = [0]
    to = load_tenants(s.tenants_file).tenants[TENANT].brand.sms_from
    with httpx.Client(timeout=30) as c:
        def step() -> None:
            events = []
            for _ in range(rate):
                n[0] += 1
                events.append({"MessageSid": f"SM{run.replace('-', '')}{n[0]:08d}", "From": f"+1212555{n[0] % 10_000:04d}",
                               "To": to, "Body": f"Thank you kindly {run} {n[0]}", "SmsStatus": "received", "NumMedia": "0"})
            t0 = time.monotonic()
            try:
                r = c.post(f"{s.providers_url}/webhooks/emit",
                           json={"provider": "twilio", "target": f"{s.api_url}/webhooks/twilio", "events": events})
                results = r.json().get("results", []) if r.status_code in (200, 502) else []
            except (httpx.HTTPError, ValueError):
                results = []
            if not results:
                with ledger.lock:
                    ledger.unreachable.append(t0)
                    ledger.replies_refused.update(ev["Body"] for ev in events)
                return
            with ledger.lock:
                for ev, res in zip(events, results):
                    ledger.reply_statuses[res["status"]] += 1
                    if 200 <= res["status"] < 300:
                        ledger.replies.add(ev["Body"])
                    else:
                        ledger.replies_refused.add(ev["Body"])
                    if res["status"] >= 500:
                        # the API's own words name what was out (the check keeps "webhooks" first)
                        ledger.server_errors.append((t0, time.monotonic(), res["status"],
                                                     f"webhooks ({str(res.get('body', ''))[:160]})"))
        _each_second(done, step)


class Inbox:
    """The drill's welcome emails as they arrive in the SMTP server's folder: their pixel and first link."""

    def __init__(self, s: Settings, run: str, since: float):
        self.dir, self.marker, self.since = s.mail_dir, f"chaos.{run}.".encode(), since
        self.seen: set[str] = set()
        self.parser = BytesHeaderParser()

    def new_codes(self) -> list[str]:
        urls = []
        for entry in os.scandir(self.dir):
            if entry.name in self.seen or not entry.name.endswith(".eml") or entry.stat().st_mtime < self.since:
                continue
            self.seen.add(entry.name)
            with open(entry.path, "rb") as f:
                raw = f.read()
            if self.marker not in raw[:4096]:
                continue
            kinds: dict[bytes, bytes] = {}
            for url, kind, _code in TRACKED.findall(raw):
                kinds.setdefault(kind, url)
            urls += [u.decode() for u in kinds.values()]
        return urls


def tracking_load(s: Settings, run: str, rate: int, since: float, done: threading.Event, ledger: Ledger) -> None:
    inbox, queue, n = Inbox(s, run, since), [], [0]
    with httpx.Client(timeout=10, follow_redirects=False) as c:
        def step() -> None:
            queue.extend(inbox.new_codes())
            for url in [queue.pop(0) for _ in range(min(rate, len(queue)))]:
                n[0] += 1
                kind = "o" if "/o/" in url else "c"
                agent = f"Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 chaos/{run}/{n[0]}"
                t0 = time.monotonic()
                try:
                    r = c.get(url, headers={"User-Agent": agent})
                except httpx.HTTPError as exc:
                    with ledger.lock:
                        ledger.hit_failures.append((time.monotonic(), type(exc).__name__))
                    continue
                with ledger.lock:
                    ledger.hit_statuses[r.status_code] += 1
                    if r.status_code in (200, 302):
                        ledger.hits[agent] = kind
                        ledger.hit_ms.append((t0, (time.monotonic() - t0) * 1000))
                    else:
                        ledger.hit_failures.append((time.monotonic(), str(r.status_code)))
        _each_second(done, step)
