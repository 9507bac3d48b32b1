"""The messages the platform delivers and what happened to each: plain values shared by the
sending use case (services/sending) and the provider adapters (channels/)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class EmailMessage:
    """One rendered email to one person."""

    send_id: str
    from_addr: str
    from_name: str
    to_addr: str
    subject: str
    html: str
    text: str
    headers: Mapping[str, str] = field(default_factory=dict)  # List-Unsubscribe etc.
    tags: Mapping[str, str] = field(default_factory=dict)  # echoed back by provider webhooks


@dataclass(frozen=True)
class SmsMessage:
    """One rendered text message to one phone."""

    send_id: str
    from_number: str
    to_number: str  # E.164
    body: str


@dataclass(frozen=True)
class Outcome:
    """What happened to one message at one provider."""

    send_id: str
    ok: bool
    provider: str
    provider_id: str | None = None
    error: str | None = None
    permanent: bool = False
    retry_after_s: float | None = None

    @property
    def transient(self) -> bool:
        """True when the message failed but may succeed later or elsewhere."""
        return not self.ok and not self.permanent
