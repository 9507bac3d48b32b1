"""Email through Postmark's batch API (POST /email/batch, X-Postmark-Server-Token).

Up to 500 messages and 50 MB a request, a JSON array (a batch the server still finds too
large, HTTP 413, is split in halves and sent again); each carries From, To, Subject, TextBody,
HtmlBody, our `Headers` (List-Unsubscribe, List-Unsubscribe-Post, List-Id, Feedback-ID...:
every header of the EmailMessage), `Metadata` (the tags and our send_id, echoed by every
webhook), `Tag` (the list), the `MessageStream` (bulk mail: a broadcast stream) and tracking
off (we track opens and clicks ourselves).

Answers: 200 with one item per message, in order: {"ErrorCode": 0, "MessageID": ...} or
{"ErrorCode": 406, "Message": "...inactive..."}; HTTP 401 (bad token) and 422 with an
ErrorCode fail the whole request; 429 and 5xx are transient. Per-item and per-request error
codes are classified alike: those about the account being unable to send right now (no
credits, pending approval, maintenance) are transient, so another provider takes the message;
the rest (300 invalid request, 406 inactive recipient, 400/401 sender signature...) permanent.
"""
from __future__ import annotations

import email.utils
import json
import time
from typing import Any, Callable, Sequence

import httpx

from channels.base import (
    HttpAdapter, EmailMessage, Outcome, delivered, failed, http_failure, map_bounded, retry_after_seconds,
    transport_failure,
)

POSTMARK_API = "https://api.postmarkapp.com"  # the documented host; tests pass a local base_url
BATCH_PATH = "/email/batch"
MAX_BATCH = 500  # Postmark's limit per batch request
MAX_BATCH_BYTES = 50_000_000  # and its payload limit per request (a 413 beyond it)
MAX_METADATA_FIELDS, MAX_METADATA_KEY, MAX_METADATA_VALUE = 10, 20, 80  # Postmark's Metadata limits
# the account cannot send now (not the message's fault): 100 maintenance, 405 no credits left,
# 412 account pending approval, 413 pending-approval sending limit
TRANSIENT_CODES = frozenset({100, 405, 412, 413})


def batch_item(message: EmailMessage, stream: str) -> dict[str, Any]:
    """Postmark's JSON for one message of a batch."""
    metadata = {str(k)[:MAX_METADATA_KEY]: str(v)[:MAX_METADATA_VALUE] for k, v in message.tags.items()
                if k != "send_id"}
    metadata = {"send_id": message.send_id, **dict(list(metadata.items())[:MAX_METADATA_FIELDS - 1])}
    item: dict[str, Any] = {
        "From": email.utils.formataddr((message.from_name, message.from_addr)),
        "To": message.to_addr, "Subject": message.subject,
        "TextBody": message.text, "HtmlBody": message.html,
        "Headers": [{"Name": k, "Value": v} for k, v in message.headers.items()],
        "Metadata": metadata, "MessageStream": stream, "TrackOpens": False, "TrackLinks": "None",
    }
    if message.tags.get("list"):
        item["Tag"] = str(message.tags["list"])
    return item


def item_outcome(message: EmailMessage, answer: Any, provider: str) -> Outcome:
    """The outcome of one message from its item of a 200 answer."""
    if not isinstance(answer, dict):  # not documented: it was accepted with the rest
        return delivered(message.send_id, provider, None)
    code = answer.get("ErrorCode", 0)
    if code == 0:
        ident = answer.get("MessageID")
        return delivered(message.send_id, provider, str(ident) if ident else None)
    return coded_failure(message.send_id, provider, code, str(answer.get("Message", "")))


def coded_failure(send_id: str, provider: str, code: Any, text: str) -> Outcome:
    """A failure Postmark gave an ErrorCode for, classified by that code."""
    return failed(send_id, provider, f"Postmark {code}: {text}".strip(),
                  permanent=code not in TRANSIENT_CODES)


class PostmarkMailer(HttpAdapter):
    """A Mailer over Postmark's batch API."""

    def __init__(
        self,
        server_token: str,
        base_url: str = POSTMARK_API,
        *,
        message_stream: str = "broadcast",
        batch_size: int = MAX_BATCH,
        batch_bytes: int = MAX_BATCH_BYTES,
        timeout: float = 15.0,
        max_in_flight: int = 4,
        name: str = "postmark",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"Postmark batch_size must be 1..{MAX_BATCH}, not {batch_size}")
        super().__init__(name, timeout=timeout, max_in_flight=max_in_flight, clock=clock,
                         base_url=base_url,
                         headers={"X-Postmark-Server-Token": server_token, "Accept": "application/json"})
        self.message_stream = message_stream
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes

    async def send_many(self, messages: Sequence[EmailMessage]) -> list[Outcome]:
        """Post the messages in batches of at most `batch_size` messages and `batch_bytes` of
        JSON; one outcome each, in order."""
        items = [(m, json.dumps(batch_item(m, self.message_stream)).encode()) for m in messages]
        results = await map_bounded(self._batches(items), self._send_batch, self._slots)
        return [outcome for batch in results for outcome in batch]

    def _batches(self, items: list[tuple[EmailMessage, bytes]]) -> list[list[tuple[EmailMessage, bytes]]]:
        out: list[list[tuple[EmailMessage, bytes]]] = []
        size = 0
        for item in items:
            if not out or len(out[-1]) >= self.batch_size or size + len(item[1]) + 2 > self.batch_bytes:
                out.append([])
                size = 0
            out[-1].append(item)
            size += len(item[1]) + 1
        return out

    async def _send_batch(self, items: list[tuple[EmailMessage, bytes]]) -> list[Outcome]:
        batch = [m for m, _ in items]
        body = b"[" + b",".join(raw for _, raw in items) + b"]"
        try:
            response = await self._client.post(BATCH_PATH, content=body, headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            return [transport_failure(m.send_id, self.name, exc) for m in batch]
        if response.status_code == 413 and len(items) > 1:  # too large for the server: halves, again
            half = len(items) // 2
            return await self._send_batch(items[:half]) + await self._send_batch(items[half:])
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code == 200:
            items = answer if isinstance(answer, list) and len(answer) == len(batch) else [None] * len(batch)
            return [item_outcome(m, a, self.name) for m, a in zip(batch, items)]
        if response.status_code == 422 and isinstance(answer, dict) and "ErrorCode" in answer:
            return [coded_failure(m.send_id, self.name, answer["ErrorCode"], str(answer.get("Message", "")))
                    for m in batch]
        detail = str(answer.get("Message", "")) if isinstance(answer, dict) else response.text
        wait = retry_after_seconds(response.headers.get("Retry-After"), self.clock())
        return [http_failure(m.send_id, self.name, response.status_code, detail, retry_after_s=wait) for m in batch]
