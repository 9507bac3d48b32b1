"""SMS through Telnyx's Messaging API v2: POST /v2/messages (https://developers.telnyx.com/api/messaging/send-message).

Bearer API key; a JSON body {"from", "to", "text"} and, when configured, "messaging_profile_id"
and "webhook_url" (where Telnyx posts this message's events: message.sent, message.finalized).
Telnyx answers 200 with the message resource:

    {"data": {"record_type": "message", "id": "40385f64-5717-4562-b3fc-2c963f66afa6",
              "to": [{"phone_number": "+1...", "status": "queued"}], "parts": 1, ...}}

and errors as {"errors": [{"code": "40310", "title": "Invalid 'to' address", "detail": "..."}]}:
any 4xx but 429 is permanent (10009 authentication failed, 40310 invalid to, 422 invalid
parameters, ...); 429 (10011 too many requests, Retry-After) and 5xx are transient.
"""
from __future__ import annotations

import time
from typing import Callable

import httpx

from channels.base import (
    HttpAdapter, Outcome, SmsMessage, delivered, http_failure, retry_after_seconds, transport_failure,
)

TELNYX_API = "https://api.telnyx.com"  # the documented API host; tests pass a local base_url
SEND_PATH = "/v2/messages"


def message_id(response: httpx.Response) -> str | None:
    """data.id of an accepted message, or None when the answer does not carry one."""
    try:
        value = response.json()["data"]["id"]
    except (ValueError, KeyError, TypeError):
        return None  # accepted all the same: raising would resend and duplicate it
    return str(value) if value else None


def errors_text(response: httpx.Response) -> str:
    """"code title: detail" of each entry of an error answer's `errors` (or its text)."""
    try:
        errors = response.json()["errors"]
        return "; ".join(f"{e.get('code', '')} {e.get('title', '')}: {e.get('detail', '')}".strip(" :")
                         for e in errors if isinstance(e, dict))
    except (ValueError, KeyError, TypeError, AttributeError):
        return response.text.strip()[:200]


class TelnyxSms(HttpAdapter):
    """An SmsGateway over Telnyx's /v2/messages."""

    def __init__(
        self,
        api_key: str,
        base_url: str = TELNYX_API,
        *,
        messaging_profile_id: str | None = None,
        webhook_url: str | None = None,
        timeout: float = 10.0,
        max_in_flight: int = 16,
        name: str = "telnyx",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, timeout=timeout, max_in_flight=max_in_flight, clock=clock,
                         base_url=base_url, headers={"Authorization": f"Bearer {api_key}"})
        self.messaging_profile_id, self.webhook_url = messaging_profile_id, webhook_url

    def payload(self, message: SmsMessage) -> dict[str, str]:
        """The JSON body of one /v2/messages POST."""
        body = {"from": message.from_number, "to": message.to_number, "text": message.body}
        if self.messaging_profile_id:
            body["messaging_profile_id"] = self.messaging_profile_id
        if self.webhook_url:
            body["webhook_url"] = self.webhook_url
        return body

    async def _send_one(self, message: SmsMessage) -> Outcome:
        try:
            response = await self._client.post(SEND_PATH, json=self.payload(message))
        except httpx.HTTPError as exc:
            return transport_failure(message.send_id, self.name, exc)
        if response.status_code in (200, 201, 202):
            return delivered(message.send_id, self.name, message_id(response))
        wait = retry_after_seconds(response.headers.get("Retry-After"), self.clock())
        return http_failure(message.send_id, self.name, response.status_code, errors_text(response),
                            retry_after_s=wait)
