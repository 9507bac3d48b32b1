"""What the trigger engine needs from its stores (the composition root hands in the Redis ones)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from domain.identity import LeadIds
from domain.intake import LeadState
from domain.tenants import TenantBook


class History(Protocol):
    async def remember(self, items: list[tuple[str, str, int, str, str, dict]]) -> None: ...

    async def histories(self, keys: list[tuple[str, str]], since_ms: int) -> list[list[tuple[int, str, str, dict]]]: ...

    async def fired(self, keys: list[tuple[str, str]]) -> list[dict[str, int]]: ...

    async def reserve_many(self, items: list[tuple[str, str, str, str, int, int, list[str], int, int]]) -> list[str]: ...

    async def schedule(self, timers: list[tuple[str, int, dict]]) -> None: ...

    async def claim_due(self, now_ms: int, lease_ms: int, limit: int = 500) -> list[tuple[str, dict | None]]: ...

    async def settle(self, send_ids: list[str]) -> None: ...

    async def lease(self, name: str, ms: int) -> bool: ...


class Memberships(Protocol):
    async def of_leads(self, keys: list[tuple[str, str]]) -> list[list[str]]: ...

    async def apply(self, changes: list[tuple[str, str, str, bool]]) -> None: ...

    async def diff(self, tenant: str, segment: str, members: set[str]) -> tuple[set[str], set[str]]: ...


class SegmentQueries(Protocol):
    """Runs a segment's query (ClickHouse): the lead ids it returns."""

    async def lead_ids(self, sql: str) -> set[str]: ...


class LeadReader(Protocol):
    async def get_many(self, keys: list[tuple[str, str]]) -> list[LeadState | None]: ...


class Scores(Protocol):
    async def scores(self, keys: list[tuple[str, str]]) -> list[float]: ...


@dataclass(frozen=True)
class TriggerPorts:
    book: Callable[[], TenantBook]
    history: History
    segments: Memberships
    leads: LeadReader
    scores: Scores
    lead_ids: LeadIds
    queries: SegmentQueries | None = None
    lease_ms: int = 30_000  # a claimed timer whose claimer died comes back after this
