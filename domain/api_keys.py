"""API keys: machines authenticate with long random keys, stored only as SHA-256 hashes.

A key belongs to one tenant (or to the platform, for platform admins), carries one role, and
may be revoked or set to expire; rotating a key creates a new one and lets the old one live on
for an overlap, so the machines using it can move over without a gap.
"""
from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

KeyRole = Literal["platform_admin", "brand_admin", "analyst", "partner", "ingest"]
KEY_PREFIX = "ls_"


def hash_key(key: str) -> str:
    """API keys are long random tokens, so one SHA-256 is enough to store them safely."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_for(sha256: str) -> str:
    """The public id of a key: the first 12 hex digits of its hash (safe to show and log)."""
    return f"k_{sha256[:12]}"


def new_key_text(tenant: str | None, entropy: bytes) -> str:
    """A new key's text from 16+ random bytes: ls_<tenant or admin>_<32 hex digits>."""
    if len(entropy) < 16:
        raise ValueError("an API key needs at least 16 random bytes")
    return f"{KEY_PREFIX}{tenant or 'admin'}_{entropy[:16].hex()}"


class ApiKey(BaseModel):
    """One key as the configuration holds it (the key itself is never stored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sha256: str
    tenant: str | None = None  # None: a platform key (role platform_admin)
    role: KeyRole = "ingest"
    partner: str | None = None  # the source a partner key speaks for
    name: str = ""
    created_at_ms: int = 0
    expires_at_ms: int | None = None  # set when the key is rotated (the overlap) or given a life
    revoked: bool = False

    @field_validator("sha256")
    @classmethod
    def _is_sha256(cls, v: str) -> str:
        if len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
            raise ValueError("is not a SHA-256 hex digest (64 lower-case hex digits)")
        return v

    @property
    def id(self) -> str:
        return key_id_for(self.sha256)

    def usable(self, now_ms: int) -> bool:
        """Not revoked and not past its expiry."""
        return not self.revoked and (self.expires_at_ms is None or now_ms < self.expires_at_ms)


def key_problems(key: ApiKey) -> list[tuple[str, str]]:
    """(field, problem) for a key whose role and scope do not fit together."""
    out = []
    if key.role == "platform_admin" and key.tenant is not None:
        out.append(("tenant", "a platform_admin key belongs to no tenant: leave tenant empty"))
    if key.role != "platform_admin" and key.tenant is None:
        out.append(("tenant", f"a {key.role} key belongs to one tenant: name it"))
    if key.role == "partner" and not key.partner:
        out.append(("partner", "a partner key names the partner (source) it speaks for"))
    if key.role != "partner" and key.partner:
        out.append(("partner", f"only partner keys name a partner, not {key.role} keys"))
    return out


class RotatedKeys(BaseModel):
    """What a rotation produced: the new key (its text shown once) and the old one's new expiry."""

    model_config = ConfigDict(frozen=True)

    new: ApiKey
    old: ApiKey
    text: str = Field(repr=False)
