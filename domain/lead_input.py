"""The shape of a lead as partners send it (HTTP body or queue message), checked strictly."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_S = dict(max_length=200)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LocationIn(Strict):
    zip: str | None = Field(None, max_length=16)
    city: str | None = Field(None, **_S)
    state: str | None = Field(None, max_length=64)
    country: str | None = Field(None, min_length=2, max_length=2, description="ISO 3166 alpha-2")
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)

    @model_validator(mode="after")
    def _lat_lon_together(self) -> "LocationIn":
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon go together: give both or neither")
        return self


class InterestsIn(Strict):
    keywords: list[str] = Field(default_factory=list, max_length=50)
    categories: list[str] = Field(default_factory=list, max_length=50)


class ConsentIn(Strict):
    at: datetime = Field(description="when the person consented (ISO 8601 with zone)")
    ip: str | None = Field(None, max_length=64)
    text: str | None = Field(None, max_length=2000)


class LeadIn(Strict):
    """One lead: at least an email or a phone; each becomes a lead of its own channel."""

    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=32)
    first_name: str | None = Field(None, **_S)
    last_name: str | None = Field(None, **_S)
    location: LocationIn | None = None
    interests: InterestsIn = Field(default_factory=InterestsIn)
    partner: str = Field(min_length=1, max_length=100, description="the source that sent it")
    list: str = Field(min_length=1, max_length=100, description="the tenant list to join")
    attribution: dict[str, str] = Field(default_factory=dict, max_length=30)
    consent: ConsentIn | None = None

    @field_validator("email", "phone")
    @classmethod
    def _blank_is_none(cls, v: str | None) -> str | None:
        return v or None

    @model_validator(mode="after")
    def _needs_contact(self) -> "LeadIn":
        if not self.email and not self.phone:
            raise ValueError("a lead needs an email or a phone")
        return self


class BatchIn(Strict):
    leads: list[LeadIn] = Field(min_length=1)
