"""Email through SendGrid's v3 Mail Send API (POST /v3/mail/send, Bearer API key).

One request per message: each carries its own rendered content, which SendGrid's
personalizations cannot vary. `custom_args` carry the send_id and tags, so the Event Webhook
echoes them back. SendGrid answers 202 with the message id in `X-Message-Id`; 400 carries
`{"errors": [{"message", "field"}]}`; 429 carries X-RateLimit-Reset (epoch seconds).
"""
from __future__ import annotations

import time
from typing import Any, Callable

import httpx

from channels.base import (
    HttpAdapter, EmailMessage, Outcome, delivered, http_failure, retry_after_seconds, transport_failure,
)

SENDGRID_API = "https://api.sendgrid.com"  # the documented API host; tests pass a local base_url
SEND_PATH = "/v3/mail/send"
# headers SendGrid sets itself and refuses in `headers` (400): From/To/Subject go in their fields
RESERVED_HEADERS = frozenset({"x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type",
                              "content-transfer-encoding", "to", "from", "subject", "reply-to", "cc", "bcc"})


def mail_send_body(message: EmailMessage) -> dict[str, Any]:
    """The v3 mail/send JSON for one message (text/plain first, as SendGrid requires)."""
    body: dict[str, Any] = {
        "personalizations": [{
            "to": [{"email": message.to_addr}],
            "custom_args": {**{k: str(v) for k, v in message.tags.items()}, "send_id": message.send_id},
        }],
        "from": {"email": message.from_addr, "name": message.from_name},
        "subject": message.subject,
        "content": [{"type": "text/plain", "value": message.text},
                    {"type": "text/html", "value": message.html}],
    }
    headers = {k: v for k, v in message.headers.items() if k.lower() not in RESERVED_HEADERS}
    if headers:
        body["headers"] = headers
    return body


def error_detail(response: httpx.Response) -> str:
    """SendGrid's error messages joined, or the raw body."""
    try:
        errors = response.json().get("errors") or []
        return "; ".join(f"{e.get('field') or ''}: {e.get('message')}".lstrip(": ") for e in errors)
    except (ValueError, AttributeError):
        return response.text


def throttle_seconds(response: httpx.Response, now: float) -> float | None:
    """Retry-After if given, else the wait until X-RateLimit-Reset."""
    wait = retry_after_seconds(response.headers.get("Retry-After"), now)
    if wait is None and (reset := response.headers.get("X-RateLimit-Reset", "")).isdigit():
        wait = max(0.0, int(reset) - now)
    return wait


class SendGridMailer(HttpAdapter):
    """A Mailer over SendGrid v3."""

    def __init__(
        self,
        api_key: str,
        base_url: str = SENDGRID_API,
        *,
        timeout: float = 10.0,
        max_in_flight: int = 16,
        name: str = "sendgrid",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, timeout=timeout, max_in_flight=max_in_flight, clock=clock,
                         base_url=base_url, headers={"Authorization": f"Bearer {api_key}"})

    async def _send_one(self, message: EmailMessage) -> Outcome:
        try:
            response = await self._client.post(SEND_PATH, json=mail_send_body(message))
        except httpx.HTTPError as exc:
            return transport_failure(message.send_id, self.name, exc)
        if response.status_code == 202:
            return delivered(message.send_id, self.name, response.headers.get("X-Message-Id"))
        return http_failure(message.send_id, self.name, response.status_code, error_detail(response),
                            retry_after_s=throttle_seconds(response, self.clock()))
