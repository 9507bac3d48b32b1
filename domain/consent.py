"""The consent ledger: every consent given or withdrawn is an event (consent.given /
consent.withdrawn on consent.events); a lead's current consent is their projection.

A record names the person by exactly one of lead_id, email or phone (a lead is one address on
one channel, so the channel is the lead's), a purpose (marketing governs every message but the
answers to a person's own texts), whether it was given or withdrawn, when, where (the form, the
preference centre, an import), the text shown and the ip. A consent that came with a lead
(lead.accepted's consent) is the first record of the ledger.

The current consent per (lead, purpose) is the record with the latest time: records may come
late or out of order (an import of last year's forms after today's withdrawal), so the order is
by `at`, not by arrival; at the same instant a withdrawal outranks a consent given, and then
the larger event id decides, so every replica folds any order of the same records alike.
"""
from __future__ import annotations

import ipaddress
import re
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.identity import derived_event_id
from domain.input_checks import ZonedDatetime, one_person

SENDING_PURPOSE = "marketing"  # the purpose a withdrawal of stops the lead's messages
PURPOSE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_FUTURE_MS = 5 * 60_000
MAX_PAST_MS = 10 * 366 * 86_400_000  # records imported from a brand's older forms
SOURCE = "api"
GIVEN, WITHDRAWN = "consent.given", "consent.withdrawn"


class ConsentError(ValueError):
    def __init__(self, field: str, problem: str):
        super().__init__(problem)
        self.field = field


class ConsentIn(BaseModel):
    """One consent given or withdrawn by one person."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    lead_id: str | None = Field(None, max_length=64)
    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=32)
    purpose: str = Field(SENDING_PURPOSE, description="marketing (governs sending), or e.g. profiling, analytics")
    granted: bool = Field(description="true: consent given; false: withdrawn")
    at: ZonedDatetime | None = Field(None, description="when it was given or withdrawn (ISO 8601 with zone); default: now")
    via: str = Field(min_length=1, max_length=128, description="where: signup_form, preference_center, import...")
    text: str | None = Field(None, min_length=1, max_length=4000, description="the consent text shown (given)")
    ip: str | None = Field(None, max_length=45)
    idempotency_key: str | None = Field(None, min_length=1, max_length=128)

    @field_validator("purpose")
    @classmethod
    def _purpose(cls, v: str) -> str:
        if not PURPOSE.match(v):
            raise ValueError(f"{v!r} is not a purpose: lower-case letters, digits and _, at most 32")
        return v

    @field_validator("ip")
    @classmethod
    def _ip(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            return str(ipaddress.ip_address(v))
        except ValueError:
            raise ValueError(f"{v!r} is not an IPv4 or IPv6 address") from None

    @model_validator(mode="after")
    def _shape(self) -> "ConsentIn":
        one_person(self)
        if self.granted and not self.text:
            raise ValueError("a consent given records the text the person was shown (text)")
        return self


class ConsentBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    records: list[ConsentIn] = Field(min_length=1)


def consent_event_id(tenant: str, key: str | None, fresh: str) -> str:
    """A fixed id for an idempotency key (a retry is the same record), else the fresh one."""
    return derived_event_id(f"{tenant}/{key}", "consent", 0) if key else fresh


def consent_time(c: ConsentIn, now_ms: int) -> int:
    if c.at is None:
        return now_ms
    at = int(c.at.timestamp() * 1000)
    if at > now_ms + MAX_FUTURE_MS:
        raise ConsentError("at", "is in the future (more than 5 minutes ahead of the platform's clock)")
    if at < now_ms - MAX_PAST_MS:
        raise ConsentError("at", "is more than 10 years old")
    return at


def consent_event(c: ConsentIn, tenant: str, lead: str, channel: str, event_id: str, now_ms: int,
                  recorded_by: str) -> tuple[str, dict]:
    """(event name, event) of one checked record."""
    name = GIVEN if c.granted else WITHDRAWN
    return name, {"event_id": event_id, "tenant": tenant, "occurred_at": now_ms, "schema": f"{name}@1",
                  "causation_id": None, "source": SOURCE, "lead_id": lead, "channel": channel,
                  "purpose": c.purpose, "at": consent_time(c, now_ms), "via": c.via, "text": c.text,
                  "ip": c.ip, "recorded_by": recorded_by}


# --- the fold -------------------------------------------------------------------------------

def entry_of(name: str, ev: dict) -> dict | None:
    """The ledger entry an event makes (None if it makes none): a consent record, or the
    consent a lead came with."""
    if name in (GIVEN, WITHDRAWN):
        return {"tenant": ev["tenant"], "lead_id": ev["lead_id"], "channel": ev["channel"],
                "purpose": ev["purpose"], "granted": name == GIVEN, "at": _ms(ev["at"]),
                "event_id": ev["event_id"], "via": ev["via"]}
    if name == "lead.accepted" and ev.get("consent"):
        at = ev["consent"].get("at") or ev["occurred_at"]
        return {"tenant": ev["tenant"], "lead_id": ev["lead_id"], "channel": ev["channel"],
                "purpose": SENDING_PURPOSE, "granted": True, "at": _ms(at), "event_id": ev["event_id"],
                "via": f"lead:{ev.get('partner') or 'direct'}"}
    return None


def rank(at_ms: int, granted: bool, event_id: str) -> tuple[int, int, str]:
    """The order of records about one (lead, purpose): later wins; at the same instant a
    withdrawal; then the larger event id."""
    return at_ms, 0 if granted else 1, event_id


def supersedes(new: dict, current: dict | None) -> bool:
    """Whether the entry `new` becomes the current consent over `current`."""
    if current is None:
        return True
    return rank(new["at"], new["granted"], new["event_id"]) > rank(current["at"], current["granted"],
                                                                     current["event_id"])


def withdrawn_from_sending(current: dict | None) -> bool:
    """Whether the lead's current marketing consent stops their messages."""
    return current is not None and not current["granted"]


def _ms(ts) -> int:
    return ts if isinstance(ts, int) else int(ts.timestamp() * 1000)
