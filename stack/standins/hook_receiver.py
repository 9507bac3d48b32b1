"""A local stand-in for tenants' webhook endpoints: checks our signatures, records, misbehaves.

POST   /hooks/{name}     a webhook. The X-Leadstream-Signature header must sign the body with
                         {name}'s secret ("hook-secret" unless set) within 5 minutes, else 401,
                         recorded with signature_ok false. A body that is not JSON gets 400.
                         Otherwise the request is recorded and answered as the mode says:
                         ok 200 | fail 500 | gone 410 | throttle 429 + Retry-After: 1 |
                         slow (sleep delay_s, then 200; recorded on arrival, as a tenant
                         that got it but answered too late would have it)
POST   /slack/{name}     a Slack incoming webhook (unsigned, as Slack's are: Alertmanager's
                         alerts): a JSON body is recorded and answered "ok", anything else 400
POST   /control/{name}   {"mode": ..., "fail_next": N, "delay_s": x, "secret": "...",
                         "retry_after_s": 1}; keys left out keep their value. With fail_next
                         only the next N requests misbehave, then the mode returns to ok.
GET    /control/{name}   the controls and how many requests arrived
GET    /received/{name}  what arrived, in order: {event_id, attempt, body, received_at,
                         signature_ok, status, content_type, user_agent}
DELETE /received/{name}  forget what arrived (and the request count)

Names need no setup: a new name is a well-behaved endpoint with the default secret.
The signature check is written here from the documented format, not imported from
channels.webhooks_out, so a wrong signer and a wrong verifier cannot pass the tests together.

Run: python -m stack.standins.hook_receiver --port 18050 [--host 127.0.0.1]
Tests: url, stop = start(0)
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

from stack.standins.threaded import Steering, serve_in_thread

DEFAULT_SECRET = "hook-secret"
SIGNATURE_HEADER = "X-Leadstream-Signature"
TOLERANCE_S = 300
MODES = {"ok": 200, "fail": 500, "gone": 410, "throttle": 429, "slow": 200}
KEEP = 20_000  # records kept per name: a long-running stand-in must not grow without bound


@dataclass
class HookState(Steering):
    """What one endpoint has received and how it should answer."""

    secret: str = DEFAULT_SECRET
    received: deque = field(default_factory=lambda: deque(maxlen=KEEP))

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "fail_next": self.remaining, "delay_s": self.delay_s,
                "retry_after_s": self.retry_after_s, "requests": self.requests,
                "received": len(self.received), "secret": self.secret}


STATES = web.AppKey("states", dict)


def signature_ok(secret: str, header: str | None, body: bytes, now_s: float) -> bool:
    """A tenant's check: t=<secs>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>, any v1 may match."""
    fields: dict[str, list[str]] = {}
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        fields.setdefault(key, []).append(value)
    stamps = fields.get("t", [])
    if len(stamps) != 1 or not stamps[0].isdigit() or abs(now_s - int(stamps[0])) > TOLERANCE_S:
        return False
    signed = stamps[0].encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected.encode(), v.encode("ascii", "replace"))
               for v in fields.get("v1", []))


def _state(request: web.Request) -> HookState:
    states: dict[str, HookState] = request.app[STATES]
    return states.setdefault(request.match_info["name"], HookState())


async def receive(request: web.Request) -> web.Response:
    """POST /hooks/{name}: check the signature, record, answer as the mode says."""
    state = _state(request)
    state.requests += 1
    raw = await request.read()
    signed = signature_ok(state.secret, request.headers.get(SIGNATURE_HEADER), raw, time.time())
    try:
        body, parsed = json.loads(raw), True
    except ValueError:
        body, parsed = None, False
    attempt = request.headers.get("X-Leadstream-Attempt", "")
    record = {"event_id": request.headers.get("X-Leadstream-Event-Id"),
              "attempt": int(attempt) if attempt.isdigit() else None,
              "body": body, "received_at": time.time(), "signature_ok": signed,
              "content_type": request.headers.get("Content-Type"),
              "user_agent": request.headers.get("User-Agent")}
    if not signed:
        state.received.append({**record, "status": 401})
        return web.json_response({"error": "bad or missing signature"}, status=401)
    if not parsed:
        state.received.append({**record, "status": 400})
        return web.json_response({"error": "body is not JSON"}, status=400)
    mode = state.next_mode()
    status = MODES[mode]
    state.received.append({**record, "status": status})
    if mode == "slow":
        await asyncio.sleep(state.delay_s)
    if mode == "throttle":
        return web.json_response({"error": "slow down"}, status=429,
                                 headers={"Retry-After": f"{state.retry_after_s:g}"})
    if status != 200:
        return web.json_response({"error": {500: "internal error", 410: "gone"}[status]}, status=status)
    return web.json_response({"received": record["event_id"]})


async def slack(request: web.Request) -> web.Response:
    """POST /slack/{name}: what a Slack incoming webhook takes, recorded under {name}."""
    state = _state(request)
    state.requests += 1
    raw = await request.read()
    try:
        body = json.loads(raw)
    except ValueError:
        state.received.append({"body": None, "received_at": time.time(), "status": 400, "signature_ok": None})
        return web.Response(status=400, text="invalid_payload")
    state.received.append({"body": body, "received_at": time.time(), "status": 200, "signature_ok": None,
                           "content_type": request.headers.get("Content-Type"),
                           "user_agent": request.headers.get("User-Agent")})
    return web.Response(text="ok")


async def control_set(request: web.Request) -> web.Response:
    """POST /control/{name}: change mode, fail_next, delay_s, retry_after_s, secret."""
    state = _state(request)
    try:
        change = await request.json()
        if not isinstance(change, dict):
            raise ValueError("send a JSON object")
        mode = change.get("mode", state.mode)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        remaining = change.get("fail_next", state.remaining if "mode" not in change else None)
        remaining = None if remaining is None else int(remaining)
        delay_s = float(change.get("delay_s", state.delay_s))
        retry_after_s = float(change.get("retry_after_s", state.retry_after_s))
        secret = str(change.get("secret", state.secret))
    except (ValueError, TypeError) as exc:
        raise web.HTTPBadRequest(text=f"bad control: {exc}\n") from None
    if remaining is not None and remaining <= 0:
        mode, remaining = "ok", None  # "misbehave 0 more times" is behaving
    state.mode, state.remaining, state.delay_s = mode, remaining, delay_s
    state.retry_after_s, state.secret = retry_after_s, secret
    return web.json_response(state.as_dict())


async def control_get(request: web.Request) -> web.Response:
    """GET /control/{name}: the controls and the request count."""
    return web.json_response(_state(request).as_dict())


async def received_list(request: web.Request) -> web.Response:
    """GET /received/{name}: every request that arrived, in order."""
    return web.json_response(list(_state(request).received))


async def received_clear(request: web.Request) -> web.Response:
    """DELETE /received/{name}: forget what arrived."""
    state = _state(request)
    state.received.clear()
    state.requests = 0
    return web.json_response({"cleared": True})


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def make_app(secrets: dict[str, str] | None = None) -> web.Application:
    """The aiohttp application; `secrets` presets {name: secret}."""
    app = web.Application()
    app[STATES] = {name: HookState(secret=secret) for name, secret in (secrets or {}).items()}
    app.router.add_post("/hooks/{name}", receive)
    app.router.add_post("/slack/{name}", slack)
    app.router.add_post("/control/{name}", control_set)
    app.router.add_get("/control/{name}", control_get)
    app.router.add_get("/received/{name}", received_list)
    app.router.add_delete("/received/{name}", received_clear)
    app.router.add_get("/healthz", healthz)
    return app


def start(port: int = 0, host: str = "127.0.0.1",
          secrets: dict[str, str] | None = None) -> tuple[str, Callable[[], None]]:
    """Serve on its own thread and loop; returns (base url, stop)."""
    return serve_in_thread(make_app(secrets), host, port, "hook-receiver-standin")


async def _main(port: int, host: str) -> None:
    """Serve until SIGINT/SIGTERM, then say how much arrived."""
    app = make_app()
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    url = f"http://{host}:{runner.addresses[0][1]}"
    print(f"hook receiver stand-in on {url}  (hooks: POST {url}/hooks/NAME, secret {DEFAULT_SECRET!r}; "
          f"controls: POST {url}/control/NAME; seen: GET {url}/received/NAME)", flush=True)
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stopping.set)
    await stopping.wait()
    counts = ", ".join(f"{n} {len(s.received)}" for n, s in app[STATES].items()) or "nothing"
    await runner.cleanup()
    print(f"hook receiver stand-in stopped; received: {counts}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Command line: python -m stack.standins.hook_receiver --port P."""
    parser = argparse.ArgumentParser(description="Local stand-in for tenants' webhook endpoints.")
    parser.add_argument("--port", type=int, default=18050, help="port (0 = any free)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 in a container)")
    args = parser.parse_args(argv)
    asyncio.run(_main(args.port, args.host))


if __name__ == "__main__":
    main()
