"""The read model of one lead as the API shows it (GET /v1/leads/{lead_id}, and the lookup)."""
from __future__ import annotations

from pydantic import BaseModel, Field


class LeadReadModel(BaseModel):
    """One lead as the intake keeps it (the projection of leads.events)."""

    tenant: str
    lead_id: str
    channel: str
    address: str
    status: str = Field(description="accepted | rejected | unsubscribed | cold | suppressed")
    reasons: list[str]
    lists: list[str]
    partners: list[str]
    attribution: dict[str, str]
    timezone: str | None
    region: str | None
    submissions: int
    first_seen_ms: int
    updated_ms: int
    first_name: str | None
    profile: dict
    preferences: dict[str, dict] = Field(
        default_factory=dict, description="per list, what the person chose on the preference page: "
                                          "{cadence ('' = the list's own), paused_until_ms, left}")
