"""Stand-ins for Mailgun and Postmark, served by the providers' stand-in app (providers.make_app).

- Mailgun   POST /v3/{domain}/messages.mime   HTTP Basic "api":API key, multipart/form-data with
  `to`, `message` (the MIME file), `v:*` variables and `o:*` options. 200 {"id": "<Message-ID>",
  "message": "Queued. Thank you."} (the id is the MIME's own Message-ID when it has one, as
  Mailgun keeps it); 401 "Forbidden"; 400 {"message"} for a missing/invalid `to` or `message`;
  404 {"message": "Domain not found: ..."} for a domain under .invalid (RFC 2606), standing in
  for one not on the account. Each accepted message keeps its raw MIME as text (`mime`), for
  tests and DKIM checks.
- Postmark  POST /email/batch   X-Postmark-Server-Token, a JSON array of up to 500 messages.
  200 with one item per message: {"ErrorCode": 0, "Message": "OK", "MessageID", "SubmittedAt",
  "To"} or its error (300 invalid request, 400 From domain under .invalid: no sender signature,
  406 a recipient whose address starts with "inactive": Postmark's inactive recipients,
  1235 unknown MessageStream); 401 {"ErrorCode": 10} for a missing or wrong token; 422 with an
  ErrorCode for a request that is not a batch (402 invalid JSON, 403 not an array, 409 not JSON,
  410 more than 500 messages).

Both honour /control (fail = 500, throttle = 429 with Retry-After, slow, fail_next) and /sent.
/webhooks/emit sends their webhooks: `webhook_posts` builds them (Mailgun: each event-data
signed with the stand-in's webhook signing key, also on /webhook-keys; Postmark: each record
with the stand-in's HTTP Basic webhook credentials).
"""
from __future__ import annotations

import email
import email.policy
import email.utils
import json
import secrets
import time
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from channels.webhooks_in import mailgun as mailgun_hooks
from channels.webhooks_in.base import basic_auth_header
from channels.base import EmailMessage
from stack.standins.providers import (
    CREDENTIALS, _EMAIL, _apply_mode, _basic_auth, _json_error, _state, provider_signed_mime,
)


def _postmark_message(item: dict) -> EmailMessage:
    """The message a Postmark batch item describes (to build what Postmark delivers)."""
    name, addr = email.utils.parseaddr(str(item.get("From", "")))
    headers = {h.get("Name", ""): h.get("Value", "") for h in item.get("Headers") or [] if h.get("Name")}
    return EmailMessage(send_id=str((item.get("Metadata") or {}).get("send_id", "")), from_addr=addr,
                        from_name=name, to_addr=str(item.get("To", "")), subject=str(item.get("Subject", "")),
                        html=str(item.get("HtmlBody") or ""), text=str(item.get("TextBody") or ""),
                        headers=headers)

PROVIDERS = ("mailgun", "postmark")
POSTMARK_STREAMS = ("outbound", "broadcast")  # the streams every Postmark server starts with
POSTMARK_TRACK_LINKS = ("None", "HtmlAndText", "HtmlOnly", "TextOnly")
POSTMARK_MAX_BATCH = 500


# ---- Mailgun ------------------------------------------------------------------------------

def _mailgun_error(status: int, headers: dict[str, str], message: str = "") -> web.Response:
    text = message or {500: "Internal Server Error", 429: "Too many requests"}.get(status, "Bad Request")
    return _json_error(status, {"message": text}, headers)


async def mailgun_send(request: web.Request) -> web.Response:
    """POST /v3/{domain}/messages.mime: 200 {"id", "message"} or Mailgun's error."""
    state = _state(request, "mailgun")
    creds = request.app[CREDENTIALS]["mailgun"]
    if _basic_auth(request) != ("api", creds["api_key"]):
        return web.Response(status=401, text="Forbidden")
    if (failure := await _apply_mode(state, _mailgun_error)) is not None:
        return failure
    domain = request.match_info["domain"].lower()
    if domain.endswith(".invalid"):
        return _mailgun_error(404, {}, f"Domain not found: {domain}")
    if request.content_type != "multipart/form-data":
        return _mailgun_error(400, {}, "messages.mime takes multipart/form-data with the message as a file")
    form = await request.post()
    to = [str(v) for v in form.getall("to", [])]
    upload = form.get("message")
    if not to:
        return _mailgun_error(400, {}, "'to' parameter is missing")
    if not all(_EMAIL.match(address) for address in to):
        return _mailgun_error(400, {}, "to parameter is not a valid address. please check documentation")
    if not isinstance(upload, web.FileField):
        return _mailgun_error(400, {}, "'message' parameter is missing (a MIME file upload)")
    raw = upload.file.read()
    parsed = email.message_from_bytes(raw, policy=email.policy.compat32)
    if not parsed["From"] or parsed.get_content_maintype() not in ("multipart", "text"):
        return _mailgun_error(400, {}, "message is not a MIME message with a From header")
    message_id = (parsed["Message-ID"] or "").strip().strip("<>") or \
        f"{time.strftime('%Y%m%d%H%M%S', time.gmtime())}.{secrets.token_hex(6)}@{domain}"
    state.accepted.append({
        "id": message_id, "domain": domain, "to": to, "from": str(parsed["From"]),
        "subject": str(parsed["Subject"] or ""), "mime": raw.decode("utf-8", errors="replace"),
        "variables": {k[2:]: str(v) for k, v in form.items() if k.startswith("v:")},
        "options": {k[2:]: [str(x) for x in form.getall(k)] for k in set(form) if k.startswith("o:")},
    })
    return web.json_response({"id": f"<{message_id}>", "message": "Queued. Thank you."})


# ---- Postmark -----------------------------------------------------------------------------

def _postmark_error(status: int, headers: dict[str, str], code: int = 0, message: str = "") -> web.Response:
    text = message or {500: "Internal Server Error", 429: "Rate limit exceeded"}.get(status, "Error")
    return _json_error(status, {"ErrorCode": code, "Message": text}, headers)


def _postmark_item_problem(item: Any) -> tuple[int, str] | None:
    """(ErrorCode, Message) for what is wrong with one batch item, or None."""
    if not isinstance(item, dict):
        return 300, "Invalid email request: each message must be an object."
    sender = email.utils.parseaddr(str(item.get("From", "")))[1]
    if not _EMAIL.match(sender):
        return 300, f"Invalid 'From' address: '{item.get('From', '')}'."
    if sender.lower().endswith(".invalid"):
        return 400, (f"The 'From' address you supplied ({sender}) is not a Sender Signature on your account. "
                     "Please add and confirm this address in order to be able to use it in the 'From' field.")
    to = str(item.get("To", ""))
    if not _EMAIL.match(to):
        return 300, f"Error parsing 'To': Illegal email address '{to}'. It must contain the '@' symbol."
    if to.lower().startswith("inactive"):
        return 406, ("You tried to send to recipient(s) that have been marked as inactive. Found inactive addresses: "
                     f"{to}. Inactive recipients are ones that have generated a hard bounce, a spam complaint, "
                     "or a manual suppression.")
    if not item.get("TextBody") and not item.get("HtmlBody"):
        return 300, "Provide either email TextBody or HtmlBody or both."
    headers = item.get("Headers", [])
    if not isinstance(headers, list) or not all(isinstance(h, dict) and set(h) == {"Name", "Value"} for h in headers):
        return 300, "Invalid 'Headers': a list of {\"Name\", \"Value\"} objects."
    metadata = item.get("Metadata", {})
    if not isinstance(metadata, dict) or len(metadata) > 10 or any(
            len(str(k)) > 20 or len(str(v)) > 80 for k, v in metadata.items()):
        return 300, "Invalid 'Metadata': at most 10 fields, names up to 20 and values up to 80 characters."
    if item.get("TrackLinks", "None") not in POSTMARK_TRACK_LINKS:
        return 300, f"Invalid 'TrackLinks' value: one of {', '.join(POSTMARK_TRACK_LINKS)}."
    if item.get("MessageStream", "outbound") not in POSTMARK_STREAMS:
        return 1235, "The message stream for the provided 'ID' was not found."
    return None


async def postmark_batch(request: web.Request) -> web.Response:
    """POST /email/batch: 200 with one answer per message, or Postmark's error."""
    state = _state(request, "postmark")
    token = request.headers.get("X-Postmark-Server-Token")
    if not token:
        return _postmark_error(401, {}, 10, "No Account or Server API tokens were supplied in the HTTP headers. "
                                            "Please add a header for either X-Postmark-Server-Token or "
                                            "X-Postmark-Account-Token.")
    if token != request.app[CREDENTIALS]["postmark"]["server_token"]:
        return _postmark_error(401, {}, 10, "The Server Token you provided in the X-Postmark-Server-Token request "
                                            "header was invalid. Please verify that you are using a valid token.")
    if (failure := await _apply_mode(state, _postmark_error)) is not None:
        return failure
    if request.content_type != "application/json":
        return _postmark_error(422, {}, 409, "JSON data required. Send Content-Type: application/json.")
    try:
        batch = json.loads(await request.read())
    except ValueError:
        return _postmark_error(422, {}, 402, "Received invalid JSON input.")
    if not isinstance(batch, list) or not batch:
        return _postmark_error(422, {}, 403, "Incompatible JSON input: a batch is a non-empty array of messages.")
    if len(batch) > POSTMARK_MAX_BATCH:
        return _postmark_error(422, {}, 410, "Too many batch messages. You may only send up to 500 messages "
                                             "in a batch.")
    answers = []
    for item in batch:
        if problem := _postmark_item_problem(item):
            answers.append({"ErrorCode": problem[0], "Message": problem[1]})
            continue
        message_id = _uuid4()
        submitted = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        state.accepted.append({"id": message_id, "to": item["To"], "from": item["From"],
                               "subject": item.get("Subject", ""),
                               "stream": item.get("MessageStream", "outbound"), "request": item,
                               "raw": provider_signed_mime("postmark", _postmark_message(item))})
        answers.append({"ErrorCode": 0, "Message": "OK", "MessageID": message_id, "SubmittedAt": submitted,
                        "To": item["To"]})
    return web.json_response(answers)


def _uuid4() -> str:
    h = secrets.token_hex(16)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


# ---- inbound webhooks: the providers' side -------------------------------------------------

def emit_problem(provider: str, events: list[dict[str, Any]]) -> str | None:
    """Why /webhooks/emit cannot send these events, or None."""
    if provider == "postmark" and any(not isinstance(e.get("RecordType"), str) for e in events):
        return "postmark events need a RecordType (Delivery, Bounce, SpamComplaint, Open, Click, SubscriptionChange)"
    if provider == "mailgun" and any(not isinstance(e.get("event"), str) for e in events):
        return "mailgun events are event-data objects with an event name"
    return None


def webhook_posts(creds: dict[str, dict[str, str]], provider: str, events: list[dict[str, Any]],
                  tamper: bool) -> list[tuple[bytes, dict[str, str]]]:
    """(body, headers) of each POST Mailgun or Postmark would make for `events`, one per event."""
    posts = []
    for event in events:
        if provider == "mailgun":
            doc = mailgun_hooks.signed_body(event, creds["mailgun"]["webhook_signing_key"], time.time(),
                                            secrets.token_hex(25))
            if tamper:
                signature = doc["signature"]["signature"]
                doc["signature"]["signature"] = ("1" if signature[0] == "0" else "0") + signature[1:]
            posts.append((json.dumps(doc).encode(), {"Content-Type": "application/json"}))
        else:  # postmark
            password = creds["postmark"]["webhook_password"]
            if tamper:
                password = password[:-1] + chr(ord(password[-1]) ^ 1)
            posts.append((json.dumps(event).encode(), {
                "Content-Type": "application/json",
                "Authorization": basic_auth_header(creds["postmark"]["webhook_user"], password)}))
    return posts


def install(app: web.Application) -> None:
    """Add the Mailgun and Postmark routes to the providers' stand-in app."""
    app.router.add_post("/v3/{domain}/messages.mime", mailgun_send)
    app.router.add_post("/email/batch", postmark_batch)
