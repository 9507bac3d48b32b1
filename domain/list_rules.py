"""The rule engine of a messaging list: rules are data, each kind evaluated by a pure function.

A list's `rules` (next to its schedule, cadence and provider chain) say
  carriers     which SMS carriers the list sends to (by the number's carrier, where the
               phonenumbers carrier data knows it; unknown carriers follow `unknown`)
  intake       which partners/sources may feed the list, and per-source daily caps
  dedupe       what a resubmission of a known person to this list does (merge / ignore),
               or `inherit` the brand's policy
  reactivation whether a resubmission or a person's click brings back a lead that was
               unsubscribed for inactivity
The evaluators below answer one question each; the intake, planner and hygiene agents ask them.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# the reasons a rule gives for not taking a lead on a list (stable: events, ClickHouse, API)
CARRIER_EXCLUDED = "carrier_excluded"
CARRIER_UNKNOWN = "carrier_unknown"
PARTNER_NOT_ON_LIST = "partner_not_on_list"
SOURCE_CAP_REACHED = "source_cap_reached"
ANY_SOURCE = "*"
# only these unsubscribe reasons may be undone by a rule (never a complaint, a bounce or STOP)
REACTIVATABLE_REASONS = frozenset({"inactive"})


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CarrierRule(_Rule):
    """SMS carrier targeting: include (empty: every carrier) minus exclude."""

    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    unknown: Literal["accept", "reject"] = "accept"  # numbers whose carrier is not known

    @field_validator("include", "exclude")
    @classmethod
    def _no_blank_names(cls, v: list[str]) -> list[str]:
        if any(not name.strip() for name in v):
            raise ValueError("a carrier name cannot be blank")
        return v


class IntakeRule(_Rule):
    """Incoming-lead handling: who may feed the list and how many leads a day each may bring."""

    partners: list[str] = Field(default_factory=list)  # empty: every partner of the brand
    # accepted leads per partner and UTC day on this list; "*" applies to partners not named
    source_caps: dict[str, int] = Field(default_factory=dict)

    @field_validator("source_caps")
    @classmethod
    def _caps_positive(cls, v: dict[str, int]) -> dict[str, int]:
        for partner, cap in v.items():
            if cap < 0:
                raise ValueError(f"source cap of {partner!r} is {cap}: a cap is 0 or more")
        return v


class ReactivationRule(_Rule):
    """Who comes back after being pruned as inactive."""

    on_resubmit: bool = False  # a partner sending the person again brings them back
    on_click: Literal["inherit", "yes", "no"] = "inherit"  # inherit: the brand's reactivate_on_click


class ListRules(_Rule):
    """Every rule of one list."""

    carriers: CarrierRule = CarrierRule()
    intake: IntakeRule = IntakeRule()
    dedupe: Literal["inherit", "merge", "ignore"] = "inherit"
    reactivation: ReactivationRule = ReactivationRule()


def carrier_verdict(rule: CarrierRule, carrier: str | None) -> str | None:
    """None when the list sends to this carrier, else the reason it does not."""
    if not rule.include and not rule.exclude:
        return None
    if not carrier:
        return CARRIER_UNKNOWN if rule.unknown == "reject" else None
    name = carrier.casefold()
    if any(name == c.casefold() for c in rule.exclude):
        return CARRIER_EXCLUDED
    if rule.include and not any(name == c.casefold() for c in rule.include):
        return CARRIER_EXCLUDED
    return None


def partner_verdict(rule: IntakeRule, partner: str) -> str | None:
    """None when this partner may feed the list, else the reason."""
    if rule.partners and partner not in rule.partners:
        return PARTNER_NOT_ON_LIST
    return None


def source_cap(rule: IntakeRule, partner: str) -> int | None:
    """The partner's daily cap on this list (None: no cap)."""
    if partner in rule.source_caps:
        return rule.source_caps[partner]
    return rule.source_caps.get(ANY_SOURCE)


def over_source_cap(rule: IntakeRule, partner: str, accepted_today: int) -> bool:
    """Whether one more lead from this partner today would pass the list's cap."""
    cap = source_cap(rule, partner)
    return cap is not None and accepted_today >= cap


def resubmission_policy(rules: ListRules, brand_policy: str) -> str:
    """merge or ignore: the list's own policy, or the brand's when the list inherits it."""
    return brand_policy if rules.dedupe == "inherit" else rules.dedupe


def reactivates_on_resubmit(rules: ListRules, status: str, reasons: list[str]) -> bool:
    """Whether resubmitting this unsubscribed person to the list brings them back."""
    return (rules.reactivation.on_resubmit and status == "unsubscribed"
            and bool(reasons) and set(reasons) <= REACTIVATABLE_REASONS)


def reactivates_on_click(rules: ListRules | None, brand_default: bool) -> bool:
    """Whether a person's click on this list's message brings back a lead pruned as inactive."""
    if rules is None or rules.reactivation.on_click == "inherit":
        return brand_default
    return rules.reactivation.on_click == "yes"
