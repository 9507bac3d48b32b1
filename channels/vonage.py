"""SMS through Vonage's SMS API: POST /sms/json (https://developer.vonage.com/en/api/sms).

Form-encoded api_key / api_secret (the account's credentials travel in the body), from, to,
text, `client-ref` (our send id, echoed back in delivery receipts), `type=unicode` when the text
is not GSM-7 (otherwise Vonage would send it as GSM-7 and mangle it) and, when configured,
`callback` (where Vonage posts the delivery receipts). Numbers go without the '+'.

Vonage answers HTTP 200 whatever happened to the message; the outcome is in the body:

    {"message-count": "1", "messages": [{"to": "447700900000", "message-id": "0A0000000123ABCD1",
      "status": "0", "remaining-balance": "3.14", "message-price": "0.03", "network": "12345",
      "client-ref": "..."}]}

A long text is split by Vonage: one entry per part, each with its own message-id; the first
part's id is the one we record (delivery receipts name each part; the others' go unmatched).
A failed entry has `status` != "0" and `error-text`. Status codes (Vonage's "Response codes"
table): 1 Throttled and 5 Internal Error are transient (Throttled waits Retry-After if given,
else a default pause); 2 Missing Parameters, 3 Invalid Parameters, 4 Invalid Credentials,
6 Invalid Message (unroutable), 7 Number Barred, 8 Partner Account Barred, 9 Partner Quota
Violation, 11 Account Not Enabled For REST, 12 Message Too Long, 15 Invalid Sender Address,
22 Invalid Network Code, 23 Invalid Callback Url, 29 Non-Whitelisted Destination, 32
Signature And API Secret Disallowed, 33 Number De-activated, and any other are permanent.
HTTP errors: 429 / 5xx transient, other 4xx permanent (channels.base.http_failure).
"""
from __future__ import annotations

import time
from typing import Any, Callable

import httpx

from channels.base import (
    HttpAdapter, DEFAULT_THROTTLE_S, Outcome, SmsMessage, delivered, failed, http_failure,
    retry_after_seconds, transport_failure,
)
from domain.sms_text import GSM7, encoding

VONAGE_API = "https://rest.nexmo.com"  # the documented API host; tests pass a local base_url
SEND_PATH = "/sms/json"
THROTTLED, INTERNAL_ERROR = "1", "5"
TRANSIENT_STATUSES = {THROTTLED, INTERNAL_ERROR}
MAX_CLIENT_REF = 100  # Vonage's limit on client-ref


def without_plus(number: str) -> str:
    """A number as Vonage wants it: international digits without '+' (alphanumeric senders kept)."""
    return number[1:] if number.startswith("+") else number


class VonageSms(HttpAdapter):
    """An SmsGateway over Vonage's SMS API."""

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        base_url: str = VONAGE_API,
        *,
        status_callback: str | None = None,
        timeout: float = 10.0,
        max_in_flight: int = 16,
        name: str = "vonage",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, timeout=timeout, max_in_flight=max_in_flight, clock=clock, base_url=base_url)
        self.api_key, self._api_secret = api_key, api_secret
        self.status_callback = status_callback

    def form(self, message: SmsMessage) -> dict[str, str]:
        """The form fields of one /sms/json POST (credentials included, as Vonage documents)."""
        fields = {"api_key": self.api_key, "api_secret": self._api_secret,
                  "from": without_plus(message.from_number), "to": without_plus(message.to_number),
                  "text": message.body, "client-ref": message.send_id[:MAX_CLIENT_REF]}
        if encoding(message.body) != GSM7:
            fields["type"] = "unicode"
        if self.status_callback:
            fields["callback"] = self.status_callback
        return fields

    async def _send_one(self, message: SmsMessage) -> Outcome:
        try:
            response = await self._client.post(SEND_PATH, data=self.form(message))
        except httpx.HTTPError as exc:
            return transport_failure(message.send_id, self.name, exc)
        wait = retry_after_seconds(response.headers.get("Retry-After"), self.clock())
        if response.status_code != 200:
            return http_failure(message.send_id, self.name, response.status_code, response.text.strip()[:200],
                                retry_after_s=wait)
        return self.outcome(message.send_id, response, wait)

    def outcome(self, send_id: str, response: httpx.Response, wait: float | None) -> Outcome:
        """The outcome a 200 answer's body tells (the message statuses, part by part)."""
        parts = _parts(response)
        if parts is None:
            # 200 without the documented body: the message may well have been taken, and resending
            # could duplicate it; but nothing says it was. Transient, so it is retried, not lost.
            return failed(send_id, self.name, f"unreadable answer: {response.text[:200]}", permanent=False)
        sent = [p for p in parts if str(p.get("status")) == "0"]
        if sent:  # a part went out: the person gets (some of) it, so it must not be sent again
            return delivered(send_id, self.name, str(sent[0].get("message-id") or "") or None)
        first = parts[0] if parts else {}
        status, text = str(first.get("status", "")), str(first.get("error-text", ""))
        error = f"status {status}: {text}".strip()
        if status == THROTTLED:
            return failed(send_id, self.name, error, permanent=False,
                          retry_after_s=wait if wait is not None else DEFAULT_THROTTLE_S)
        return failed(send_id, self.name, error, permanent=status not in TRANSIENT_STATUSES, retry_after_s=wait)


def _parts(response: httpx.Response) -> list[dict[str, Any]] | None:
    """The `messages` entries of an answer, or None when the body is not what Vonage documents."""
    try:
        parts = response.json().get("messages")
    except (ValueError, AttributeError):
        return None
    if not isinstance(parts, list) or not parts or not all(isinstance(p, dict) for p in parts):
        return None
    return parts
