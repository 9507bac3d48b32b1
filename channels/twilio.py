"""SMS through Twilio's REST API: POST /2010-04-01/Accounts/{AccountSid}/Messages.json.

HTTP Basic auth (Account SID : auth token), form-encoded To/From/Body and, when configured,
StatusCallback (where Twilio posts delivery receipts). Twilio answers 201 with the Message
resource (`sid`, `status`); errors are `{"code", "message", "more_info", "status"}`. 21211
(invalid To) and other 4xx are permanent; 429 / 20429 (too many requests) and 5xx transient.
"""
from __future__ import annotations

import time
from typing import Callable

import httpx

from channels.base import (
    HttpAdapter, Outcome, SmsMessage, delivered, http_failure, json_field, retry_after_seconds,
    transport_failure,
)

TWILIO_API = "https://api.twilio.com"  # the documented API host; tests pass a local base_url
# refusals that are about load, not the message: 20429 too many requests, 21611 queue full
TRANSIENT_CODES = {20429, 21611}


def error_code(response: httpx.Response) -> tuple[int | None, str]:
    """(Twilio error code, message) from an error answer."""
    try:
        data = response.json()
        return data.get("code"), str(data.get("message", ""))
    except (ValueError, AttributeError):
        return None, response.text


class TwilioSms(HttpAdapter):
    """An SmsGateway over Twilio's Messages resource."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        base_url: str = TWILIO_API,
        *,
        status_callback: str | None = None,
        timeout: float = 10.0,
        max_in_flight: int = 16,
        name: str = "twilio",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, timeout=timeout, max_in_flight=max_in_flight, clock=clock,
                         base_url=base_url, auth=(account_sid, auth_token))
        self.status_callback = status_callback
        self._path = f"/2010-04-01/Accounts/{account_sid}/Messages.json"

    def form(self, message: SmsMessage) -> dict[str, str]:
        """The form fields of one Messages POST."""
        fields = {"To": message.to_number, "From": message.from_number, "Body": message.body}
        if self.status_callback:
            fields["StatusCallback"] = self.status_callback
        return fields

    async def _send_one(self, message: SmsMessage) -> Outcome:
        try:
            response = await self._client.post(self._path, data=self.form(message))
        except httpx.HTTPError as exc:
            return transport_failure(message.send_id, self.name, exc)
        if response.status_code in (200, 201):
            return delivered(message.send_id, self.name, json_field(response, "sid"))
        code, text = error_code(response)
        wait = retry_after_seconds(response.headers.get("Retry-After"), self.clock())
        return http_failure(message.send_id, self.name, response.status_code, f"{code}: {text}",
                            retry_after_s=wait, throttled=code in TRANSIENT_CODES)
