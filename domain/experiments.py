"""Experiments: what one is (an entity of the control plane) and which arm a send goes to.

An experiment runs on one list's alerts or one trigger's messages. Its variants change the
subject line, the template or the creative of the message, a list's send time or a trigger's
delay; the first variant is the control;
an optional holdout receives nothing, to measure lift against not sending at all. A lead's
arm comes from a consistent hash of (experiment, lead) (domain/experiment_assignment.py), so it
is the same in every process and on every replay, and independent between experiments.

Its results are per lead, from people only (machine opens and clicks excluded): a lead counts
once in its arm whatever number of messages it got. The statistics are in
domain/experiment_stats.py; the looks (each evaluation's always-valid p-values, carried from
look to look) and the decision are written back to the entity as its `state`, so every look is
a configuration event on the log, with the numbers behind it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain import experiment_stats as stats
from domain.experiment_assignment import HOLDOUT, assign
from domain.schedule import parse_send_time
from domain.triggers import TriggerConfig, duration_ms

REPORTED = ("open", "click", "click_to_open", "unsubscribe", "complaint", "conversion")  # per arm, in the results
# what a decision may be made on: rates per exposed lead (click-to-open's denominator, the
# openers, depends on the arm, and its arm counts could not be checked against the weights)
Metric = Literal["open", "click", "unsubscribe", "complaint", "conversion"]
LOWER_IS_BETTER = frozenset({"unsubscribe", "complaint"})  # decided on the leads that did not
MAX_LOOKS_KEPT = 60  # the newest looks kept in the entity's state (the log keeps every one)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Variant(_Model):
    """One arm: a name, a weight, and what it changes (nothing: the list's or trigger's own)."""

    name: str
    weight: float = Field(1.0, gt=0, le=1000)
    subject: str | None = Field(None, min_length=1, max_length=300)  # a Jinja line, as templates write it
    template: str | None = Field(None, min_length=1, max_length=64)
    creative: str | None = Field(None, min_length=1, max_length=64)
    delay: str | None = None  # a trigger's messages only: this arm's delay after the event instead of the action's
    send_time: str | None = None  # a list's alerts only: this arm's local send time (HH:MM) instead of the list's

    @field_validator("send_time")
    @classmethod
    def _send_time(cls, v: str | None) -> str | None:
        if v is not None:
            parse_send_time(v)  # ValueError names what is wrong
        return v

    @field_validator("delay")
    @classmethod
    def _delay(cls, v: str | None) -> str | None:
        if v is not None and not 0 <= duration_ms(v) <= 30 * 86_400_000:
            raise ValueError(f"{v!r}: a delay is at most 30 days")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v) or v == HOLDOUT:
            raise ValueError(f"{v!r} is not a variant name: letters, digits, '-' and '_', at most 32, not 'holdout'")
        return v


class Look(_Model):
    """One evaluation: when, how many leads per arm, the carried always-valid p-values."""

    at_ms: int
    leads: dict[str, int]
    p_values: dict[str, float]  # treatment variant -> always-valid p (min over looks so far)
    reason: str = ""


class Decision(_Model):
    """The winner, when one is declared, with the numbers behind it."""

    at_ms: int
    winner: str | None
    reason: str
    p_value: float | None = None
    lift: float | None = None  # relative, winner vs control


class ExperimentState(_Model):
    """What the evaluator wrote: its looks (newest last) and the decision, once there is one."""

    looks: list[Look] = Field(default_factory=list, max_length=MAX_LOOKS_KEPT)
    decision: Decision | None = None
    srm: bool = False  # the last look's assignment counts disagree with the weights


Variants = list[Variant]  # (the model below has a field named `list`)


class ExperimentConfig(_Model):
    """An experiment entity's data."""

    list: str | None = Field(None, min_length=1, max_length=64)
    trigger: str | None = Field(None, min_length=1, max_length=64)
    variants: Variants = Field(min_length=2, max_length=10)
    holdout: float = Field(0.0, ge=0, lt=0.5)  # the share of leads that receive nothing
    metric: Metric = "click"
    alpha: float = Field(0.05, gt=0, le=0.2)
    min_sample: int = Field(100, ge=10, le=10_000_000)  # leads per arm before any decision
    # the absolute difference of rates the sequential test is tuned to find (its mixture's
    # spread): 0.005 suits clicks near 5 %; an open-rate test wants more, e.g. 0.03. Any value
    # keeps the false-winner guarantee; it only trades power between small and large effects.
    expected_lift: float = Field(0.005, gt=0, le=0.5)
    status: Literal["running", "stopped"] = "running"
    auto_promote: bool = False  # once a winner is declared, every lead gets it
    promoted: str | None = None  # the variant every lead gets now (set by hand or by auto_promote)
    description: str = Field("", max_length=300)
    state: ExperimentState = ExperimentState()

    @model_validator(mode="after")
    def _consistent(self) -> "ExperimentConfig":
        if (self.list is None) == (self.trigger is None):
            raise ValueError("an experiment runs on one list (list:) or one trigger (trigger:)")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique: {names}")
        if self.list and any(v.delay for v in self.variants):
            raise ValueError("delay: variants of a delay are for a trigger's messages (a list's alerts go at their "
                             "send time)")
        if self.trigger and any(v.send_time for v in self.variants):
            raise ValueError("send_time: variants of a send time are for a list's alerts (a trigger's messages go "
                             "after their delay)")
        if self.promoted is not None and self.promoted not in names:
            raise ValueError(f"promoted: {self.promoted!r} is not one of the variants {names}")
        return self

    @property
    def control(self) -> str:
        return self.variants[0].name

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)

    def arms(self) -> dict[str, float]:
        """Every arm's share of leads (the holdout's included when there is one)."""
        total = sum(v.weight for v in self.variants)
        shares = {v.name: (1 - self.holdout) * v.weight / total for v in self.variants}
        return shares | ({HOLDOUT: self.holdout} if self.holdout else {})


@dataclass(frozen=True)
class Arm:
    """The arm one send goes to: the experiment, the variant (or the holdout) and its changes."""

    experiment: str
    name: str
    subject: str | None = None
    template: str | None = None
    creative: str | None = None

    @property
    def holdout(self) -> bool:
        return self.name == HOLDOUT

    @property
    def label(self) -> str:
        """The variant as events and the analytics' `variant` dimension name it."""
        return f"{self.experiment}/{self.name}"

    def fields(self) -> dict[str, str]:
        """What a send event carries of it (send.dispatched: the exposure)."""
        return {"experiment": self.experiment, "variant": self.label}


def arm_of_request(experiments: dict[str, ExperimentConfig], req: dict) -> Arm | None:
    """The arm of a send request: a list's daily alert or a trigger's message in a running
    experiment; None for everything else (welcomes, replies, sends of no experiment)."""
    trigger = (req.get("trigger") or "").removeprefix("trigger:")  # the engine's sends name "trigger:<id>"
    found = experiment_for(experiments, req.get("list") or "", trigger, req.get("kind") == "daily")
    return arm_for(found[0], found[1], req["lead_id"]) if found else None


def arm_named(experiments: dict[str, ExperimentConfig], experiment_id: str, label: str) -> Arm | None:
    """The arm a sent message was in, from its send.dispatched's experiment and variant (to
    compose it again as it was); None when the experiment or the variant is gone."""
    e = experiments.get(experiment_id)
    v = e.variant(label.rpartition("/")[2]) if e and label else None
    return Arm(experiment_id, v.name, v.subject, v.template, v.creative) if v else None


def trigger_for_lead(experiments: dict[str, ExperimentConfig], trigger_id: str, t: TriggerConfig,
                     lead_id: str) -> TriggerConfig:
    """The trigger as it acts for this lead: with its arm's delay when a running experiment on
    the trigger varies the delay (the sender finds the same arm for the message's subject)."""
    found = experiment_for(experiments, "", trigger_id, False) if experiments else None
    if found is None or not any(v.delay for v in found[1].variants):
        return t
    arm = found[1].variant(arm_for(found[0], found[1], lead_id).name)
    if arm is None or arm.delay is None:
        return t
    return t.model_copy(update={"action": t.action.model_copy(update={"delay": arm.delay})})


def list_for_lead(experiments: dict[str, ExperimentConfig], list_name: str, cfg, lead_id: str):
    """The list (a ListConfig) as it is scheduled for this lead: at its arm's send time when a
    running experiment on the list's alerts varies the send time (the sender finds the same arm,
    and the alert carries it as its variant)."""
    found = experiment_for(experiments, list_name, "", True) if experiments else None
    if found is None or not any(v.send_time for v in found[1].variants):
        return cfg
    arm = found[1].variant(arm_for(found[0], found[1], lead_id).name)
    if arm is None or arm.send_time is None or arm.send_time == cfg.send_time:
        return cfg
    return cfg.model_copy(update={"send_time": arm.send_time})


def experiment_for(experiments: dict[str, ExperimentConfig], list_name: str, trigger: str,
                   alert: bool) -> tuple[str, ExperimentConfig] | None:
    """The running experiment on this list's alerts or this trigger's messages, if any (the
    first by id when, against the checks, there are two)."""
    for eid in sorted(experiments):
        e = experiments[eid]
        if e.status != "running":
            continue
        if (trigger and e.trigger == trigger) or (alert and not trigger and e.list and e.list == list_name):
            return eid, e
    return None


def arm_for(experiment_id: str, e: ExperimentConfig, lead_id: str) -> Arm:
    """The lead's arm: the promoted variant for everyone once there is one, else the hash's."""
    weights = [(v.name, v.weight) for v in e.variants]
    holdout_weight = e.holdout / (1 - e.holdout) * sum(w for _, w in weights)  # a share -> a weight
    name = e.promoted or assign(experiment_id, lead_id, weights, holdout_weight)
    v = e.variant(name)
    if v is None:
        return Arm(experiment_id, HOLDOUT)
    return Arm(experiment_id, v.name, v.subject, v.template, v.creative)



@dataclass(frozen=True)
class Exposure:
    """One lead's exposure to an experiment: its arm (of its first exposure), when, its messages."""

    lead_id: str
    arm: str
    first_ms: int
    send_ids: tuple[str, ...]


@dataclass(frozen=True)
class ArmTally:
    """One arm's leads and how many of them did each thing (people only, each lead once)."""

    arm: str  # the variant name, or "holdout"
    leads: int  # exposed: sent a message of the arm (or held out)
    sent: int  # of them, sent at least one message
    opened: int  # a human open or click of one of its messages
    clicked: int
    unsubscribed: int  # unsubscribed after the first exposure
    complained: int
    converted: int = 0  # reached a goal after the first exposure (attributed to a click or not: the holdout too)

    def successes(self, metric: str) -> tuple[int, int]:
        """(leads that did it, leads it is out of) for a metric: click-to-open is out of the openers."""
        if metric == "click_to_open":
            return self.clicked, self.opened
        done = {"open": self.opened, "click": self.clicked, "unsubscribe": self.unsubscribed,
                "complaint": self.complained, "conversion": self.converted}[metric]
        return done, self.leads


def tally(exposures: list[Exposure], human: dict[str, bool], unsubscribed: dict[str, int],
          complained: set[str], converted: dict[str, int] | None = None) -> dict[str, ArmTally]:
    """Per arm, per lead: `human` maps a message with a person's open or click to whether a
    click was among them; `unsubscribed` a lead to when it first unsubscribed; `complained` the
    messages complained about; `converted` a lead to its goal events' times."""
    converted = converted or {}
    rows: dict[str, list[int]] = {}
    for e in exposures:
        row = rows.setdefault(e.arm, [0] * 7)
        touched = [human[s] for s in e.send_ids if s in human]
        unsub_ms = unsubscribed.get(e.lead_id)
        flags = (True, bool(e.send_ids), bool(touched), any(touched),
                 unsub_ms is not None and unsub_ms >= e.first_ms, any(s in complained for s in e.send_ids),
                 converted.get(e.lead_id, -1) >= e.first_ms)
        for i, flag in enumerate(flags):
            row[i] += flag
    return {arm: ArmTally(arm, *row) for arm, row in sorted(rows.items())}


@dataclass(frozen=True)
class Evaluation:
    """One look at an experiment: the statistics and the entity's data after it."""

    decision: stats.Decision
    tallies: dict[str, ArmTally]
    data: ExperimentConfig  # with the look recorded (and the winner, and the promotion)


def evaluate(e: ExperimentConfig, tallies: dict[str, ArmTally], now_ms: int) -> Evaluation:
    """Decide at this look from the arms' tallies, carrying the always-valid p-values of the
    previous look. A declared winner stays declared (a later look cannot take it back);
    with auto_promote it becomes the variant every lead gets."""
    arms = []
    for name in [v.name for v in e.variants] + ([HOLDOUT] if e.holdout else []):
        t = tallies.get(name) or ArmTally(name, 0, 0, 0, 0, 0, 0, 0)
        done, out_of = t.successes(e.metric)
        arms.append(stats.ArmCounts(name, out_of, out_of - done if e.metric in LOWER_IS_BETTER else done))
    previous = e.state.looks[-1].p_values if e.state.looks else None
    decision = stats.decide(arms, e.arms(), previous, alpha=e.alpha, min_sample=e.min_sample,
                              tau2=e.expected_lift ** 2)
    look = Look(at_ms=now_ms, leads={a.variant: a.exposed for a in arms}, p_values=decision.carried_p_values,
                reason=decision.reason)
    decided = e.state.decision
    if decided is None and decision.winner is not None:
        best = next(a for a in decision.arms if a.variant == decision.winner)
        decided = Decision(at_ms=now_ms, winner=decision.winner, reason=decision.reason,
                           p_value=min((a.corrected_p for a in decision.arms[1:]), default=None),
                           lift=None if best.variant == decision.control else best.relative_lift)
    state = ExperimentState(looks=[*e.state.looks, look][-MAX_LOOKS_KEPT:], decision=decided,
                            srm=decision.srm_flagged)
    promoted = e.promoted or (decided.winner if decided and e.auto_promote else None)
    return Evaluation(decision, tallies, e.model_copy(update={"state": state, "promoted": promoted}))
