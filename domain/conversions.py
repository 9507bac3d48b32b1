"""Conversions: a goal reached (an application completed, a hire, any product event the brand
names as a goal), attributed to the last click a person made on one of our messages within the
brand's window (default 7 days). Pure.

The attribution remembers, per lead, its last human click (a machine's never counts; a click
later revised as a machine's is forgotten). A goal event then decides one
`engagement.converted`: attributed (with the click's send, list, template, creative, job and
the send's experiment and variant) or not (no person clicked within the window: the lead still
converted, which an experiment's holdout needs to measure lift against sending nothing). Its id
derives from the goal event's, so a redelivery decides the very same event.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.identity import derived_event_id
from domain.schema_labels import schema_label
from domain.triggers import EVENT_NAME, duration_ms

SOURCE = "agent:triggers"
MAX_REVENUE_CENTS = 100_000_000  # a reported revenue above a million is a unit mistake: recorded as 0


class ConversionPolicy(BaseModel):
    """A brand's goals: which product events are conversions, the attribution window, and the
    property that carries a conversion's revenue (in the brand's currency, e.g. 12.50)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    goals: list[str] = Field(default_factory=lambda: ["application_completed", "application.completed", "hired"],
                             max_length=20)
    window: str = "7d"
    revenue_property: str = Field("revenue", max_length=64)

    @field_validator("goals")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        bad = [g for g in v if not EVENT_NAME.match(g)]
        if bad:
            raise ValueError(f"not event names: {bad} (lower-case letters, digits, '.', '_', ':', '-')")
        return v

    @field_validator("window")
    @classmethod
    def _window(cls, v: str) -> str:
        if not 0 < duration_ms(v) <= 90 * 86_400_000:
            raise ValueError(f"{v!r}: the window is at most 90 days")
        return v


@dataclass(frozen=True)
class ClickMark:
    """A person's click on one of our messages, as the attribution keeps it."""

    event_id: str
    at_ms: int
    send_id: str
    list: str
    channel: str
    template: str
    creative: str
    job_key: str
    partner: str

    def to_dict(self) -> dict:
        return dict(vars(self))


def click_mark(ev: dict, at_ms: int) -> ClickMark | None:
    """The mark of an engagement.clicked by a person on a message; None for a machine's."""
    if ev.get("is_bot") or not ev.get("send_id") or ev.get("slot") in ("honeypot", "unsubscribe", "preferences"):
        return None
    return ClickMark(ev["event_id"], at_ms, ev["send_id"], ev.get("list") or "", ev.get("channel") or "",
                     ev.get("template") or "", ev.get("creative") or "", ev.get("job_key") or "",
                     ev.get("partner") or "")


def revised_away(ev: dict) -> bool:
    """A later revision that made a click a machine's: the mark of that click is forgotten."""
    return bool(ev.get("is_bot")) and int(ev.get("revision") or 0) > 0


def is_goal(policy: ConversionPolicy, name: str) -> bool:
    return name in policy.goals


def revenue_cents(props: dict, prop: str) -> int:
    """The goal event's reported revenue in cents (0 when absent, malformed or absurd)."""
    raw = props.get(prop)
    if raw is None or isinstance(raw, bool):
        return 0
    try:
        cents = int((Decimal(str(raw)) * 100).to_integral_value())
    except (InvalidOperation, ValueError):
        return 0
    return cents if 0 <= cents <= MAX_REVENUE_CENTS else 0


def converted(goal: dict, props: dict, at_ms: int, policy: ConversionPolicy, mark: ClickMark | None,
              sent: dict | None) -> tuple[str, dict]:
    """The engagement.converted a goal event decides. `goal` is the product event (its id,
    tenant, lead, name); `mark` the lead's last human click; `sent` what the sender recorded of
    that click's send (its experiment and variant), if it still has it."""
    window = duration_ms(policy.window)
    attributed = mark is not None and 0 <= at_ms - mark.at_ms <= window
    m = mark if attributed else None
    ev = {"event_id": derived_event_id(goal["event_id"], "engagement.converted", at_ms), "tenant": goal["tenant"],
          "occurred_at": at_ms, "schema": schema_label("engagement.converted"), "causation_id": goal["event_id"],
          "source": SOURCE, "lead_id": goal["lead_id"], "goal": goal["name"], "attributed": attributed,
          "reason": "attributed" if attributed else "unattributed",
          "send_id": m.send_id if m else "", "click_event_id": m.event_id if m else "",
          "clicked_at": m.at_ms if m else 0, "list": m.list if m else "", "channel": m.channel if m else "",
          "template": m.template if m else "", "creative": m.creative if m else "", "job_key": m.job_key if m else "",
          "partner": m.partner if m else "",
          "experiment": (sent or {}).get("experiment", "") if m else "",
          "variant": (sent or {}).get("variant", "") if m else "",
          "revenue_cents": revenue_cents(props, policy.revenue_property), "window_ms": window}
    return "engagement.converted", ev
