"""What the sending use case needs from the world, as small interfaces. The composition root
(runtime/sending.py) hands it the real ones: Redis stores (projections/), provider chains
(channels/), the template files."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence, runtime_checkable

from domain.intake import LeadState
from domain.jobs import Job
from domain.messages import EmailMessage, Outcome, SmsMessage
from domain.tenants import TenantBook


@runtime_checkable
class Mailer(Protocol):
    """Sends emails; one outcome per message, in order."""

    name: str

    async def send_many(self, messages: Sequence[EmailMessage]) -> list[Outcome]: ...

    async def close(self) -> None: ...


@runtime_checkable
class SmsGateway(Protocol):
    """Sends text messages; one outcome per message, in order."""

    name: str

    async def send_many(self, messages: Sequence[SmsMessage]) -> list[Outcome]: ...

    async def close(self) -> None: ...


class Deliverers(Protocol):
    """The mailer or gateway that tries these providers in order (a failover chain)."""

    def for_names(self, names: Sequence[str], channel: str) -> Mailer | SmsGateway: ...


class Leads(Protocol):
    """The leads' current state, and whether an address is blocklisted or opted out."""

    async def get_many(self, keys: list[tuple[str, str]]) -> list[LeadState | None]: ...

    async def lookup(self, items: list[tuple[str, str, list[str]]], with_consent: bool = False) -> list: ...


class SendStore(Protocol):
    """Claims and settled marks of send ids, caps, rate limits, link codes, history."""

    async def claim(self, send_ids: list[str], owner: str, now_ms: int) -> list[bytes | None]: ...

    async def settle(self, sent: list, released: list[str], failed: list) -> None: ...

    async def take(self, scope: str, second: int, want: int, limit: int) -> int: ...

    async def take_today(self, tenant: str, channel: str, day: str, want: int, limit: int) -> int: ...

    async def count_today(self, items: list[tuple[str, str, str, str]]) -> list[int]: ...

    async def uncount_today(self, items: list) -> None: ...

    async def sent_jobs(self, keys: list[tuple[str, str]], since_ms: int) -> list[set[str]]: ...

    async def record(self, dispatched: list[dict], links: list[dict], now_ms: int, keep_since_ms: int) -> None: ...

    async def settle_and_record(self, sent: list, released: list[str], failed: list, dispatched: list[dict],
                                now_ms: int, keep_since_ms: int) -> None: ...

    async def link_codes(self, n: int) -> list[int]: ...

    async def histories(self, keys: list[tuple[str, str]]) -> list[list[dict]]: ...


class LinkLog(Protocol):
    """Keeps composed messages' tracked links durable (send.links events), before they leave."""

    async def keep(self, events: list[tuple[str, dict]]) -> None: ...


class JobSource(Protocol):
    """A tenant's current jobs and a version that changes whenever they do."""

    async def version(self, tenant: str) -> int: ...

    async def load(self, tenant: str) -> dict[str, Job]: ...


class Templates(Protocol):
    """Compiled templates by tenant and template id (with the default/ fallbacks)."""

    def email(self, tenant: str, template: str): ...

    def sms(self, tenant: str, template: str): ...

    def with_subject(self, compiled, subject: str): ...


class Segments(Protocol):
    """The segments a lead is in now (for conditional blocks in templates)."""

    async def of_leads(self, keys: list[tuple[str, str]]) -> list[list[str]]: ...


class RecommenderModels(Protocol):
    """The tenants' trained recommenders (projections/redis_recommender.py)."""

    async def current(self, tenant: str) -> str | None: ...

    async def load(self, tenant: str, version: str): ...

    async def clicked(self, tenant: str, version: str, leads: list[str]) -> list[tuple[str, ...]]: ...


@dataclass(frozen=True)
class SendPolicy:
    """The settings the use case reads."""

    lease_ms: int  # a claim older than this belongs to a worker that is gone
    provider_rate_per_s: int
    link_key: bytes  # signs the short codes of tracked links
    tracking_base_url: str


@dataclass(frozen=True)
class SendingPorts:
    """Everything a SendBatch is built from."""

    book: Callable[[], TenantBook]  # the configuration as it is now
    leads: Leads
    store: SendStore
    jobs: JobSource
    templates: Templates
    deliverers: Deliverers
    policy: SendPolicy
    segments: Segments | None = None
    recommender: RecommenderModels | None = None
    links: LinkLog | None = None  # None: the links live in Redis alone (a wipe loses them)
