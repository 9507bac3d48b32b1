"""People who sign in, and the roles granted to them.

Roles:
  platform_admin  everything, every tenant
  brand_admin     everything of their brand (not creating or deleting brands, not the revenue split)
  analyst         reads everything of their brand, changes nothing
  partner         a partner (source) of a brand: only the numbers of the leads their source sent,
                  only the metrics the brand lets partners see
A person holds grants; each grant is one role in one brand (platform_admin: in none).
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

Role = Literal["platform_admin", "brand_admin", "analyst", "partner"]
ROLES: tuple[str, ...] = ("platform_admin", "brand_admin", "analyst", "partner")
MIN_PASSWORD = 12
MAX_PASSWORD = 256
_EMAIL = re.compile(r"^[^@\s/]+@[^@\s/]+\.[^@\s/]+$")


def normal_email(raw: str) -> str:
    """A person's id: the email, trimmed and lower-cased; ValueError if it is not one."""
    email = raw.strip().lower()
    if not _EMAIL.match(email) or len(email) > 254:
        raise ValueError(f"{raw!r} is not an email address")
    return email


def password_problem(password: str, email: str = "") -> str | None:
    """Why a new password is refused, or None (length over composition rules, as NIST 800-63B)."""
    if len(password) < MIN_PASSWORD:
        return f"a password needs at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"a password has at most {MAX_PASSWORD} characters"
    if email and password.strip().lower() == email.lower():
        return "a password cannot be the email address"
    if len(set(password)) < 4:
        return "a password needs more than three different characters"
    return None


class Person(BaseModel):
    """One person who may sign in (the password only as an argon2 hash)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: str
    name: str = ""
    password_hash: str = ""  # argon2id; empty: cannot sign in until a password is set
    disabled: bool = False

    @field_validator("email")
    @classmethod
    def _email(cls, v: str) -> str:
        return normal_email(v)

    @field_validator("password_hash")
    @classmethod
    def _argon2(cls, v: str) -> str:
        if v and not v.startswith("$argon2"):
            raise ValueError("is not an argon2 hash (it starts with $argon2id$)")
        return v


class Grant(BaseModel):
    """One role of one person, in one brand (or the platform)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    person: str
    role: Role
    tenant: str | None = None
    partner: str | None = None

    @field_validator("person")
    @classmethod
    def _email(cls, v: str) -> str:
        return normal_email(v)

    @model_validator(mode="after")
    def _scope_fits_role(self) -> "Grant":
        if self.role == "platform_admin" and self.tenant:
            raise ValueError("a platform_admin grant names no tenant")
        if self.role != "platform_admin" and not self.tenant:
            raise ValueError(f"a {self.role} grant names its tenant")
        if (self.role == "partner") != bool(self.partner):
            raise ValueError("a partner grant names its partner, and only a partner grant does")
        return self

    @property
    def id(self) -> str:
        """Stable id within its tenant: person/role[/partner]."""
        return "/".join([self.person, self.role] + ([self.partner] if self.partner else []))
