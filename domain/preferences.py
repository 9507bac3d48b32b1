"""A person's preferences for one list: how often it comes, a pause, leaving it, leaving all.

The preference page (api/tracking.py, GET/POST /p/{code}) reads the person's choice from a
form; `parse_form` checks it strictly. The front produces lead.preferences_requested; the
intake decides it here (`decide_preferences`) into lead.preferences_changed (one list's
cadence, pause or departure) or, for "leave everything", lead.unsubscribed; the read model
folds the change (domain.intake.evolve) and the planner and the sender honour it
(domain.planning, domain.sending) through `preference_of`. Pure: instants come in.

Idempotent by construction: a redelivered request is skipped by its event id, and a
request that would leave the list's preference as it is decides nothing, so the same
request twice changes nothing the second time.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from domain.intake import LeadState, decide_unsubscribe, source_partner
from domain.identity import derived_event_id
from domain.schedule import parse_cadence
from domain.schema_labels import schema_label

ACTIONS = ("cadence", "pause", "leave_list", "leave_all")
PAUSE_WEEKS = (1, 2, 4)
# what a person may choose, most frequent first (values are domain.schedule cadences)
CADENCES: dict[str, str] = {
    "daily": "Every day",
    "weekdays": "On weekdays (Monday to Friday)",
    "3_per_week": "Three times a week (Monday, Wednesday, Friday)",
    "1_per_week": "Once a week (Wednesday)",
}
LEFT_ALL_REASON = "link"  # a person's own unsubscribe through a link in the message
MAX_FORM_BYTES = 1024
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS


class BadPreferenceForm(ValueError):
    """A preference form that cannot be acted on; the message says what was wrong."""


@dataclass(frozen=True)
class PreferenceForm:
    """One checked choice from the preference page."""

    action: str  # one of ACTIONS
    cadence: str = ""  # for "cadence": a value of CADENCES (or the list's own cadence)
    weeks: int = 0  # for "pause": one of PAUSE_WEEKS


@dataclass(frozen=True)
class ListPreference:
    """What a lead chose for one list; the default is "as the list sends it"."""

    cadence: str = ""  # "" = the list's own cadence
    paused_until_ms: int = 0  # nothing is sent before this instant (0: not paused)
    left: bool = False

    def paused_at(self, now_ms: int) -> bool:
        """Whether the list is paused at this instant."""
        return now_ms < self.paused_until_ms

    def to_dict(self) -> dict:
        return {"cadence": self.cadence, "paused_until_ms": self.paused_until_ms, "left": self.left}


NO_PREFERENCE = ListPreference()


def preference_of(state: LeadState, list_name: str) -> ListPreference:
    """The lead's preference for this list (the default when it never chose anything)."""
    d = (state.preferences or {}).get(list_name)
    if not d:
        return NO_PREFERENCE
    return ListPreference(cadence=d.get("cadence") or "", paused_until_ms=int(d.get("paused_until_ms") or 0),
                          left=bool(d.get("left")))


def effective_cadence(state: LeadState, list_name: str, list_cadence: str) -> str:
    """The cadence this lead receives the list at: its own choice, else the list's."""
    return preference_of(state, list_name).cadence or list_cadence


def _sends_per_week(cadence: str) -> int:
    days = parse_cadence(cadence).days
    return 1 if days is None else len(days)  # bare "weekly": once a week


def cadence_choices(list_cadence: str) -> list[tuple[str, str]]:
    """(value, label) a person may pick for a list that sends at list_cadence: the list's
    own first, then every choice that sends less often (nobody is offered more mail than the
    brand set up for the list)."""
    own = parse_cadence(list_cadence).spec
    most = _sends_per_week(own)
    out = [(own, f"{CADENCES.get(own, own)} (the usual)")]
    out += [(value, label) for value, label in CADENCES.items() if value != own and _sends_per_week(value) < most]
    return out


def parse_form(body: bytes, list_cadence: str | None = None) -> PreferenceForm:
    """The choice an application/x-www-form-urlencoded body makes, checked strictly: one
    `action`, the one field that action needs (`cadence` or `weeks`), nothing else.
    list_cadence, when known, limits the cadences to cadence_choices(list_cadence)."""
    if len(body) > MAX_FORM_BYTES:
        raise BadPreferenceForm(f"the form is larger than {MAX_FORM_BYTES} bytes")
    try:
        text = body.decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=4)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadPreferenceForm(f"the form is not URL-encoded fields ({exc})") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise BadPreferenceForm(f"the field {name!r} is given twice")
        fields[name] = value
    action = fields.pop("action", None)
    if action not in ACTIONS:
        raise BadPreferenceForm(f"action must be one of {', '.join(ACTIONS)}; got {action!r}")
    needs = {"cadence": "cadence", "pause": "weeks"}.get(action)
    extra = sorted(set(fields) - {needs})
    if extra:
        raise BadPreferenceForm(f"the action {action!r} takes no field {', '.join(map(repr, extra))}")
    if action == "cadence":
        allowed = [v for v, _ in cadence_choices(list_cadence)] if list_cadence else list(CADENCES)
        if fields.get("cadence") not in allowed:
            raise BadPreferenceForm(f"cadence must be one of {', '.join(allowed)}; got {fields.get('cadence')!r}")
        return PreferenceForm("cadence", cadence=fields["cadence"])
    if action == "pause":
        weeks = fields.get("weeks", "")
        if weeks not in {str(w) for w in PAUSE_WEEKS}:
            raise BadPreferenceForm(f"weeks must be one of {', '.join(map(str, PAUSE_WEEKS))}; got {weeks!r}")
        return PreferenceForm("pause", weeks=int(weeks))
    return PreferenceForm(action)


def pause_end(at_ms: int, weeks: int) -> int:
    """When a pause of `weeks` asked for at at_ms ends: the end of that UTC day, N weeks on
    (whole days, so the same request twice on one day asks for the very same pause)."""
    return ((at_ms + weeks * WEEK_MS) // DAY_MS + 1) * DAY_MS


def decide_preferences(req: dict, state: LeadState | None, list_cadence: str | None,
                       source: str) -> list[tuple[str, dict]]:
    """The events one lead.preferences_requested decides: lead.preferences_changed for one
    list, lead.unsubscribed for "leave everything", or nothing (unknown lead, a redelivery,
    a list the lead is not on or no longer exists (list_cadence None), a choice the list does
    not offer, or a preference already as asked)."""
    if state is None or req["event_id"] in state.applied or state.status != "accepted":
        return []
    if req["action"] == "leave_all":
        return decide_unsubscribe({**req, "reason": LEFT_ALL_REASON}, state, source)
    name = req["list"]
    if name not in state.lists or list_cadence is None:
        return []
    now = preference_of(state, name)
    at = _ms(req["occurred_at"])
    if req["action"] == "cadence":
        if req["cadence"] not in {v for v, _ in cadence_choices(list_cadence)}:
            return []
        own = parse_cadence(list_cadence).spec
        after, change = ListPreference(req["cadence"] if req["cadence"] != own else "", now.paused_until_ms), "cadence"
    elif req["action"] == "pause":
        if req["pause_weeks"] not in PAUSE_WEEKS:
            return []
        after, change = ListPreference(now.cadence, pause_end(at, req["pause_weeks"])), "paused"
    elif req["action"] == "leave_list":
        after, change = ListPreference(now.cadence, now.paused_until_ms, left=True), "left_list"
    else:
        return []
    if after == now:
        return []
    ev = {"event_id": derived_event_id(req["event_id"], "lead.preferences_changed", at), "tenant": req["tenant"],
          "occurred_at": at, "schema": schema_label("lead.preferences_changed"), "causation_id": req["event_id"],
          "source": source, "lead_id": state.lead_id, "channel": state.channel, "list": name, "change": change,
          "cadence": after.cadence, "paused_until_ms": after.paused_until_ms, "left": after.left,
          "send_id": req.get("send_id") or "", "partner": source_partner(state)}
    return [("lead.preferences_changed", ev)]


def _ms(ts) -> int:
    return ts if isinstance(ts, int) else int(ts.timestamp() * 1000)
