"""SMS through Plivo's Message API: POST /v1/Account/{auth_id}/Message/ (https://www.plivo.com/docs/messaging/api/message/send-a-message).

HTTP Basic auth (Auth ID : auth token); a JSON body {"src", "dst", "text"} and, when
configured, "url" + "method" (where and how Plivo posts the message's status callbacks).
Plivo answers 202 Accepted:

    {"api_id": "...", "message": "message(s) queued", "message_uuid": ["db3ce55a-7f1d-..."]}

and errors as {"api_id": "...", "error": "..."}: 400 (bad parameters, e.g. an invalid dst),
401 (credentials), 404 (unknown account or resource) are permanent; 429 (too many requests)
and 5xx transient (channels.base.http_failure). A long text is split into parts but gets one
message_uuid per destination, the id Plivo's callbacks name.
"""
from __future__ import annotations

import time
from typing import Callable

import httpx

from channels.base import (
    HttpAdapter, Outcome, SmsMessage, delivered, http_failure, retry_after_seconds, transport_failure,
)

PLIVO_API = "https://api.plivo.com"  # the documented API host; tests pass a local base_url


def error_text(response: httpx.Response) -> str:
    """Plivo's `error` from an error answer (its whole text when it is not the documented JSON)."""
    try:
        return str(response.json().get("error", ""))
    except (ValueError, AttributeError):
        return response.text.strip()[:200]


def first_uuid(response: httpx.Response) -> str | None:
    """The message_uuid of an accepted message, or None when the answer does not carry one."""
    try:
        uuids = response.json().get("message_uuid")
    except (ValueError, AttributeError):
        return None  # accepted all the same: raising would resend and duplicate it
    if isinstance(uuids, list) and uuids:
        return str(uuids[0])
    return str(uuids) if isinstance(uuids, str) and uuids else None


class PlivoSms(HttpAdapter):
    """An SmsGateway over Plivo's Message resource."""

    def __init__(
        self,
        auth_id: str,
        auth_token: str,
        base_url: str = PLIVO_API,
        *,
        status_callback: str | None = None,
        timeout: float = 10.0,
        max_in_flight: int = 16,
        name: str = "plivo",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, timeout=timeout, max_in_flight=max_in_flight, clock=clock,
                         base_url=base_url, auth=(auth_id, auth_token))
        self.status_callback = status_callback
        self._path = f"/v1/Account/{auth_id}/Message/"

    def payload(self, message: SmsMessage) -> dict[str, str]:
        """The JSON body of one Message POST."""
        body = {"src": message.from_number, "dst": message.to_number, "text": message.body}
        if self.status_callback:
            body["url"], body["method"] = self.status_callback, "POST"
        return body

    async def _send_one(self, message: SmsMessage) -> Outcome:
        try:
            response = await self._client.post(self._path, json=self.payload(message))
        except httpx.HTTPError as exc:
            return transport_failure(message.send_id, self.name, exc)
        if response.status_code in (200, 201, 202):
            return delivered(message.send_id, self.name, first_uuid(response))
        wait = retry_after_seconds(response.headers.get("Retry-After"), self.clock())
        return http_failure(message.send_id, self.name, response.status_code, error_text(response),
                            retry_after_s=wait)
