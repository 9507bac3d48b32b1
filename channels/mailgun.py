"""Email through Mailgun's Messages API, MIME form (POST /v3/{domain}/messages.mime).

One request per message, multipart/form-data: `to`, `message` (the whole RFC 5322 message as
a file, built by `smtp_pool.mime_bytes` like the SMTP path, so both carry the same headers:
List-Unsubscribe, List-Id, Feedback-ID...), `v:send_id` and a `v:` variable per tag (Mailgun
echoes them in every webhook's `user-variables`), `o:tag` = the list, and tracking off (we
track opens and clicks ourselves). An optional `sign(raw) -> raw` (DKIM) signs the bytes
before they leave. Auth is HTTP Basic, user "api", password the API key; the sending domain
is the From address's domain. The base URL picks the region (api.mailgun.net, api.eu.mailgun.net).

Answers: 200 {"id": "<...@domain>", "message": "Queued. Thank you."}; errors are
{"message": ...} (401 is a plain "Forbidden"): 400/401/402/404 permanent, 429 and 5xx
transient, with Retry-After when given. The recorded provider id is the id without its angle
brackets: what Mailgun's webhooks name as message.headers.message-id.
"""
from __future__ import annotations

import time
from typing import Callable

import httpx

from channels.base import (
    HttpAdapter, EmailMessage, Outcome, delivered, failed, http_failure, json_field, retry_after_seconds,
    transport_failure,
)
from channels.smtp_pool import mime_bytes

MAILGUN_API = "https://api.mailgun.net"  # the documented US-region host; tests pass a local base_url
Signer = Callable[[bytes], bytes]


def send_path(domain: str) -> str:
    """The messages.mime path of a sending domain."""
    return f"/v3/{domain}/messages.mime"


def sending_domain(from_addr: str) -> str:
    """The domain of a From address ('' when it has none)."""
    return from_addr.rpartition("@")[2].strip().lower() if "@" in from_addr else ""


def form_fields(message: EmailMessage) -> list[tuple[str, str]]:
    """The non-file form fields for one message: recipient, variables, options."""
    fields = [("to", message.to_addr)]
    variables = {**{str(k): str(v) for k, v in message.tags.items()}, "send_id": message.send_id}
    fields += [(f"v:{name}", value) for name, value in variables.items()]
    if message.tags.get("list"):
        fields.append(("o:tag", str(message.tags["list"])))
    fields += [("o:tracking", "no"), ("o:tracking-clicks", "no"), ("o:tracking-opens", "no")]
    return fields


def error_detail(response: httpx.Response) -> str:
    """Mailgun's {"message": ...}, or the raw body ("Forbidden")."""
    return json_field(response, "message") or response.text.strip()


class MailgunMailer(HttpAdapter):
    """A Mailer over Mailgun's messages.mime."""

    def __init__(
        self,
        api_key: str,
        base_url: str = MAILGUN_API,
        *,
        sign: Signer | None = None,
        timeout: float = 10.0,
        max_in_flight: int = 16,
        name: str = "mailgun",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, timeout=timeout, max_in_flight=max_in_flight, clock=clock,
                         base_url=base_url, auth=httpx.BasicAuth("api", api_key))
        self.sign = sign

    def mime(self, message: EmailMessage, domain: str) -> bytes:
        """The message's MIME bytes as they are sent (signed when a signer is given)."""
        raw, _ = mime_bytes(message, domain, self.clock())
        return self.sign(raw) if self.sign is not None else raw

    async def _send_one(self, message: EmailMessage) -> Outcome:
        domain = sending_domain(message.from_addr)
        if not domain:
            return failed(message.send_id, self.name, f"From address {message.from_addr!r} has no domain",
                          permanent=True)
        files = {"message": ("message.mime", self.mime(message, domain), "message/rfc822")}
        try:
            response = await self._client.post(send_path(domain), data=_multi(form_fields(message)), files=files)
        except httpx.HTTPError as exc:
            return transport_failure(message.send_id, self.name, exc)
        if response.status_code == 200:
            provider_id = json_field(response, "id")
            return delivered(message.send_id, self.name, provider_id.strip().strip("<>") if provider_id else None)
        return http_failure(message.send_id, self.name, response.status_code, error_detail(response),
                            retry_after_s=retry_after_seconds(response.headers.get("Retry-After"), self.clock()))


def _multi(fields: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    """httpx form data from pairs, a repeated name becoming a list."""
    out: dict[str, str | list[str]] = {}
    for name, value in fields:
        if name in out:
            previous = out[name]
            out[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[name] = value
    return out
