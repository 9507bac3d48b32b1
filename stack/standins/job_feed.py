"""A local stand-in for partners' job feeds: realistic Indeed-style XML and JSON feeds.

GET  /feeds/{tenant}/{source}.xml|.json?n=3000&now=<epoch ms or ISO>&gzip=1
     a feed, with ETag / If-None-Match (304); gzip=1 compresses it (Content-Length then
     counts the compressed bytes, as real servers do)
POST /control {"mode": MODE, "delay": seconds, "expire": [job ids to leave out]}
     MODE: ok | down (503) | throttled (429) | malformed (cut-off XML, invalid JSON) |
           slow (answers after `delay`) | empty (no jobs) | html (200 with a login page)
GET  /control   the current controls

The same seed, tenant, source, n and now always give the same feed, byte for byte. Without
`now` the feed is dated from the start of the server's current UTC day, so it stays stable
(and its ETag valid) all day.

Run: python -m stack.standins.job_feed --port 8089 [--host 127.0.0.1] [--seed 1]
Tests: url, stop = start_server(port=0)
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any, Callable
from xml.sax.saxutils import escape

from aiohttp import web

DEFAULT_JOBS = 3000
MAX_JOBS = 200_000
DAY_MS = 86_400_000
MODES = ("ok", "down", "throttled", "malformed", "slow", "empty", "html")
LOGIN_PAGE = b"<!doctype html><html><body><form action=/login>Please sign in</form></body></html>"

# (city, state, zip, lat, lon): the ZIP's own centre, so geo lookups agree with the feed.
CITIES = [
    ("New York", "NY", "10001", 40.7484, -73.9967),
    ("Los Angeles", "CA", "90012", 34.0614, -118.2385),
    ("Chicago", "IL", "60601", 41.8858, -87.6181),
    ("Houston", "TX", "77002", 29.7594, -95.3594),
    ("Phoenix", "AZ", "85004", 33.4557, -112.0686),
    ("Seattle", "WA", "98101", 47.6114, -122.3305),
    ("Miami", "FL", "33101", 25.7791, -80.1978),
    ("Denver", "CO", "80202", 39.7491, -104.9946),
    ("Atlanta", "GA", "30303", 33.7525, -84.3888),
    ("Boston", "MA", "02108", 42.3576, -71.0684),
    ("San Francisco", "CA", "94103", 37.7725, -122.4147),
    ("Austin", "TX", "78701", 30.2711, -97.7437),
    ("Philadelphia", "PA", "19107", 39.9523, -75.1624),
]

TITLES = {
    "Nursing": [
        "Registered Nurse - Med/Surg", "ICU Registered Nurse", "Licensed Practical Nurse",
        "Certified Nursing Assistant", "Travel Nurse RN - Telemetry", "Home Health Nurse",
        "Emergency Room Nurse", "Pediatric Nurse", "Nurse Practitioner", "Charge Nurse - Night Shift",
    ],
    "Warehouse & Logistics": [
        "Warehouse Associate", "Forklift Operator", "Picker Packer", "Shipping and Receiving Clerk",
        "Inventory Control Specialist", "Material Handler", "Warehouse Supervisor",
        "Order Fulfillment Associate", "Reach Truck Forklift Driver", "Loader Unloader",
    ],
    "Driving": [
        "CDL-A Truck Driver", "Delivery Driver", "Box Truck Driver", "Local Courier Driver",
        "School Bus Driver", "Forklift Driver", "Rideshare Driver", "OTR Truck Driver",
        "Route Sales Driver", "Non-CDL Van Driver",
    ],
    "Technology": [
        "Software Engineer", "Senior Python Developer", "Data Analyst", "IT Support Specialist",
        "DevOps Engineer", "Frontend Developer", "QA Test Engineer", "Network Administrator",
        "Help Desk Technician", "Cloud Infrastructure Engineer",
    ],
    "Retail": [
        "Retail Sales Associate", "Cashier", "Store Manager", "Assistant Store Manager",
        "Stock Associate", "Visual Merchandiser", "Pharmacy Technician", "Customer Service Associate",
        "Department Supervisor", "Seasonal Retail Associate",
    ],
    "Hospitality": [
        "Line Cook", "Server", "Hotel Front Desk Agent", "Housekeeper", "Bartender",
        "Dishwasher", "Banquet Server", "Barista", "Restaurant General Manager", "Prep Cook",
    ],
}

COMPANIES = {
    "Nursing": ["Mercy General Hospital", "Northside Health", "CareWell Home Health",
                "St. Luke's Medical Center", "Sunrise Senior Living", "Valley Children's Hospital"],
    "Warehouse & Logistics": ["Atlas Fulfillment", "Prime Logistics", "Harbor Freight Services",
                              "Johnson & Sons Distribution", "Summit Supply Chain", "BlueLine 3PL"],
    "Driving": ["RoadRunner Freight", "Metro Courier", "SwiftLine Transport", "City Bus Lines",
                "QuickDrop Delivery", "Heartland Express Carriers"],
    "Technology": ["Brightwave Software", "DataForge", "Cobalt Systems", "Nimbus Cloud",
                   "Pixel & Code", "Northstar IT Services"],
    "Retail": ["Main Street Market", "ValueMart", "Urban Outfit Co.", "HomeGoods Plus",
               "CornerDrug Pharmacy", "Sports Depot"],
    "Hospitality": ["Grand Plaza Hotel", "The Rusty Spoon", "Harborview Resort", "Bean There Cafe",
                    "Sunset Grill", "Marriott-style Suites"],
}

PERKS = ["Weekly pay", "Health, dental and vision from day one", "401(k) with match",
         "Paid time off", "Tuition assistance", "Flexible schedules", "Sign-on bonus",
         "Overtime available", "Employee discount", "Career growth"]


@dataclass
class Controls:
    """What the next requests should do; changed through POST /control."""

    mode: str = "ok"
    delay_s: float = 2.0
    expire: set[str] = field(default_factory=set)
    requests: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The controls as JSON."""
        return {"mode": self.mode, "delay": self.delay_s, "expire": sorted(self.expire),
                "requests": self.requests}


def generate_jobs(seed: int, tenant: str, source: str, n: int, now_ms: int) -> list[dict[str, Any]]:
    """n jobs, the same for the same arguments, posted within the 30 days before now_ms."""
    rng = random.Random(f"{seed}:{tenant}:{source}")
    return [_job(rng, source, i, now_ms) for i in range(n)]


def _job(rng: random.Random, source: str, i: int, now_ms: int) -> dict[str, Any]:
    """One job; draws the same number of values every time, so job i never depends on n."""
    city, state, zip_code, lat, lon = rng.choice(CITIES)
    category = rng.choice(list(TITLES))
    title = rng.choice(TITLES[category])
    company = rng.choice(COMPANIES[category])
    cpc_cents = rng.randint(10, 300)
    posted_ms = now_ms - rng.randint(0, 30 * 86_400) * 1000
    perks = rng.sample(PERKS, 3)
    job_id = f"{source}-{i:06d}"
    return {
        "id": job_id, "title": title, "company": company, "city": city, "state": state,
        "zip": zip_code, "country": "US",
        # Jobs spread around the city centre, up to ~15 km.
        "lat": round(lat + rng.uniform(-0.12, 0.12), 5),
        "lon": round(lon + rng.uniform(-0.12, 0.12), 5),
        "category": category, "posted_at_ms": posted_ms, "cpc": f"{cpc_cents // 100}.{cpc_cents % 100:02d}",
        "url": f"https://jobs.example.com/{source}/{job_id}?utm_source=leadstream",
        "description": (f"{company} is hiring a {title} in {city}, {state}. "
                        f"Benefits: {', '.join(perks)}. Apply today & start next week."),
    }


def render_xml(jobs: list[dict[str, Any]], publisher: str) -> bytes:
    """The Indeed-style <source> document, every value in CDATA."""
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<source>\n',
             f"<publisher>{escape(publisher)}</publisher>\n",
             "<publisherurl>https://jobs.example.com/</publisherurl>\n"]
    for job in jobs:
        posted = datetime.fromtimestamp(job["posted_at_ms"] / 1000, tz=timezone.utc)
        fields = [("title", job["title"]), ("date", format_datetime(posted, usegmt=True)),
                  ("referencenumber", job["id"]), ("url", job["url"]), ("company", job["company"]),
                  ("city", job["city"]), ("state", job["state"]), ("country", job["country"]),
                  ("postalcode", job["zip"]), ("description", job["description"]),
                  ("category", job["category"]), ("cpc", job["cpc"])]
        parts.append("<job>")
        parts.extend(f"<{tag}><![CDATA[{value}]]></{tag}>" for tag, value in fields)
        parts.append("</job>\n")
    parts.append("</source>\n")
    return "".join(parts).encode()


def render_json(jobs: list[dict[str, Any]]) -> bytes:
    """The JSON feed; every fifth cpc is sent as a number, the rest as strings, as partners do."""
    out = []
    for i, job in enumerate(jobs):
        posted = datetime.fromtimestamp(job["posted_at_ms"] / 1000, tz=timezone.utc)
        entry = {k: v for k, v in job.items() if k != "posted_at_ms"}
        entry["posted_at"] = posted.strftime("%Y-%m-%dT%H:%M:%SZ")
        if i % 5 == 0:
            entry["cpc"] = float(job["cpc"])
        out.append(entry)
    return json.dumps({"jobs": out}, separators=(",", ":")).encode()


class FeedStandin:
    """The server's state: controls, seed, and a small cache of rendered feeds."""

    def __init__(self, seed: int = 1, clock: Callable[[], float] = time.time) -> None:
        self.seed = seed
        self.clock = clock
        self.controls = Controls()
        self.stopping = asyncio.Event()
        self._cache: OrderedDict[tuple, bytes] = OrderedDict()

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application()
        app.router.add_get("/feeds/{tenant}/{feed}", self.feed)
        app.router.add_get("/control", self.show_controls)
        app.router.add_post("/control", self.set_controls)
        app.router.add_get("/healthz", self.healthz)
        return app

    async def feed(self, request: web.Request) -> web.StreamResponse:
        """A tenant's feed in the format its file extension names, shaped by the controls."""
        self.controls.requests += 1
        tenant, name = request.match_info["tenant"], request.match_info["feed"]
        source, _, fmt = name.rpartition(".")
        if fmt not in ("xml", "json") or not source:
            raise web.HTTPNotFound(text=f"no feed {name!r}: use {{source}}.xml or {{source}}.json\n")
        try:
            n, now_ms = self._size(request), self._now_ms(request)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from None
        mode = self.controls.mode
        if mode == "down":
            return web.Response(status=503, text="feed temporarily unavailable\n",
                                headers={"Retry-After": "5"})
        if mode == "throttled":
            return web.Response(status=429, text="too many requests\n", headers={"Retry-After": "30"})
        if mode == "html":
            return web.Response(body=LOGIN_PAGE, content_type="text/html", charset="utf-8")
        if mode == "slow":
            await self._pause(self.controls.delay_s)
        body = self._body(tenant, source, fmt, 0 if mode == "empty" else n, now_ms)
        if mode == "malformed":
            body = _break(body, fmt)
        response = _conditional(request, body, fmt)
        if request.query.get("gzip") == "1" and response.status == 200:
            response.enable_compression()
        return response

    def _size(self, request: web.Request) -> int:
        """The n query parameter, bounded."""
        n = int(request.query.get("n", DEFAULT_JOBS))
        if not 0 <= n <= MAX_JOBS:
            raise ValueError(f"n must be between 0 and {MAX_JOBS}")
        return n

    def _now_ms(self, request: web.Request) -> int:
        """The now query parameter (epoch ms or ISO 8601), else the start of today (UTC)."""
        value = request.query.get("now")
        if value is None:
            return int(self.clock() * 1000) // DAY_MS * DAY_MS
        if value.isdigit():
            return int(value)
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return int(moment.timestamp() * 1000)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the server stops."""
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass

    def _body(self, tenant: str, source: str, fmt: str, n: int, now_ms: int) -> bytes:
        """The rendered feed, minus expired jobs, from a small cache."""
        key = (tenant, source, fmt, n, now_ms, frozenset(self.controls.expire))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        jobs = [j for j in generate_jobs(self.seed, tenant, source, n, now_ms)
                if j["id"] not in self.controls.expire]
        body = render_xml(jobs, f"{tenant} {source}") if fmt == "xml" else render_json(jobs)
        self._cache[key] = body
        while len(self._cache) > 16:
            self._cache.popitem(last=False)
        return body

    async def show_controls(self, request: web.Request) -> web.Response:
        """The current controls."""
        return web.json_response(self.controls.as_dict())

    async def set_controls(self, request: web.Request) -> web.Response:
        """Change mode, delay and the set of expired job ids (replaced when given)."""
        try:
            change = await request.json()
            self._apply(change if isinstance(change, dict) else {})
        except (ValueError, TypeError) as exc:
            raise web.HTTPBadRequest(text=f"bad control: {exc}\n") from None
        return web.json_response(self.controls.as_dict())

    def _apply(self, change: dict[str, Any]) -> None:
        """Validate, then apply, one control change."""
        mode = change.get("mode", self.controls.mode)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        delay = float(change.get("delay", self.controls.delay_s))
        expire = change.get("expire")
        if expire is not None and not isinstance(expire, list):
            raise ValueError("expire must be a list of job ids")
        self.controls.mode, self.controls.delay_s = mode, delay
        if expire is not None:
            self.controls.expire = {str(x) for x in expire}

    async def healthz(self, request: web.Request) -> web.Response:
        """Liveness."""
        return web.Response(text="ok\n")


def _break(body: bytes, fmt: str) -> bytes:
    """A feed cut off mid-way, like a download that died: XML unclosed, JSON invalid."""
    cut = body[: max(len(body) // 2, 60)]
    return cut if fmt == "xml" else cut + b"<!-- upstream error -->"


def _conditional(request: web.Request, body: bytes, fmt: str) -> web.Response:
    """200 with an ETag, or 304 when the client already holds this body."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
    sent = [t.strip().removeprefix("W/") for t in request.headers.get("If-None-Match", "").split(",")]
    if etag in sent or "*" in sent:
        return web.Response(status=304, headers={"ETag": etag})
    content_type = "application/xml" if fmt == "xml" else "application/json"
    return web.Response(body=body, content_type=content_type, charset="utf-8",
                        headers={"ETag": etag})


def start_server(port: int = 0, host: str = "127.0.0.1",
                 seed: int = 1) -> tuple[str, Callable[[], None]]:
    """Serve in a background thread; returns (base url, stop). stop() returns within a second."""
    standin = FeedStandin(seed=seed)
    ready = threading.Event()
    box: dict[str, Any] = {}

    def serve() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        runner = web.AppRunner(standin.app(), access_log=None, shutdown_timeout=1.0)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, host, port, shutdown_timeout=1.0)
            loop.run_until_complete(site.start())
            box.update(loop=loop, runner=runner, port=runner.addresses[0][1])
        except BaseException as exc:  # reported to the caller of start_server
            box["error"] = exc
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, name="job-feed-standin", daemon=True)
    thread.start()
    ready.wait(10)
    if "error" in box:
        raise RuntimeError(f"job feed stand-in could not start on {host}:{port}: {box['error']}")

    def stop() -> None:
        loop = box["loop"]
        loop.call_soon_threadsafe(standin.stopping.set)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    return f"http://{host}:{box['port']}", stop


def main(argv: list[str] | None = None) -> None:
    """Command line: serve until interrupted."""
    parser = argparse.ArgumentParser(description="Local stand-in for partner job feeds.")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    url, stop = start_server(port=args.port, host=args.host, seed=args.seed)
    print(f"job feed stand-in on {url}  (feeds: {url}/feeds/TENANT/SOURCE.xml or .json; "
          f"controls: POST {url}/control); Ctrl-C stops it", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        print("job feed stand-in stopped", flush=True)


if __name__ == "__main__":
    main()
