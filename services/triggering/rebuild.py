"""The trigger engine's state folded again from the topics (what runtime.replay writes to Redis).

What the engine keeps is all said on the topics, so all of it comes back:
- each lead's event history: the product and platform events the engine reads
  (product.events, leads.events, engagement.events), the way it reads them (`seen_of`);
- segment membership: the last segment.entered / segment.exited per lead and segment
  (rules and query segments alike) on triggers.events;
- cooldowns and caps: trigger.fired (when, which send id, on which of the lead's local days);
- pending timers: a trigger.scheduled or trigger.deferred whose send id has not yet been fired
  or suppressed, its action rebuilt from the event that caused it. A send id that fired never
  waits again: a trigger.scheduled for it that lands after its trigger.fired (a redelivered cause
  taken again while the due-timer loop fired the timer: the agent writes the timer to Redis, and
  the loop can fire and settle it before the agent's trigger.scheduled reaches Kafka) is stale.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from domain.triggers import fire_at, local_day
from services.triggering.engine import Seen, _action, _ms, by_address, seen_of

CAP_DAYS_MS = 8 * 86_400_000  # the engine's cap sets live eight days


@dataclass
class TriggerLog:
    """triggers.events, folded in topic order (per lead, the order things happened)."""

    membership: dict[tuple[str, str, str], bool] = field(default_factory=dict)  # (tenant, segment, lead)
    fired: dict[tuple[str, str], dict[str, tuple[int, str]]] = field(default_factory=dict)  # -> trigger: (ms, sid)
    fired_days: list[tuple[str, str, int, str]] = field(default_factory=list)  # (tenant, lead, ms, send id)
    waiting: dict[str, tuple[int, dict]] = field(default_factory=dict)  # send id -> (due, the event that said so)
    entries: dict[str, Seen] = field(default_factory=dict)  # segment.entered event id -> as a cause
    sent: set[str] = field(default_factory=set)  # send ids fired: never waiting again

    def add(self, name: str, ev: dict) -> None:
        key = (ev["tenant"], ev["lead_id"])
        if name in ("segment.entered", "segment.exited"):
            self.membership[(ev["tenant"], ev["segment"], ev["lead_id"])] = name == "segment.entered"
            if name == "segment.entered":
                self.entries[ev["event_id"]] = Seen(ev["tenant"], ev["lead_id"], _ms(ev["occurred_at"]),
                                                    ev["event_id"], "segment.entered", {"segment": ev["segment"]})
        elif name == "trigger.fired":
            at, fired = _ms(ev["occurred_at"]), self.fired.setdefault(key, {})
            if fired.get(ev["trigger"], (0, ""))[1] != ev["send_id"]:  # a redelivered cause fires the same
                fired[ev["trigger"]] = (at, ev["send_id"])                # send id again: the first one counts
                self.fired_days.append((ev["tenant"], ev["lead_id"], at, ev["send_id"]))
            self.waiting.pop(ev["send_id"], None)
            self.sent.add(ev["send_id"])
        elif name == "trigger.suppressed":
            self.waiting.pop(ev.get("send_id") or "", None)
        elif ev.get("send_id") in self.sent:  # scheduled or deferred after it fired: stale
            return
        elif name == "trigger.scheduled":
            self.waiting[ev["send_id"]] = (_ms(ev["fire_at"]), ev)
        elif name == "trigger.deferred":
            first = self.waiting.get(ev["send_id"], (0, ev))[1]  # keeps the scheduled event's fire_at
            self.waiting[ev["send_id"]] = (_ms(ev["until"]), first)

    def causes(self) -> set[str]:
        """The ids of the events the pending timers wait on behalf of."""
        return {ev["causation_id"] for _, ev in self.waiting.values() if ev.get("causation_id")}

    def members(self) -> list[tuple[str, str, str, bool]]:
        """(tenant, segment, lead, True) for every membership that stands."""
        return [(t, s, lead, True) for (t, s, lead), member in sorted(self.membership.items()) if member]

    def caps(self, timezones: dict[tuple[str, str], str | None], now_ms: int) -> list[tuple[str, str, str, str]]:
        """(tenant, lead, local day, send id) of the messages that still count against caps."""
        return [(t, lead, local_day(at, timezones.get((t, lead))), sid)
                for t, lead, at, sid in self.fired_days if now_ms - at < CAP_DAYS_MS]

    def timers(self, causes: dict[str, Seen], book, timezones: dict) -> tuple[list[tuple[str, int, dict]], list[str]]:
        """(send id, due, action) for every pending timer, and the send ids whose cause is gone
        (past the topics' retention): those cannot be rebuilt and are reported."""
        out, lost = [], []
        for sid, (due, ev) in sorted(self.waiting.items()):
            cause = causes.get(ev.get("causation_id") or "") or self.entries.get(ev.get("causation_id") or "")
            if cause is None:
                lost.append(sid)
                continue
            tenant = book.tenants.get(ev["tenant"])
            trigger = tenant.triggers.get(ev["trigger"]) if tenant else None
            at = (_ms(ev["fire_at"]) if ev.get("fire_at") is not None
                  else fire_at(trigger, cause.at, timezones.get((cause.tenant, cause.lead))) if trigger else cause.at)
            out.append((sid, due, _action(cause, ev["trigger"], at)))
        return out, lost


def history_item(s: Seen) -> tuple[str, str, int, str, str, dict]:
    """What the engine remembers of an event it has seen."""
    return s.tenant, s.lead, s.at, s.event_id, s.name, s.props


__all__ = ["TriggerLog", "by_address", "history_item", "seen_of"]
