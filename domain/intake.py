"""Intake decisions: a submitted lead becomes accepted, rejected or a resubmission.

`decide(...)` returns the events; `evolve(state, event)` folds any lead event into the
read model. The live agent and the replay both use `evolve`, so both build the same state.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from domain.identity import derived_event_id
from domain.list_rules import (SOURCE_CAP_REACHED, ListRules, over_source_cap, reactivates_on_resubmit,
                               resubmission_policy)
from domain.schema_labels import schema_label
from domain.tenants import Tenant
from domain.validation import Checked, check_carrier, check_email, check_phone, check_routing

APPLIED_KEEP = 16  # recent causing event ids kept per lead, to skip redelivered events
KNOWN = {"accepted", "unsubscribed", "cold", "suppressed"}
OUTCOME_FOR_STATUS = {"unsubscribed": "kept_unsubscribed", "cold": "kept_cold",
                      "suppressed": "kept_suppressed"}


@dataclass
class LeadState:
    """The read model of one lead (per tenant, channel and address)."""

    tenant: str
    lead_id: str
    channel: str
    address: str
    status: str  # accepted | rejected | unsubscribed | cold | suppressed
    reasons: list[str] = field(default_factory=list)
    lists: list[str] = field(default_factory=list)
    partners: list[str] = field(default_factory=list)
    attribution: dict[str, str] = field(default_factory=dict)
    timezone: str | None = None
    region: str | None = None
    submissions: int = 0
    first_seen_ms: int = 0
    updated_ms: int = 0
    applied: list[str] = field(default_factory=list)
    first_name: str | None = None
    # what matching and scheduling need: zip, lat, lon, keywords, categories
    profile: dict = field(default_factory=dict)
    # list -> {cadence, paused_until_ms, left}: what the person chose on the preference page
    # (domain.preferences reads it; a list left is also gone from `lists`)
    preferences: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: dict) -> "LeadState":
        return cls(**d)


def check_submission(sub: dict, tenant: Tenant) -> Checked:
    """Validate the submitted contact point (CPU only; suppression comes from the caller)."""
    routing = check_routing(tenant, sub["channel"], sub["list"], sub["partner"])
    if sub["channel"] == "email":
        country = (sub.get("location") or {}).get("country")
        c = check_email(sub["address"], tenant, country)
    else:
        c = check_carrier(check_phone(sub["address"], tenant, bool(sub.get("consent"))), tenant, sub["list"])
    if routing:
        return Checked(c.address, routing + c.reasons, c.domain, c.region, c.timezone, c.detail, c.carrier)
    return c


def source_cap_key(sub: dict, tenant: Tenant) -> tuple[str, str, str, str] | None:
    """(tenant, list, partner, UTC day) of a submission counted against its list's per-source
    cap; None when the list caps nobody."""
    lst = tenant.lists.get(sub["list"])
    if lst is None or not lst.rules.intake.source_caps:
        return None
    day = _utc_day(_ms(sub["occurred_at"]))
    return (sub["tenant"], sub["list"], sub["partner"], day)


def _utc_day(ms: int) -> str:
    days = ms // 86_400_000
    from datetime import date, timedelta
    return (date(1970, 1, 1) + timedelta(days=days)).strftime("%Y%m%d")


def decide(sub: dict, checked: Checked, suppressed: str | None, state: LeadState | None,
           tenant: Tenant, source: str, accepted_today: int = 0) -> list[tuple[str, dict]]:
    """The events that follow from one submitted lead, given what we know about the person.

    suppressed: "blocklisted", "opted_out" or None, looked up by the caller. accepted_today:
    leads this partner already brought to this list today (for the list's source cap). A decision
    carries the time of the event it decides, never the clock: a submission redelivered
    after a crash is decided into byte-identical events, so a replay folds what the live
    agent folded.
    """
    if state is not None and sub["event_id"] in state.applied:
        return []  # a redelivered event we already decided
    base = _envelope(sub, source)
    rules = _rules(tenant, sub["list"])
    if state is not None and state.status in KNOWN:
        if (suppressed != "blocklisted" and not left_list(state, sub["list"])
                and reactivates_on_resubmit(rules, state.status, state.reasons)):
            return _reactivated(sub, base, state)
        return [_resubmitted(sub, base, state, tenant, suppressed)]
    reasons = list(checked.reasons) + ([suppressed] if suppressed else [])
    if not reasons and over_source_cap(rules.intake, sub["partner"], accepted_today):
        reasons.append(SOURCE_CAP_REACHED)
    if reasons:
        ev = dict(base, channel=sub["channel"], address=checked.address, partner=sub["partner"],
                  list=sub["list"], reasons=reasons, detail=checked.detail, carrier=checked.carrier)
        return [("lead.rejected", _ided(ev, sub, "lead.rejected"))]
    ev = dict(base, channel=sub["channel"], address=checked.address,
              first_name=sub.get("first_name"), last_name=sub.get("last_name"),
              location=sub.get("location"), interests=sub.get("interests") or {},
              timezone=checked.timezone, region=checked.region, partner=sub["partner"],
              list=sub["list"], attribution=sub.get("attribution") or {},
              consent=sub.get("consent"), carrier=checked.carrier)
    return [("lead.accepted", _ided(ev, sub, "lead.accepted"))]


DO_NOT_CONTACT = "do_not_contact"


def refuse_erased(sub: dict, source: str) -> tuple[str, dict]:
    """A submission of an erased person (on the do-not-contact list): refused, and recorded
    without the address; it changes no lead's state (evolve), so it brings nobody back."""
    ev = dict(_envelope(sub, source), channel=sub["channel"], address="", partner=sub["partner"],
              list=sub["list"], reasons=[DO_NOT_CONTACT], detail="", carrier=None)
    return "lead.rejected", _ided(ev, sub, "lead.rejected")


def left_list(state: LeadState, list_name: str) -> bool:
    """Whether the person left this list on the preference page."""
    return bool((state.preferences or {}).get(list_name, {}).get("left"))


def _rules(tenant: Tenant, list_name: str) -> ListRules:
    lst = tenant.lists.get(list_name)
    return lst.rules if lst is not None else ListRules()


def _reactivated(sub: dict, base: dict, state: LeadState) -> list[tuple[str, dict]]:
    """A partner sent back a person pruned as inactive, to a list whose rules bring them back:
    the resubmission joins them to the list, and they are subscribed again."""
    resub = dict(base, channel=sub["channel"], partner=sub["partner"], list=sub["list"],
                 attribution=sub.get("attribution") or {}, status=state.status, outcome="reactivated")
    resub = _ided(resub, sub, "lead.resubmitted")
    # caused by the resubmission (one cause, one event: the read model skips a cause it applied)
    back = dict(base, channel=state.channel, address=state.address, reason="reactivated_by_resubmission",
                causation_id=resub["event_id"])
    back["event_id"] = derived_event_id(resub["event_id"], "lead.resubscribed", resub["occurred_at"])
    back["schema"] = schema_label("lead.resubscribed")
    return [("lead.resubmitted", resub), ("lead.resubscribed", back)]


def _resubmitted(sub: dict, base: dict, state: LeadState, tenant: Tenant,
                 suppressed: str | None) -> tuple[str, dict]:
    if state.status in OUTCOME_FOR_STATUS:
        outcome = OUTCOME_FOR_STATUS[state.status]
    elif left_list(state, sub["list"]):
        outcome = "kept_unsubscribed"  # the person left this list: a partner cannot put them back
    elif suppressed == "opted_out":
        outcome = "kept_unsubscribed"  # opted out with the brand: never re-subscribed
    elif suppressed:
        outcome = "kept_suppressed"
    elif sub["list"] in state.lists:
        outcome = "already_on_list"
    elif resubmission_policy(_rules(tenant, sub["list"]), tenant.dedupe.resubmission) == "merge":
        outcome = "merged"
    else:
        outcome = "ignored"
    ev = dict(base, channel=sub["channel"], partner=sub["partner"], list=sub["list"],
              attribution=sub.get("attribution") or {}, status=state.status, outcome=outcome,
              **_names_changed(sub, state))
    return ("lead.resubmitted", _ided(ev, sub, "lead.resubmitted"))


CRM_SOURCE = "crm"


def _names_changed(sub: dict, state: LeadState) -> dict:
    """The names a CRM's submission changes: a partner's resubmission never renames a known person,
    but the CRM sync submits a name only when the CRM's change won the field (services/crm/sync_in.py)."""
    if sub.get("source") != CRM_SOURCE:
        return {"first_name": None, "last_name": None}
    first = sub.get("first_name")
    return {"first_name": first if first and first != state.first_name else None,
            "last_name": sub.get("last_name") or None}


def decide_unsubscribe(req: dict, state: LeadState | None,
                       source: str) -> list[tuple[str, dict]]:
    """A request to unsubscribe a lead: lead.unsubscribed, unless unknown or already done."""
    if state is None or req["event_id"] in state.applied or state.status == "unsubscribed":
        return []
    ev = dict(_envelope(req, source), channel=state.channel, address=state.address,
              reason=req["reason"], partner=source_partner(state))
    return [("lead.unsubscribed", _ided(ev, req, "lead.unsubscribed"))]


def source_partner(state: LeadState) -> str:
    """The partner a lead is attributed to: the one whose submission first brought it in
    ('' when unknown). Sends, engagement and unsubscribes carry it, so that a partner's
    analytics can be confined to the leads that partner sent."""
    return state.partners[0] if state.partners else ""


# who may come back, and from which unsubscribe: the person's own START brings back a lead that
# texted STOP; a person's click brings back a lead pruned for inactivity (never a complaint or a bounce)
RESUBSCRIBE_FROM = {"sms_start": ("sms_stop", "inactive"), "reactivated_by_click": ("inactive",)}


def decide_resubscribe(req: dict, state: LeadState | None, source: str) -> list[tuple[str, dict]]:
    """A request to subscribe an unsubscribed lead again: lead.resubscribed, only when the
    reason it left is one that this kind of request may undo."""
    if state is None or req["event_id"] in state.applied or state.status != "unsubscribed":
        return []
    if not set(state.reasons) & set(RESUBSCRIBE_FROM.get(req["reason"], ())):
        return []
    ev = dict(_envelope(req, source), channel=state.channel, address=state.address, reason=req["reason"])
    return [("lead.resubscribed", _ided(ev, req, "lead.resubscribed"))]


def _envelope(sub: dict, source: str) -> dict:
    return {"tenant": sub["tenant"], "occurred_at": _ms(sub["occurred_at"]), "causation_id": sub["event_id"],
            "source": source, "lead_id": sub["lead_id"]}


def _ided(ev: dict, sub: dict, name: str) -> dict:
    ev["event_id"] = derived_event_id(sub["event_id"], name, _ms(sub["occurred_at"]))
    ev["schema"] = schema_label(name)
    return ev


def _ms(ts) -> int:
    return ts if isinstance(ts, int) else int(ts.timestamp() * 1000)


def evolve(state: LeadState | None, name: str, ev: dict) -> LeadState | None:
    """Fold one lead event into the read model. A copy of an event already folded in
    (a topic may hold one after a crash between produce and commit) changes nothing."""
    if state is not None and ev.get("causation_id") in state.applied:
        return state
    at = _ms(ev["occurred_at"])
    if name == "lead.accepted":
        state = LeadState(ev["tenant"], ev["lead_id"], ev["channel"], ev["address"], "accepted",
                          lists=[ev["list"]], partners=[ev["partner"]],
                          attribution=dict(ev.get("attribution") or {}),
                          timezone=ev.get("timezone"), region=ev.get("region"),
                          submissions=(state.submissions if state else 0) + 1,
                          first_seen_ms=state.first_seen_ms if state else at,
                          applied=list(state.applied) if state else [],
                          first_name=ev.get("first_name"), profile=_profile(ev),
                          preferences=dict(state.preferences) if state else {})
    elif name == "lead.rejected":
        if DO_NOT_CONTACT in ev["reasons"]:
            return state  # an erased person refused: no state, not even a rejected one
        if state is not None and state.status in KNOWN:
            return state  # never downgrade a known person
        state = LeadState(ev["tenant"], ev["lead_id"], ev["channel"], ev["address"], "rejected",
                          reasons=list(ev["reasons"]), lists=[ev["list"]], partners=[ev["partner"]],
                          submissions=(state.submissions if state else 0) + 1,
                          first_seen_ms=state.first_seen_ms if state else at,
                          applied=list(state.applied) if state else [])
    elif name == "lead.unsubscribed":
        if state is None:
            return None
        state.status = "unsubscribed"
        state.reasons = [ev["reason"]]
    elif name == "lead.resubscribed":
        if state is None:
            return None
        state.status = "accepted"
        state.reasons = []
    elif name == "lead.preferences_changed":
        if state is None:
            return None
        state.preferences = {**(state.preferences or {}),
                             ev["list"]: {"cadence": ev["cadence"], "paused_until_ms": ev["paused_until_ms"],
                                          "left": ev["left"]}}
        if ev["left"]:
            state.lists = [n for n in state.lists if n != ev["list"]]
    elif name == "lead.resubmitted":
        if state is None:
            return None
        state.submissions += 1
        if ev["outcome"] in ("merged", "reactivated"):
            state.lists = _add(state.lists, ev["list"])
            state.partners = _add(state.partners, ev["partner"])
            state.attribution = {**state.attribution, **(ev.get("attribution") or {})}
        if ev.get("first_name"):  # a CRM's change that won the field
            state.first_name = ev["first_name"]
    else:
        return state
    state.updated_ms = at
    if ev.get("causation_id"):
        state.applied = (state.applied + [ev["causation_id"]])[-APPLIED_KEEP:]
    return state


def _profile(ev: dict) -> dict:
    """The parts of an accepted lead that matching and scheduling read."""
    loc = ev.get("location") or {}
    interests = ev.get("interests") or {}
    return {"zip": loc.get("zip"), "lat": loc.get("lat"), "lon": loc.get("lon"),
            "keywords": list(interests.get("keywords") or []),
            "categories": list(interests.get("categories") or [])}


def _add(items: Iterable[str], item: str) -> list[str]:
    items = list(items)
    return items if item in items else items + [item]
