"""Tenant (brand) configuration: lists, partners, channels, validation policy, caps, keys."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Channel = Literal["email", "sms"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListConfig(Strict):
    channel: Channel
    send_time: str = "09:00"
    cadence: str = "daily"


class ValidationPolicy(Strict):
    reject_disposable: bool = True
    require_sms_consent: bool = True
    sms_mobile_only: bool = True
    allowed_countries: list[str] = Field(default_factory=list)  # empty: any
    default_region: str = "US"


class DedupePolicy(Strict):
    # merge: a resubmission adds its list and attribution to the lead; ignore: only recorded
    resubmission: Literal["merge", "ignore"] = "merge"


class Tenant(Strict):
    id: str
    name: str
    api_key_sha256: list[str]
    demo_key: str | None = None  # only in demo tenant files, so ./dev env can print it
    channels: list[Channel] = Field(default_factory=lambda: ["email", "sms"])
    partners: list[str] = Field(default_factory=list)  # empty: any partner
    lists: dict[str, ListConfig]
    validation: ValidationPolicy = ValidationPolicy()
    dedupe: DedupePolicy = DedupePolicy()
    daily_caps: dict[Channel, int] = Field(default_factory=lambda: {"email": 1, "sms": 1})

    @model_validator(mode="after")
    def _demo_key_matches(self) -> "Tenant":
        if self.demo_key and hash_key(self.demo_key) not in self.api_key_sha256:
            raise ValueError(f"tenant {self.id}: demo_key does not match any api_key_sha256")
        return self


class Blocklist(Strict):
    emails: list[str] = Field(default_factory=list)
    domains: list[str] = Field(default_factory=list)
    phones: list[str] = Field(default_factory=list)


class TenantBook(Strict):
    """Every tenant, the admin keys and the global blocklist, as read from the tenant file."""

    admin_key_sha256: list[str] = Field(default_factory=list)
    blocklist: Blocklist = Blocklist()
    tenants: dict[str, Tenant]

    @model_validator(mode="before")
    @classmethod
    def _ids_from_keys(cls, data: dict) -> dict:
        for tid, t in (data.get("tenants") or {}).items():
            if isinstance(t, dict):
                t.setdefault("id", tid)
        return data

    @property
    def demo_keys(self) -> dict[str, str]:
        return {tid: t.demo_key for tid, t in self.tenants.items() if t.demo_key}

    def tenant_for_key(self, key: str) -> Tenant | None:
        """The tenant whose API key this is, or None."""
        h = hash_key(key)
        for t in self.tenants.values():
            if h in t.api_key_sha256:
                return t
        return None

    def is_admin_key(self, key: str) -> bool:
        return hash_key(key) in self.admin_key_sha256


def hash_key(key: str) -> str:
    """API keys are long random tokens, so one SHA-256 is enough to store them safely."""
    return hashlib.sha256(key.encode()).hexdigest()


def parse_tenant_book(data: dict, origin: Path | str = "<tenant file>") -> TenantBook:
    try:
        return TenantBook.model_validate(data)
    except Exception as exc:
        raise ValueError(f"{origin}: invalid tenant file: {exc}") from exc
