"""A local stand-in for HubSpot's CRM API (contacts), in its public wire shapes.

- POST /crm/v3/objects/contacts/search        Bearer token. {filterGroups: [{filters: [{propertyName,
  operator: EQ|NEQ|GT|GTE|LT|LTE|HAS_PROPERTY, value}]}], sorts: [{propertyName, direction}],
  properties: [...], limit (<= 200), after: "<offset>"} -> {total, results: [{id, properties,
  createdAt, updatedAt, archived}], paging: {next: {after}}}. A page reaching past 10,000 results
  is a 400 (HubSpot's cap), as are more than 5 filter groups, 6 filters in one, 18 in all.
- POST /crm/v3/objects/contacts/batch/upsert   {inputs: [{idProperty: "email", id, properties}]}
  (<= 100): 200 {status: COMPLETE, results}; some refused: 207 with errors [{status: error,
  category: VALIDATION_ERROR, message, context: {ids: [...]}}] and numErrors; the rest applied.
- POST /crm/v3/objects/contacts/batch/update   {inputs: [{id, properties}]} (<= 100): 200 {status:
  COMPLETE, results}; an unknown id makes the request a 207 with an OBJECT_NOT_FOUND error for it.
- GET /crm/v3/objects/contacts/{id}
- Rate limit: `rate_max` requests per `rate_window_ms` rolling (default 100 per 10 s), then 429
  {status: error, errorType: RATE_LIMIT, policyName: TEN_SECONDLY_ROLLING} with Retry-After and
  the X-HubSpot-RateLimit-* headers.
- Webhooks: every change (made here through the API: changeSource INTEGRATION; or as a CRM
  user through the controls: changeSource CRM) is POSTed to `webhook_target`, if set, as a JSON
  array of contact.creation / contact.propertyChange events signed with X-HubSpot-Signature-v3
  under `app_secret`.

Controls (tests): POST /_control {rate_max, rate_window_ms, search_cap, webhook_target, clock_ms
(a fixed "now" for modification times; null: the real clock), outage (true: every API request
answered 503), reset}; GET /_control (the
counts); POST /_control/contacts {contacts: [{email, properties}], at_ms}: created or changed
as a CRM user would; GET /_control/contacts: every contact.

Run: python -m stack.standins.hubspot --port 18070
"""
from __future__ import annotations

import argparse
import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Callable

import httpx
import orjson
from aiohttp import web

from domain.crm import (FILTER_GROUPS_MAX, FILTERS_MAX, FILTERS_PER_GROUP_MAX, SEARCH_CAP, SEARCH_PAGE_MAX,
                        UPSERT_MAX, signature_v3)
from stack.standins.threaded import serve_in_thread

TOKEN = "pat-standin-leadstream-local"
APP_SECRET = "hubspot-standin-app-secret"
PORTAL_ID = 4242
APP_ID = 777
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_OPS = {"EQ": lambda a, b: a == b, "NEQ": lambda a, b: a != b, "GT": lambda a, b: _num(a) > _num(b),
        "GTE": lambda a, b: _num(a) >= _num(b), "LT": lambda a, b: _num(a) < _num(b),
        "LTE": lambda a, b: _num(a) <= _num(b)}


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


@dataclass
class Contact:
    id: str
    created_ms: int
    properties: dict[str, str] = field(default_factory=dict)

    def shown(self, names: list[str]) -> dict:
        props = {"hs_object_id": self.id, "createdate": str(self.created_ms),
                 "lastmodifieddate": self.properties["lastmodifieddate"],
                 **{n: self.properties.get(n) for n in names}}
        return {"id": self.id, "properties": props, "createdAt": _iso(self.created_ms),
                "updatedAt": _iso(int(self.properties["lastmodifieddate"])), "archived": False}


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


@dataclass
class State:
    contacts: dict[str, Contact] = field(default_factory=dict)
    by_email: dict[str, str] = field(default_factory=dict)
    next_id: int = 1001
    rate_max: int = 100
    rate_window_ms: int = 10_000
    search_cap: int = SEARCH_CAP
    webhook_target: str | None = None
    clock_ms: int | None = None
    outage: bool = False  # every API request answered 503, as during one of HubSpot's incidents
    hits: list[int] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    next_event: int = 1

    def now(self) -> int:
        return self.clock_ms if self.clock_ms is not None else int(time.time() * 1000)

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def put(self, email: str, props: dict, at_ms: int) -> tuple[Contact, bool, dict]:
        """Create or change the contact with this email; (contact, created, the properties changed)."""
        email = email.strip().lower()
        cid = self.by_email.get(email)
        created = cid is None
        if created:
            cid, self.next_id = str(self.next_id), self.next_id + 1
            self.contacts[cid] = Contact(cid, at_ms, {"email": email})
            self.by_email[email] = cid
        c = self.contacts[cid]
        changed = {k: "" if v is None else str(v) for k, v in props.items()
                   if k != "email" and c.properties.get(k) != ("" if v is None else str(v))}
        c.properties.update(changed)
        if created or changed:
            c.properties["lastmodifieddate"] = str(at_ms)
        return c, created, changed


STATE = web.AppKey("state", State)


def _error(status: int, category: str, message: str, **more) -> web.Response:
    return web.json_response({"status": "error", "category": category, "message": message,
                              "correlationId": "standin", **more}, status=status)


@web.middleware
async def gatekeeper(request: web.Request, handler):
    if request.path.startswith("/_control") or request.path == "/healthz":
        return await handler(request)
    st = request.app[STATE]
    if st.outage:
        st.count("503")
        return _error(503, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable.")
    if request.headers.get("Authorization") != f"Bearer {TOKEN}":
        return _error(401, "INVALID_AUTHENTICATION", "Authentication credentials not found.")
    now = int(time.time() * 1000)
    st.hits = [t for t in st.hits if t > now - st.rate_window_ms]
    if len(st.hits) >= st.rate_max:
        st.count("429")
        wait_ms = st.hits[0] + st.rate_window_ms - now
        resp = _error(429, "RATE_LIMITS", "You have reached your ten_secondly_rolling limit.",
                      errorType="RATE_LIMIT", policyName="TEN_SECONDLY_ROLLING")
        resp.headers.update({"Retry-After": str(max(1, -(-wait_ms // 1000))),
                             "X-HubSpot-RateLimit-Interval-Milliseconds": str(st.rate_window_ms),
                             "X-HubSpot-RateLimit-Max": str(st.rate_max), "X-HubSpot-RateLimit-Remaining": "0"})
        return resp
    st.hits.append(now)
    resp = await handler(request)
    resp.headers.update({"X-HubSpot-RateLimit-Interval-Milliseconds": str(st.rate_window_ms),
                         "X-HubSpot-RateLimit-Max": str(st.rate_max),
                         "X-HubSpot-RateLimit-Remaining": str(st.rate_max - len(st.hits))})
    return resp


def _filters_problem(groups) -> str | None:
    if not isinstance(groups, list) or len(groups) > FILTER_GROUPS_MAX:
        return f"filterGroups: at most {FILTER_GROUPS_MAX} groups"
    total = 0
    for g in groups:
        filters = g.get("filters") if isinstance(g, dict) else None
        if not isinstance(filters, list) or len(filters) > FILTERS_PER_GROUP_MAX:
            return f"filters: at most {FILTERS_PER_GROUP_MAX} in one group"
        total += len(filters)
        for f in filters:
            if not isinstance(f, dict) or f.get("operator") not in (*_OPS, "HAS_PROPERTY") or not f.get("propertyName"):
                return f"a filter needs propertyName and an operator of {sorted((*_OPS, 'HAS_PROPERTY'))}"
    if total > FILTERS_MAX:
        return f"at most {FILTERS_MAX} filters in all"
    return None


def _matches(c: Contact, groups: list) -> bool:
    def one(f) -> bool:
        v = c.id if f["propertyName"] == "hs_object_id" else c.properties.get(f["propertyName"])
        if f["operator"] == "HAS_PROPERTY":
            return v not in (None, "")
        return v is not None and _OPS[f["operator"]](v, str(f.get("value")))
    return not groups or any(all(one(f) for f in g["filters"]) for g in groups)


async def search(request: web.Request) -> web.Response:
    st = request.app[STATE]
    st.count("search")
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "VALIDATION_ERROR", "Invalid input JSON")
    groups = body.get("filterGroups", [])
    if problem := _filters_problem(groups):
        return _error(400, "VALIDATION_ERROR", problem)
    limit, after = body.get("limit", 10), str(body.get("after") or "0")
    if not isinstance(limit, int) or not 1 <= limit <= SEARCH_PAGE_MAX or not after.isdigit():
        return _error(400, "VALIDATION_ERROR", f"limit is 1 to {SEARCH_PAGE_MAX}; after is a number")
    start = int(after)
    if start + limit > st.search_cap:
        return _error(400, "VALIDATION_ERROR", f"paging past {st.search_cap} results is not supported: narrow the "
                                               "search (e.g. by lastmodifieddate)")
    hits = [c for c in st.contacts.values() if _matches(c, groups)]
    sorts = body.get("sorts") or [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]
    name, desc = sorts[0].get("propertyName"), sorts[0].get("direction") == "DESCENDING"
    hits.sort(key=lambda c: (_num(c.id if name == "hs_object_id" else c.properties.get(name)), int(c.id)),
              reverse=desc)
    page = hits[start:start + limit]
    out = {"total": len(hits), "results": [c.shown(body.get("properties") or []) for c in page]}
    if start + limit < len(hits):
        out["paging"] = {"next": {"after": str(start + limit)}}
    return web.json_response(out)


async def _batch_inputs(request: web.Request) -> list | web.Response:
    """A batch request's inputs, or the 400 HubSpot answers a malformed one with."""
    try:
        inputs = (await request.json())["inputs"]
    except (ValueError, KeyError, TypeError):
        return _error(400, "VALIDATION_ERROR", "Invalid input JSON: {inputs: [...]}")
    if not isinstance(inputs, list) or not 1 <= len(inputs) <= UPSERT_MAX:
        return _error(400, "VALIDATION_ERROR", f"inputs: 1 to {UPSERT_MAX} records")
    return inputs


async def upsert(request: web.Request) -> web.Response:
    st = request.app[STATE]
    st.count("upsert")
    inputs = await _batch_inputs(request)
    if isinstance(inputs, web.Response):
        return inputs
    results, errors, events = [], [], []
    now = st.now()
    for item in inputs:
        email = str(item.get("id", "")) if item.get("idProperty") == "email" else ""
        if not EMAIL.match(email):
            errors.append({"status": "error", "category": "VALIDATION_ERROR",
                           "message": f"Property values were not valid: email {email!r} is invalid",
                           "context": {"ids": [email]}})
            continue
        c, created, changed = st.put(email, item.get("properties") or {}, now)
        events += _events(st, c, created, changed, now, "INTEGRATION")
        results.append({**c.shown(list(c.properties)), "new": created})
    await _send_webhooks(st, events)
    body = {"status": "COMPLETE", "results": results}
    if errors:
        return web.json_response({**body, "numErrors": len(errors), "errors": errors}, status=207)
    return web.json_response(body)


async def update(request: web.Request) -> web.Response:
    st = request.app[STATE]
    st.count("update")
    inputs = await _batch_inputs(request)
    if isinstance(inputs, web.Response):
        return inputs
    results, missing, events = [], [], []
    now = st.now()
    for item in inputs:
        c = st.contacts.get(str(item.get("id", "")))
        if c is None:
            missing.append(str(item.get("id", "")))
            continue
        c, _, changed = st.put(c.properties["email"], item.get("properties") or {}, now)
        events += _events(st, c, False, changed, now, "INTEGRATION")
        results.append(c.shown(list(c.properties)))
    await _send_webhooks(st, events)
    body = {"status": "COMPLETE", "results": results}
    if missing:
        errors = [{"status": "error", "category": "OBJECT_NOT_FOUND", "message": "resource not found",
                   "context": {"ids": missing}}]
        return web.json_response({**body, "numErrors": 1, "errors": errors}, status=207)
    return web.json_response(body)


async def read_one(request: web.Request) -> web.Response:
    c = request.app[STATE].contacts.get(request.match_info["id"])
    if c is None:
        return _error(404, "OBJECT_NOT_FOUND", "resource not found")
    return web.json_response(c.shown(list(c.properties)))


def _events(st: State, c: Contact, created: bool, changed: dict, at_ms: int, source: str) -> list[dict]:
    base = {"subscriptionId": 1, "portalId": PORTAL_ID, "appId": APP_ID, "occurredAt": at_ms, "attemptNumber": 0,
            "objectId": int(c.id), "changeSource": source, "sourceId": str(APP_ID) if source == "INTEGRATION" else None}
    out = []
    if created:
        out.append({**base, "subscriptionType": "contact.creation", "changeFlag": "NEW"})
    for name, value in sorted(changed.items()):
        out.append({**base, "subscriptionType": "contact.propertyChange", "propertyName": name, "propertyValue": value})
    for ev in out:
        ev["eventId"], st.next_event = st.next_event, st.next_event + 1
    return out


async def _send_webhooks(st: State, events: list[dict]) -> None:
    if not events or not st.webhook_target:
        return
    body = orjson.dumps(events)
    ts = str(int(time.time() * 1000))
    headers = {"Content-Type": "application/json", "X-HubSpot-Request-Timestamp": ts,
               "X-HubSpot-Signature-v3": signature_v3(APP_SECRET, "POST", st.webhook_target, body, ts)}
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            r = await http.post(st.webhook_target, content=body, headers=headers)
        st.count("webhooks_sent")
        st.count(f"webhook_answer_{r.status_code}")
    except httpx.HTTPError:
        st.count("webhooks_failed")  # HubSpot retries; the poller's lookback covers what is lost


async def control_set(request: web.Request) -> web.Response:
    st = request.app[STATE]
    doc = await request.json()
    if doc.get("reset"):
        st.__dict__.update(State().__dict__)  # in place: a started app's state is not replaced
    for name in ("rate_max", "rate_window_ms", "search_cap", "webhook_target", "clock_ms", "outage"):
        if name in doc:
            setattr(st, name, doc[name])
    return await control_get(request)


async def control_get(request: web.Request) -> web.Response:
    st = request.app[STATE]
    return web.json_response({"counts": st.counts, "contacts": len(st.contacts), "rate_max": st.rate_max,
                              "rate_window_ms": st.rate_window_ms, "search_cap": st.search_cap})


async def crm_user_changes(request: web.Request) -> web.Response:
    """Contacts created or changed in the CRM by its users (changeSource CRM)."""
    st = request.app[STATE]
    doc = await request.json()
    at = doc.get("at_ms") or st.now()
    events, ids = [], []
    for item in doc.get("contacts", []):
        c, created, changed = st.put(item["email"], item.get("properties") or {}, at)
        events += _events(st, c, created, changed, at, "CRM")
        ids.append(c.id)
    await _send_webhooks(st, events)
    return web.json_response({"ids": ids, "events": len(events)})


async def crm_contacts(request: web.Request) -> web.Response:
    st = request.app[STATE]
    return web.json_response([c.shown(list(c.properties)) for c in st.contacts.values()])


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def make_app() -> web.Application:
    app = web.Application(middlewares=[gatekeeper])
    app[STATE] = State()
    app.router.add_post("/crm/v3/objects/contacts/search", search)
    app.router.add_post("/crm/v3/objects/contacts/batch/upsert", upsert)
    app.router.add_post("/crm/v3/objects/contacts/batch/update", update)
    app.router.add_get("/crm/v3/objects/contacts/{id}", read_one)
    app.router.add_post("/_control", control_set)
    app.router.add_get("/_control", control_get)
    app.router.add_post("/_control/contacts", crm_user_changes)
    app.router.add_get("/_control/contacts", crm_contacts)
    app.router.add_get("/healthz", healthz)
    return app


def start(port: int = 0, host: str = "127.0.0.1") -> tuple[str, Callable[[], None]]:
    """Serve on its own thread and loop; returns (base url, stop)."""
    return serve_in_thread(make_app(), host, port, "hubspot-standin")


async def _main(port: int, host: str) -> None:
    runner = web.AppRunner(make_app(), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(f"hubspot stand-in on http://{host}:{port} (token {TOKEN})", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local stand-in for HubSpot's CRM contacts API.")
    parser.add_argument("--port", type=int, default=18070)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    asyncio.run(_main(args.port, args.host))


if __name__ == "__main__":
    main()
