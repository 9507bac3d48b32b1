"""Stand-ins for Vonage (SMS API), Plivo and Telnyx, mounted into the provider stand-in app.

At the providers' own paths, in their documented formats (see channels/vonage.py, plivo.py,
telnyx.py for the wire formats):

- Vonage   POST /sms/json                         api_key / api_secret in the form (or JSON) body;
  HTTP 200 with {"message-count", "messages": [...]} whatever happened: an error is a message
  status (2 missing parameter, 3 invalid parameter, 4 bad credentials); a long text is split
  into parts (one message-id each) as Vonage does
- Plivo    POST /v1/Account/{auth_id}/Message/    HTTP Basic auth_id:auth_token, JSON body;
  202 {"api_id", "message", "message_uuid": [...]}, errors {"api_id", "error"} (400 / 401)
- Telnyx   POST /v2/messages                      Bearer API key, JSON body; 200 {"data": {...}},
  errors {"errors": [{"code", "title", "detail"}]} (401, 400 invalid to, 422 missing parameter)

The shared /control/{provider} modes apply (fail = HTTP 500, throttle = HTTP 429 with
Retry-After, slow, fail_next), /sent/{provider} lists what each accepted. Vonage's own
refusals travel in a 200 body, so one more control says which status the next answers carry:

- POST /control/vonage/statuses  {"status": "1", "error_text": "Throttled", "count": 2}: the next
  `count` sends answer HTTP 200 with that status (1 throttled, 5 internal error, 9 quota, ...);
  count 0 clears it

/webhooks/emit learns "vonage", "plivo" and "telnyx" (`webhook_posts`), signing as each does:

    vonage  delivery-receipt / inbound-message fields, one form POST each, with api-key, timestamp,
            nonce and sig (the DEFAULT_CREDENTIALS signature secret and method)
    plivo   status-callback / inbound-message fields, one form POST each, X-Plivo-Signature-V3 (+ nonce)
            keyed with the stand-in's auth token over target + params
    telnyx  {"event_type": ..., "payload": {...}, "id"?, "occurred_at"?}: one JSON event each, wrapped in
            {"data": ..., "meta": ...}, signed with the stand-in's Ed25519 key, whose public half is
            published on /webhook-keys as "telnyx_public_key"

tamper=true spoils the signature (one character or byte flipped).
"""
from __future__ import annotations

import base64
import functools
import json
import re
import secrets
import time
import urllib.parse
import uuid
from collections import deque
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from channels.webhooks_in import plivo as plivo_hooks, telnyx as telnyx_hooks, vonage as vonage_hooks
from channels.webhooks_in.base import tamper as tamper_signature
from domain.sms_text import GSM7, encoding, segments

PROVIDERS = ("vonage", "plivo", "telnyx")
CREDENTIALS: dict[str, dict[str, str]] = {
    "vonage": {"api_key": "standin-key", "api_secret": "standin-secret",
               "signature_secret": "standin-signature-secret", "signature_method": "sha256"},
    "plivo": {"auth_id": "MA" + "0" * 18, "auth_token": "standin-plivo-token"},
    "telnyx": {"api_key": "KEYSTANDIN"},
}
VONAGE_STATUSES = web.AppKey("vonage_statuses", deque)
_DIGITS = re.compile(r"^[1-9]\d{6,14}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def _base():
    """The provider stand-in module (imported late: it imports this one)."""
    from stack.standins import providers
    return providers


# ---- Vonage SMS API -----------------------------------------------------------------------

def _vonage_refusal(status: str, error_text: str) -> web.Response:
    """Vonage's answer for a message it did not take: HTTP 200, the reason in the body."""
    return web.json_response({"message-count": "1", "messages": [{"status": status, "error-text": error_text}]})


def _vonage_http_error(status: int, headers: dict[str, str]) -> web.Response:
    title = "Too Many Requests" if status == 429 else "Internal Server Error"
    return web.json_response({"type": "https://developer.vonage.com/api-errors", "title": title},
                             status=status, headers=headers)


async def _vonage_fields(request: web.Request) -> dict[str, str]:
    if request.content_type == "application/json":
        try:
            data = await request.json()
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return {k: str(v) for k, v in (await request.post()).items()}


async def vonage_send(request: web.Request) -> web.Response:
    """POST /sms/json: 200 with the message parts, or a status Vonage documents."""
    base = _base()
    state = base._state(request, "vonage")
    creds = request.app[base.CREDENTIALS]["vonage"]
    fields = await _vonage_fields(request)
    for name in ("api_key", "api_secret"):
        if not fields.get(name):
            return _vonage_refusal("2", f"Missing {name}")
    if (fields["api_key"], fields["api_secret"]) != (creds["api_key"], creds["api_secret"]):
        return _vonage_refusal("4", "Bad Credentials")
    if (failure := await base._apply_mode(state, _vonage_http_error)) is not None:
        return failure
    forced: deque = request.app[VONAGE_STATUSES]
    if forced:
        status, text = forced.popleft()
        return _vonage_refusal(status, text)
    for name in ("from", "to", "text"):
        if not fields.get(name):
            return _vonage_refusal("2", f"Missing {name} param")
    if not _DIGITS.match(fields["to"]):
        return _vonage_refusal("3", f"Invalid to param: {fields['to']!r} (international digits, no '+')")
    if fields.get("type", "text") not in ("text", "unicode", "binary"):
        return _vonage_refusal("3", "Invalid type param")
    text = fields["text"]
    # what the handset shows: without type=unicode Vonage sends GSM-7, other characters lost
    shown = text if fields.get("type") == "unicode" else "".join(
        ch if encoding(ch) == GSM7 else "?" for ch in text)
    parts = segments(shown)[0]  # split as Vonage splits it
    ids = [secrets.token_hex(8).upper() for _ in range(parts)]
    state.accepted.append({"id": ids[0], "ids": ids, "to": fields["to"], "from": fields["from"], "body": text,
                           "shown": shown,
                           "type": fields.get("type", "text"), "client_ref": fields.get("client-ref", ""),
                           "request": {k: v for k, v in fields.items() if k != "api_secret"}})
    return web.json_response({"message-count": str(parts), "messages": [
        {"to": fields["to"], "message-id": message_id, "status": "0", "remaining-balance": "10.00000000",
         "message-price": "0.03330000", "network": "23410", "client-ref": fields.get("client-ref", "")}
        for message_id in ids]})


async def vonage_statuses(request: web.Request) -> web.Response:
    """POST /control/vonage/statuses: the next `count` sends answer this status."""
    body = await request.json()
    status, count = str(body.get("status", "")), int(body.get("count", 1))
    forced: deque = request.app[VONAGE_STATUSES]
    forced.clear()
    if count > 0:
        if not status.isdigit() or status == "0":
            raise web.HTTPBadRequest(text="status must be a Vonage error status (1, 2, 3, ...)")
        forced.extend([(status, str(body.get("error_text", "")))] * count)
    return web.json_response({"pending": len(forced)})


# ---- Plivo --------------------------------------------------------------------------------

def _plivo_error(status: int, error: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"api_id": str(uuid.uuid4()), "error": error}, status=status, headers=headers)


def _plivo_mode_error(status: int, headers: dict[str, str]) -> web.Response:
    return _plivo_error(status, "too many requests" if status == 429 else "internal server error", headers)


async def plivo_send(request: web.Request) -> web.Response:
    """POST /v1/Account/{auth_id}/Message/: 202 with message_uuid, or Plivo's error JSON."""
    base = _base()
    state = base._state(request, "plivo")
    creds = request.app[base.CREDENTIALS]["plivo"]
    auth_id = request.match_info["auth_id"]
    if base._basic_auth(request) != (creds["auth_id"], creds["auth_token"]) or auth_id != creds["auth_id"]:
        return _plivo_error(401, "authentication failed")
    if (failure := await base._apply_mode(state, _plivo_mode_error)) is not None:
        return failure
    try:
        body = await request.json()
    except ValueError:
        return _plivo_error(400, "invalid json data")
    if not isinstance(body, dict):
        return _plivo_error(400, "invalid json data")
    for name in ("src", "dst", "text"):
        if not body.get(name):
            return _plivo_error(400, f"{name} parameter is required")
    if not re.fullmatch(r"\+?[1-9]\d{6,14}", str(body["dst"])):
        return _plivo_error(400, f"invalid dst: {body['dst']}")
    if body.get("url") and (not str(body["url"]).startswith(("http://", "https://"))
                            or body.get("method", "POST") not in ("GET", "POST")):
        return _plivo_error(400, "url must be http(s) and method GET or POST")
    message_uuid = str(uuid.uuid4())
    state.accepted.append({"id": message_uuid, "to": str(body["dst"]), "from": str(body["src"]),
                           "body": str(body["text"]), "request": body})
    return web.json_response({"api_id": str(uuid.uuid4()), "message": "message(s) queued",
                              "message_uuid": [message_uuid]}, status=202)


# ---- Telnyx -------------------------------------------------------------------------------

def _telnyx_error(status: int, code: str, title: str, detail: str = "",
                  headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"errors": [{"code": code, "title": title, "detail": detail}]}, status=status,
                             headers=headers)


def _telnyx_mode_error(status: int, headers: dict[str, str]) -> web.Response:
    if status == 429:
        return _telnyx_error(429, "10011", "Too many requests", "Rate limit exceeded.", headers)
    return _telnyx_error(status, "10007", "Unexpected error", "An unexpected error occured.")


async def telnyx_send(request: web.Request) -> web.Response:
    """POST /v2/messages: 200 with the message resource, or Telnyx's errors JSON."""
    base = _base()
    state = base._state(request, "telnyx")
    key = request.app[base.CREDENTIALS]["telnyx"]["api_key"]
    if request.headers.get("Authorization") != f"Bearer {key}":
        return _telnyx_error(401, "10009", "Authentication failed", "The API key looks malformed or is invalid.")
    if (failure := await base._apply_mode(state, _telnyx_mode_error)) is not None:
        return failure
    try:
        body = await request.json()
    except ValueError:
        return _telnyx_error(400, "10015", "Bad Request", "The request body is not valid JSON.")
    if not isinstance(body, dict):
        return _telnyx_error(400, "10015", "Bad Request", "The request body must be a JSON object.")
    for name in ("from", "to", "text"):
        if not body.get(name):
            return _telnyx_error(422, "10015", "Bad Request", f"The '{name}' parameter is required.")
    if not _E164.match(str(body["to"])):
        return _telnyx_error(400, "40310", "Invalid 'to' address", f"{body['to']!r} is not an E.164 number.")
    message_id = str(uuid.uuid4())
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    state.accepted.append({"id": message_id, "to": body["to"], "from": body["from"], "body": body["text"],
                           "request": body})
    return web.json_response({"data": {
        "record_type": "message", "direction": "outbound", "id": message_id, "type": "SMS",
        "messaging_profile_id": body.get("messaging_profile_id"),
        "from": {"phone_number": body["from"], "carrier": "Telnyx", "line_type": "VoIP"},
        "to": [{"phone_number": body["to"], "status": "queued", "carrier": "T-Mobile USA", "line_type": "Wireless"}],
        "text": body["text"], "encoding": encoding(body["text"]), "parts": segments(body["text"])[0],
        "webhook_url": body.get("webhook_url"), "received_at": now, "sent_at": None, "completed_at": None,
        "errors": []}})


# ---- inbound webhooks: the providers' side -------------------------------------------------

@functools.lru_cache(maxsize=1)
def telnyx_key_pair() -> tuple[bytes, str]:
    """The stand-in's Ed25519 signing key (PEM) and its public half (base64), made once per process."""
    return telnyx_hooks.generate_key_pair()


def published_keys() -> dict[str, str]:
    """What /webhook-keys adds for these providers."""
    return {"telnyx_public_key": telnyx_key_pair()[1]}


def _flip_hex(signature: str) -> str:
    return signature[:-1] + ("0" if signature[-1] != "0" else "1")


def webhook_posts(request: web.Request, provider: str, target: str, events: list[dict[str, Any]],
                  tamper: bool) -> list[tuple[bytes, dict[str, str]]]:
    """(body, headers) of each POST the provider would make for `events`."""
    creds, now = request.app[_base().CREDENTIALS], time.time()
    posts = []
    for event in events:
        if provider == "vonage":
            c = creds["vonage"]
            params = {"api-key": c["api_key"], **{k: str(v) for k, v in event.items()},
                      "timestamp": str(int(now)), "nonce": str(uuid.uuid4())}
            signature = vonage_hooks.sign(params, c["signature_secret"], c["signature_method"])
            params["sig"] = _flip_hex(signature) if tamper else signature
            posts.append((_urlencode(params), {"Content-Type": vonage_hooks.FORM}))
        elif provider == "plivo":
            params = {k: str(v) for k, v in event.items()}
            nonce = str(secrets.randbelow(10 ** 20)).zfill(20)
            signature = plivo_hooks.sign(target, params, nonce, creds["plivo"]["auth_token"])
            posts.append((_urlencode(params), {
                "Content-Type": plivo_hooks.FORM, plivo_hooks.NONCE_HEADER: nonce,
                plivo_hooks.SIGNATURE_HEADER: tamper_signature(signature) if tamper else signature}))
        else:  # telnyx
            if not isinstance(event.get("event_type"), str) or not isinstance(event.get("payload"), dict):
                raise web.HTTPBadRequest(text="telnyx events need event_type and a payload object")
            data = {"record_type": "event", "id": event.get("id") or str(uuid.uuid4()),
                    "event_type": event["event_type"],
                    "occurred_at": event.get("occurred_at")
                    or datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds"),
                    "payload": event["payload"]}
            body = json.dumps({"data": data, "meta": {"attempt": 1, "delivered_to": target}}).encode()
            headers = telnyx_hooks.sign(body, telnyx_key_pair()[0], now)
            if tamper:
                raw = bytearray(base64.b64decode(headers[telnyx_hooks.SIGNATURE_HEADER]))
                raw[0] ^= 0x01
                headers[telnyx_hooks.SIGNATURE_HEADER] = base64.b64encode(bytes(raw)).decode()
            posts.append((body, {**headers, "Content-Type": "application/json"}))
    return posts


def _urlencode(params: dict[str, str]) -> bytes:
    return urllib.parse.urlencode(params).encode()


def install(app: web.Application) -> None:
    """Add the three providers' routes and state to the provider stand-in app."""
    app[VONAGE_STATUSES] = deque()
    app.router.add_post("/sms/json", vonage_send)
    app.router.add_post("/control/vonage/statuses", vonage_statuses)
    app.router.add_post("/v1/Account/{auth_id}/Message/", plivo_send)
    app.router.add_post("/v2/messages", telnyx_send)
    telnyx_key_pair()  # make the dev key now, not on the first request
