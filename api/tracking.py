"""The tracking front: /c/{code} redirects, /o/{code} pixels, /u/{code} unsubscribes, /p/{code}
preference pages.

A person waits on the other end, so this process does the bare minimum before answering: it
checks the code's keyed tag (a tampered or invented code is a 404 without touching Redis),
finds the link record (a local LRU cache, else one Redis GET), encodes the hit and hands it
to a spooling producer, which never blocks and never loses it (streams/spool.py: written to
its journal before the answer goes out, so a front killed the moment after answering still
has it), and answers. Deciding whether the hit was a person, and
everything that follows from it, is the engagement agent's work.

    GET  /c/{code}  302 to the destination recorded when the message was composed
    GET  /o/{code}  a 1x1 transparent GIF
    GET  /u/{code}  a small page confirming the unsubscribe with one button
    POST /u/{code}  unsubscribe (the page's button, or RFC 8058 one-click from a mail provider)
    GET  /p/{code}  the preference page of the message's list: how often, pause, leave it, leave all
    POST /p/{code}  one choice (form field `action`, with `cadence` or `weeks`): checked strictly
                    (400 with a page saying what was wrong), then lead.preferences_requested
                    goes to the intake's topic and a confirmation page answers
    HEAD on each    the same status without a body (recorded: link checkers use HEAD)

GET never changes anything (mail scanners and prefetchers fetch every link): only a POST of
the unsubscribe or preference page acts. The preference page is not recorded as a hit.
    GET  /healthz; on the internal port only (LEADSTREAM_TRACKING_INTERNAL_PORT, never exposed):
         /metrics (Prometheus), /stats (server-side timings, for the benchmark)

It is a bare ASGI app on uvicorn (httptools + uvloop): no framework routing on the hot path.

    python -m api.tracking            # LEADSTREAM_TRACKING_HOST / _PORT, default 127.0.0.1:18081
"""
from __future__ import annotations

import asyncio
import html
import os
import logging
import socket
import time
from collections import OrderedDict, deque

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from domain.compose import list_title
from domain.identity import new_event_id
from domain.links import code_number
from domain.preferences import (CADENCES, MAX_FORM_BYTES, PAUSE_WEEKS, BadPreferenceForm, PreferenceForm,
                                cadence_choices, parse_form, pause_end)
from domain.schema_labels import schema_label
from domain.sealing import SealError, ip_kept
from projections.redis_data_keys import DataKeyStore
from projections.redis_keys import INTACT
from schemas.codec import default_codec
from services.privacy.keys import DataKeys
from services.privacy.sealer import Sealer
from streams.config_view import shared_view
from streams.gc_tuning import tune_for_streaming
from streams.redis_packing import packed
from streams.settings import Settings, get_settings
from streams.spool import SpoolingProducer
from streams.topics import CONFIG, DATA_KEYS, ENGAGEMENT_OBSERVED, SUBMITTED

log = logging.getLogger("leadstream.tracking")

GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
       b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
NO_STORE = (b"cache-control", b"no-store, no-cache, must-revalidate, private")
KIND_OF_PATH = {"c": "click", "o": "open", "u": "unsubscribe", "p": "preferences"}
POSTED_KINDS = ("unsubscribe", "preferences")
MISSING = object()
REDIS_WAIT_S = 3.0  # a link lookup waits this long for Redis to come back before answering 503
SEAL_WAIT_S = 0.5  # a data key lookup waits this long; then the hit keeps the ip's network only
UNAVAILABLE = "This link is unavailable for a moment. Please try again in a few seconds.".encode()
HIT_SCHEMA = schema_label("engagement.hit")
PREFERENCES_SCHEMA = schema_label("lead.preferences_requested")
FORM_TYPE = b"application/x-www-form-urlencoded"

HITS = Counter("leadstream_tracking_hits_total", "Tracking requests answered", ["kind", "status"])
SECONDS = Histogram("leadstream_tracking_seconds", "Server time from request to response written",
                    ["kind"], buckets=(.0002, .0005, .001, .002, .003, .005, .01, .025, .1, .5))


_CHILDREN: dict[tuple, object] = {}


def _child(metric, *labels):
    """metric.labels(*labels), looked up once per process (labels() takes a lock and builds a
    key each call: ~1 us of a redirect)."""
    key = (metric, *labels)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN[key] = metric.labels(*labels)
    return child


class LinkCache:
    """code -> the link record's JSON as Redis holds it (or None for a code Redis does not know),
    least recently used out: at most `size` records, and none unused for `idle_s`.

    Kept as bytes (~400 B a record), not as the parsed dict (~1.3 KB): parsing again on each hit
    costs ~2 us. A tracked code is one person's link in one message, hit again within minutes (a
    scanner, then the person; a pixel fetched twice) or not for days: the idle limit keeps the
    front's memory at what the last minutes brought, instead of filling up to `size` with codes
    never asked again (the soak saw the front grow by 21 % in 30 minutes, its cache filling).
    """

    def __init__(self, size: int, idle_s: float = 600.0, miss_ttl_s: float = 30.0):
        self.size, self.idle_s, self.miss_ttl_s = size, idle_s, miss_ttl_s
        self._d: OrderedDict[str, tuple[bytes | None, float]] = OrderedDict()  # oldest use first

    def get(self, code: str, now: float):
        hit = self._d.get(code, MISSING)
        if hit is MISSING:
            return MISSING
        rec, expires = hit
        if now > expires:  # unused too long, or an unknown code that may have been written since
            del self._d[code]
            return MISSING
        if rec is not None:
            self._d[code] = (rec, now + self.idle_s)
        self._d.move_to_end(code)
        return rec

    def put(self, code: str, rec: bytes | None, now: float) -> None:
        self._d[code] = (rec, now + (self.idle_s if rec is not None else self.miss_ttl_s))
        self._d.move_to_end(code)
        while self._d:
            oldest, (_, expires) = next(iter(self._d.items()))
            if len(self._d) <= self.size and expires >= now:
                break
            del self._d[oldest]

    def __len__(self) -> int:
        return len(self._d)


class Timings:
    """The last server times per kind, for exact percentiles in the benchmark."""

    def __init__(self, keep: int = 200_000):
        self.by_kind: dict[str, deque] = {}
        self.keep = keep

    def add(self, kind: str, seconds: float) -> None:
        d = self.by_kind.get(kind)
        if d is None:
            d = self.by_kind[kind] = deque(maxlen=self.keep)
        d.append(seconds)
        _child(SECONDS, kind).observe(seconds)

    def summary(self) -> dict:
        out = {}
        for kind, d in self.by_kind.items():
            xs = sorted(d)
            if xs:
                out[kind] = {"n": len(xs), "p50_ms": round(xs[len(xs) // 2] * 1000, 3),
                             "p99_ms": round(xs[min(len(xs) - 1, int(len(xs) * 0.99))] * 1000, 3),
                             "max_ms": round(xs[-1] * 1000, 3)}
        return out

    def clear(self) -> None:
        self.by_kind.clear()


def _unsubscribe_page(brand: str, action: str, done: bool) -> bytes:
    brand = html.escape(brand)
    if done:
        body = f"<h1>You are unsubscribed</h1><p>{brand} will send you no more of these messages.</p>"
    else:
        body = (f"<h1>Unsubscribe from {brand}?</h1><p>You will receive no more of these messages.</p>"
                f'<form method="post" action="{html.escape(action)}">'
                f'<button type="submit" name="List-Unsubscribe" value="One-Click">Unsubscribe</button></form>')
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width,initial-scale=1"><meta name="robots" content="noindex">'
            f"<title>Unsubscribe</title></head><body>{body}</body></html>").encode()


def _page(title: str, body: str) -> bytes:
    """A small, accessible HTML page (no scripts, no external resources)."""
    style = ("body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;"
             "line-height:1.5;color:#222}fieldset{border:1px solid #ccc;margin:0 0 1rem;padding:.75rem 1rem}"
             "legend{font-weight:600}button{font-size:1rem;padding:.4rem .9rem;margin-top:.5rem}"
             "label{display:block;padding:.15rem 0}")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width,initial-scale=1"><meta name="robots" content="noindex">'
            f"<title>{html.escape(title)}</title><style>{style}</style></head><body><main>{body}</main>"
            f"</body></html>").encode()


def _lower_first(text: str) -> str:
    """"Every day" -> "every day", keeping the weekdays' capitals further on."""
    return text[:1].lower() + text[1:]


def _day(ms: int) -> str:
    return time.strftime("%A %d %B %Y", time.gmtime(ms / 1000))


def _preferences_page(brand: str, list_title: str, action: str, choices: list[tuple[str, str]],
                      current: dict | None, now_ms: int) -> bytes:
    """The preference page: the list's current settings when known, and one form per choice."""
    b, title, act = html.escape(brand), html.escape(list_title), html.escape(action)
    cadence = (current or {}).get("cadence") or (choices[0][0] if choices else "")
    paused_until = int((current or {}).get("paused_until_ms") or 0)
    now = [f"{html.escape(label)}" for value, label in choices if value == cadence]
    status = f"<p>You get <strong>{title}</strong> from {b}"
    status += f": {_lower_first(now[0])}.</p>" if now and current is not None else ".</p>"
    if paused_until > now_ms:
        status += f"<p>Paused until {html.escape(_day(paused_until))} (UTC).</p>"
    radios = "".join(
        f'<label><input type="radio" name="cadence" value="{html.escape(v)}"{" checked" if v == cadence else ""}> '
        f"{html.escape(label)}</label>" for v, label in choices)
    weeks = "".join(
        f'<label><input type="radio" name="weeks" value="{w}"{" checked" if w == PAUSE_WEEKS[0] else ""}> '
        f'{w} week{"s" if w > 1 else ""}</label>' for w in PAUSE_WEEKS)
    forms = (
        f'<form method="post" action="{act}"><input type="hidden" name="action" value="cadence">'
        f"<fieldset><legend>How often</legend>{radios}</fieldset>"
        f'<button type="submit">Save how often</button></form>'
        f'<form method="post" action="{act}"><input type="hidden" name="action" value="pause">'
        f"<fieldset><legend>Pause {title}</legend>{weeks}</fieldset>"
        f'<button type="submit">Pause</button></form>'
        f'<form method="post" action="{act}"><input type="hidden" name="action" value="leave_list">'
        f"<fieldset><legend>Leave this list</legend><p>No more {title}; other alerts from {b} continue.</p>"
        f"</fieldset><button type=\"submit\">Leave {title}</button></form>"
        f'<form method="post" action="{act}"><input type="hidden" name="action" value="leave_all">'
        f"<fieldset><legend>Leave everything</legend><p>Unsubscribe from every alert {b} sends to this address.</p>"
        f'</fieldset><button type="submit">Unsubscribe from everything</button></form>')
    return _page(f"Manage {list_title}", f"<h1>Manage {title}</h1>{status}{forms}")


def _preferences_done(brand: str, list_title: str, form: PreferenceForm, now_ms: int) -> bytes:
    """The confirmation of one choice (what the intake will decide, said to the person)."""
    b, title = html.escape(brand), html.escape(list_title)
    if form.action == "cadence":
        said = html.escape(_lower_first(CADENCES.get(form.cadence, form.cadence)))
        text = f"<h1>Saved</h1><p>You will get {title} from {b} {said}.</p>"
    elif form.action == "pause":
        until = html.escape(_day(pause_end(now_ms, form.weeks)))
        text = f"<h1>Paused</h1><p>{b} will send you no {title} until {until} (UTC).</p>"
    elif form.action == "leave_list":
        text = f"<h1>You have left {title}</h1><p>Other alerts from {b} continue.</p>"
    else:
        text = f"<h1>You are unsubscribed</h1><p>{b} will send you no more messages at this address.</p>"
    return _page("Preferences saved", text)


def _bad_form(problem: str, back: str) -> bytes:
    return _page("Not saved", f"<h1>Not saved</h1><p>{html.escape(problem)}.</p>"
                              f'<p><a href="{html.escape(back)}">Back to the choices</a></p>')


class TrackingApp:
    """The ASGI application; one instance per process."""

    def __init__(self, settings: Settings, producer: SpoolingProducer | None = None,
                 redis_client: aioredis.Redis | None = None):
        self.s = settings
        self.keys = settings.link_key_ring
        self.topic = settings.topic_prefix + ENGAGEMENT_OBSERVED
        self.requests_topic = settings.topic_prefix + SUBMITTED
        self.codec = default_codec()
        self.cache = LinkCache(settings.link_cache_size, settings.link_cache_idle_s)
        self.timings = Timings()
        self.internal_port: int | None = settings.tracking_internal_port or None  # main() sets the bound one
        # the brand names on the unsubscribe page; never waits for Kafka (the front serves without it)
        self.config = shared_view(settings.kafka_bootstrap, settings.topic_prefix + CONFIG, self.codec, wait=False)
        self.redis = redis_client or aioredis.Redis.from_url(settings.redis_url, **packed(settings.redis_url))
        self.producer = producer
        # the hit's ip sealed with the lead's data key; this process makes no key (it writes none)
        self.sealer = Sealer(DataKeys(DataKeyStore(self.redis), None, None, settings.topic_prefix + DATA_KEYS,
                                      settings.kek_ring))
        self.trust_forwarded = settings.tracking_trust_forwarded

    # ---- ASGI entry ---------------------------------------------------------------------

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        path = scope["path"]
        parts = path.split("/")
        if len(parts) == 3 and parts[1] in KIND_OF_PATH:
            return await self._tracked(scope, receive, send, KIND_OF_PATH[parts[1]], parts[2], started)
        if path == "/healthz":
            return await _respond(send, 200, b"ok", b"text/plain")
        internal = (scope.get("server") or (None, None))[1] == self.internal_port
        if path == "/metrics" and internal:
            return await _respond(send, 200, generate_latest(), CONTENT_TYPE_LATEST.encode())
        if path == "/stats" and internal:
            if scope["method"] == "DELETE":
                self.timings.clear()
            return await _respond(send, 200, orjson.dumps(self.timings.summary()), b"application/json")
        return await _respond(send, 404, b"not found", b"text/plain")

    async def _lifespan(self, receive, send):
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                if self.producer is None:
                    self.producer = SpoolingProducer(self.s.kafka_bootstrap, self.s.spool_dir / "tracking")
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                if self.producer is not None:
                    self.producer.close()
                await self.redis.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # ---- the tracked routes -------------------------------------------------------------

    async def _tracked(self, scope, receive, send, kind: str, code: str, started: float):
        method = scope["method"]
        allowed = ("GET", "HEAD", "POST") if kind in POSTED_KINDS else ("GET", "HEAD")
        if method not in allowed:
            return await _respond(send, 405, b"method not allowed", b"text/plain", extra=[(b"allow", ", ".join(allowed).encode())])
        try:
            rec = await self._record(code)
        except LinksUnavailable as exc:
            log.warning("links unavailable, answering 503: %s", exc)
            HITS.labels(kind, "503").inc()
            return await _respond(send, 503, UNAVAILABLE, b"text/plain; charset=utf-8", head=method == "HEAD",
                                  extra=[(b"retry-after", b"5"), NO_STORE])
        if rec is None or rec["kind"] != kind:
            HITS.labels(kind, "404").inc()
            return await _respond(send, 404, b"not found", b"text/plain", head=method == "HEAD")
        if kind == "preferences":
            status = await self._preferences(scope, receive, send, rec, method, code)
            self.timings.add(kind, time.perf_counter() - started)
            HITS.labels(kind, status).inc()
            return
        if method == "POST":
            await _drain(receive)
        # the record of what happened is in the journal before the person has the answer: a
        # front killed between the two loses no hit it answered
        await self._emit(scope, kind, method, rec)
        await self._answer(send, kind, rec, method, code)
        self.timings.add(kind, time.perf_counter() - started)
        _child(HITS, kind, "ok").inc()

    def _brand_name(self, tenant: str) -> str:
        t = self.config.book.tenants.get(tenant)
        return t.name if t is not None else tenant

    async def _record(self, code: str) -> dict | None:
        """The link's record: from the local cache, else Redis; None for a code that is not ours
        (its signature checked before Redis is asked: the cache holds only codes that passed, so a
        cached one is not checked again, and the keys change only with a restart, which empties
        it). Redis unreachable (restarting, failing over) is retried for up to REDIS_WAIT_S; then
        LinksUnavailable (a 503)."""
        now = time.monotonic()
        raw = self.cache.get(code, now)
        if raw is MISSING:
            if code_number(code, self.keys) is None:
                return None
            raw = await self._redis(lambda: self.redis.get(f"ls:link:{code}"))
            if raw is None and not await self._redis(lambda: self.redis.exists(INTACT)):
                # Redis lost its state and the replay is rebuilding it: come back, not "no such link"
                raise LinksUnavailable("Redis holds no platform state (ls:intact missing): links are being rebuilt")
            self.cache.put(code, raw, now)
        return orjson.loads(raw) if raw else None

    async def _redis(self, call):
        deadline = time.monotonic() + REDIS_WAIT_S
        while True:
            try:
                return await call()
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                if time.monotonic() >= deadline:
                    raise LinksUnavailable(str(exc)) from exc
                await asyncio.sleep(0.25)

    async def _answer(self, send, kind: str, rec: dict, method: str, code: str) -> None:
        head = method == "HEAD"
        if kind == "open":
            return await _respond(send, 200, GIF, b"image/gif", head=head, extra=[NO_STORE])
        if kind == "click":
            if rec.get("slot") == "honeypot" or not rec.get("destination_url"):
                return await _respond(send, 200, b"", b"text/plain", head=head, extra=[NO_STORE])
            return await _respond(send, 302, b"", b"text/plain", head=head,
                                  extra=[(b"location", rec["destination_url"].encode()), NO_STORE])
        page = _unsubscribe_page(self._brand_name(rec["tenant"]), f"/u/{code}",
                                 done=method == "POST")
        return await _respond(send, 200, page, b"text/html; charset=utf-8", head=head, extra=[NO_STORE])

    # ---- the preference page ------------------------------------------------------------

    def _list(self, tenant: str, list_name: str):
        t = self.config.book.tenants.get(tenant)
        return t.lists.get(list_name) if t is not None else None

    async def _current(self, rec: dict) -> dict | None:
        """The lead's preference for the list, when Redis answers (the page works without it)."""
        try:
            raw = await self.redis.get(f"ls:lead:{rec['tenant']}:{rec['lead_id']}")
        except Exception:  # a read for display only: the choices are shown anyway
            log.warning("cannot read the lead's preferences for the page", exc_info=True)
            return None
        if not raw:
            return None
        return (orjson.loads(raw).get("preferences") or {}).get(rec.get("list", "")) or {}

    async def _preferences(self, scope, receive, send, rec: dict, method: str, code: str) -> str:
        """GET/HEAD: the page. POST: check the choice, produce it, confirm. Returns the status label."""
        brand, list_name, now_ms = self._brand_name(rec["tenant"]), rec.get("list", ""), int(time.time() * 1000)
        cfg = self._list(rec["tenant"], list_name)
        list_cadence = cfg.cadence if cfg is not None else None
        title = list_title(list_name, cfg.title if cfg is not None else "")  # as the welcome named it
        action = f"/p/{code}"
        if method != "POST":
            choices = cadence_choices(list_cadence) if list_cadence else [(v, lbl) for v, lbl in CADENCES.items()]
            current = await self._current(rec) if method == "GET" else None
            page = _preferences_page(brand, title, action, choices, current, now_ms)
            await _respond(send, 200, page, b"text/html; charset=utf-8", head=method == "HEAD", extra=[NO_STORE])
            return "ok"
        ctype = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip().lower()
        body = await _read_body(receive, MAX_FORM_BYTES)
        try:
            if ctype != FORM_TYPE:
                raise BadPreferenceForm("the form must be sent as application/x-www-form-urlencoded")
            if body is None:
                raise BadPreferenceForm(f"the form is larger than {MAX_FORM_BYTES} bytes")
            form = parse_form(body, list_cadence)
        except BadPreferenceForm as exc:
            await _respond(send, 400, _bad_form(str(exc), action), b"text/html; charset=utf-8", extra=[NO_STORE])
            return "400"
        ev = {"event_id": new_event_id(now_ms, os.urandom(10)), "tenant": rec["tenant"], "occurred_at": now_ms,
              "schema": PREFERENCES_SCHEMA, "causation_id": rec["send_id"], "source": "tracking",
              "lead_id": rec["lead_id"], "list": list_name, "action": form.action, "cadence": form.cadence,
              "pause_weeks": form.weeks, "send_id": rec["send_id"], "code": rec["code"],
              "requested_by": "tracking"}
        value = self.codec.encode("lead.preferences_requested", ev)  # a failure is a bug: a 500, never a false "saved"
        self.producer.send(self.requests_topic, rec["lead_id"].encode(), value)  # spools; never blocks
        await _respond(send, 200, _preferences_done(brand, title, form, now_ms), b"text/html; charset=utf-8",
                       extra=[NO_STORE])
        return "ok"

    async def _sealed(self, hit: dict) -> dict:
        """The hit with its ip sealed by the lead's durable data key; where there is none (a lead
        from before sealing, Redis away or rebuilding), the ip's network only: never the address."""
        if not hit["ip"]:
            return hit
        cached = self.sealer.seal_known_cached([("engagement.hit", hit)])  # most hits: no wait at all
        if cached is not None:
            return ip_kept(cached[0])
        try:
            async with asyncio.timeout(SEAL_WAIT_S):  # no task per request (wait_for made one: ~20 us)
                [hit] = await self.sealer.seal_known([("engagement.hit", hit)])
        except (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError, SealError) as exc:
            log.warning("no data key for a hit's ip (%s): its network only", type(exc).__name__)
        return ip_kept(hit)

    async def _emit(self, scope, kind: str, method: str, rec: dict) -> None:
        headers = dict(scope["headers"])
        ua = headers.get(b"user-agent", b"").decode("latin-1")[:512]
        ip = scope["client"][0] if scope.get("client") else ""
        if self.trust_forwarded and b"x-forwarded-for" in headers:
            ip = headers[b"x-forwarded-for"].decode("latin-1").split(",")[0].strip()
        now_ms = int(time.time() * 1000)
        job_key = rec.get("job_key", "")
        hit = {
            "event_id": new_event_id(now_ms, os.urandom(10)), "tenant": rec["tenant"], "occurred_at": now_ms,
            "schema": HIT_SCHEMA, "causation_id": rec["send_id"], "source": "tracking",
            "lead_id": rec["lead_id"], "kind": kind, "method": method, "user_agent": ua, "ip": ip,
            "delivered_at": int(rec.get("created_ms", 0)), "destination_url": rec.get("destination_url", ""),
            "send_id": rec["send_id"], "code": rec["code"], "slot": rec.get("slot", ""), "job_key": job_key,
            "job_source": job_key.split(":")[1] if job_key.count(":") >= 2 else "",
            "position": int(rec.get("position", 0)), "cpc_cents": int(rec.get("cpc_cents", 0)),
            "list": rec.get("list", ""), "template": rec.get("template", ""),
            "campaign": rec.get("campaign", ""), "creative": rec.get("creative", ""),
            "partner": rec.get("partner", ""),
        }
        hit = await self._sealed(hit)
        try:
            value = self.codec.encode("engagement.hit", hit)
        except Exception:  # a record we cannot encode is a bug: keep it visible, never lose the hit silently
            log.exception("cannot encode hit for %s", rec.get("code"))
            return
        self.producer.send(self.topic, rec["lead_id"].encode(), value)


class LinksUnavailable(Exception):
    """Redis did not answer a link lookup within REDIS_WAIT_S."""


async def _drain(receive) -> None:
    more = True
    while more:
        msg = await receive()
        more = msg.get("more_body", False)


async def _read_body(receive, limit: int) -> bytes | None:
    """The request body, or None when it is longer than limit (the rest is read and dropped)."""
    chunks, size, more = [], 0, True
    while more:
        msg = await receive()
        chunk = msg.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        more = msg.get("more_body", False)
    return b"".join(chunks) if size <= limit else None


async def _respond(send, status: int, body: bytes, content_type: bytes, head: bool = False,
                   extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


def app_from_env() -> TrackingApp:
    return TrackingApp(get_settings())


def main() -> None:
    import uvicorn

    from streams.logs import configure_logging
    s = get_settings()
    configure_logging("tracking", s.log_format)
    # a person waits on every request: collect young garbage often, old rarely (the cache is old)
    tune_for_streaming()
    app = TrackingApp(s)
    sockets = [_bound(s.tracking_host, s.tracking_port)]
    if s.tracking_internal_port:
        sockets.append(_bound(s.tracking_internal_host, s.tracking_internal_port))
        app.internal_port = sockets[1].getsockname()[1]
    config = uvicorn.Config(app, loop="uvloop", http="httptools", access_log=False, lifespan="on", log_level="warning")
    uvicorn.Server(config).run(sockets=sockets)


def _bound(host: str, port: int) -> socket.socket:
    """A listening socket, as uvicorn would bind it."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


if __name__ == "__main__":
    main()
