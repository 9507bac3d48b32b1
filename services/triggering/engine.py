"""The trigger engine's use case, in two entry points:

- `on_events(batch, now_ms)`: events in (product events, and the platform's own: a lead
  accepted, a person's open, click or reply, an unsubscribe); each lead's history and segment
  membership updated; every trigger the event starts checked against its conditions; what
  goes now is fired, what waits is a timer.
- `fire_due(now_ms)`: the timers that are due, claimed, checked again (the awaited event, the
  goal, quiet hours) and fired.

Firing = cooldown and caps reserved (one atomic step, idempotent per send id) -> send.requested
on the priority path + trigger.fired. Everything else is said with an event (scheduled,
suppressed with its reason, deferred): nothing is dropped silently. An event read long after
it happened (a replay, a backfill) updates the history and segments but fires nothing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import orjson

from domain.experiments import trigger_for_lead
from domain.identity import LeadIds, derived_event_id, identity_email, identity_phone
from domain.product_events import as_trigger_event
from domain.schedule import SMS_DEFAULT_QUIET_HOURS
from domain.schema_labels import schema_label
from domain.triggers import (Facts, TriggerConfig, attributes_of, bound_segment_query, condition_holds, duration_ms, fire_at, is_stale,
                             local_day, quiet_until, same_holds, trigger_send_id, triggers_on, unmet, week_days)
from services.triggering.ports import TriggerPorts

log = logging.getLogger("leadstream.triggers")
SOURCE = "agent:triggers"
LOOKBACK_MS = 90 * 86_400_000
NOW_SLACK_MS = 50  # an action due this close to now goes now rather than through a timer


@dataclass
class Out:
    """What a call produces: (topic, key, event name, event) records, and counts by outcome."""

    records: list[tuple[str, str, str, dict]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    # done only once the records are acknowledged (`after_produce`): a worker killed in between
    # leaves the timer to be claimed again and the membership to be judged again, never an
    # effect whose event is lost
    memberships: list[tuple[str, str, str, bool]] = field(default_factory=list)
    settle: list[str] = field(default_factory=list)

    def add(self, topic: str, name: str, ev: dict) -> None:
        self.records.append((topic, ev["lead_id"], name, ev))
        key = name if name != "trigger.suppressed" else f"suppressed:{ev['reason']}"
        self.counts[key] = self.counts.get(key, 0) + 1


@dataclass
class Seen:
    """One event about one lead, as the engine sees it."""

    tenant: str
    lead: str
    at: int
    event_id: str
    name: str
    props: dict


class TriggerEngine:
    def __init__(self, ports: TriggerPorts):
        self.p = ports

    # -- events in ------------------------------------------------------------------------

    async def on_events(self, batch: list[tuple[str, dict]], now_ms: int) -> Out:
        out = Out()
        book = self.p.book()
        seen = await self._seen(batch, book, out, now_ms)
        if not seen:
            return out
        await self.p.history.remember([(s.tenant, s.lead, s.at, s.event_id, s.name, s.props) for s in seen])
        keys = sorted({(s.tenant, s.lead) for s in seen})
        rows = dict(zip(keys, await self.p.history.histories(keys, now_ms - LOOKBACK_MS)))
        states = dict(zip(keys, await self.p.leads.get_many(keys)))  # read once for the whole batch
        facts = await self._facts(keys, now_ms, rows, states)
        entered = await self._segments(keys, facts, states, book, out, now_ms)
        seen += entered
        fired_now, timers = [], []
        for i, s in enumerate(seen):
            tenant = book.tenants[s.tenant]
            if is_stale(s.at, now_ms) or not tenant.triggers:
                continue
            # the conditions as they stood at this event: not counting what came after it (in
            # time, or later in this batch: a batch may carry several events of one instant)
            later = {x.event_id for x in seen[i + 1:] if (x.tenant, x.lead) == (s.tenant, s.lead)}
            f = _as_of(facts[(s.tenant, s.lead)], rows[(s.tenant, s.lead)], s.at, later)
            for tid in triggers_on(tenant.triggers, s.name, s.props):
                t = tenant.triggers[tid]
                if unmet([c for c in t.conditions if not c.absent], f) is not None:
                    out.counts["not_matched"] = out.counts.get("not_matched", 0) + 1
                    continue
                state = states.get((s.tenant, s.lead))
                acting = trigger_for_lead(tenant.experiments, tid, t, s.lead)  # an experiment may vary its delay
                action = _action(s, tid, fire_at(acting, s.at, state.timezone if state else None))
                if action["fire_at"] <= now_ms + NOW_SLACK_MS:
                    fired_now.append(action)
                else:
                    timers.append((action["send_id"], action["fire_at"], action))
                    out.add("triggers", "trigger.scheduled", self._outcome(
                        "trigger.scheduled", action, now_ms, fire_at=action["fire_at"]))
        await self.p.history.schedule(timers)
        await self._fire_all(fired_now, book, now_ms, out, facts, states)
        return out

    async def _seen(self, batch: list[tuple[str, dict]], book, out: Out, now_ms: int) -> list[Seen]:
        """The batch's events that can start a trigger, with their lead resolved."""
        seen, unresolved = [], []
        for name, ev in batch:
            s = seen_of(name, ev, book.tenants.get(ev.get("tenant", "")), self.p.lead_ids)
            if s is not None:
                (unresolved if by_address(name, ev) else seen).append(s)
        if unresolved:  # the queue path names people by address: only known leads count
            states = await self.p.leads.get_many([(s.tenant, s.lead) for s in unresolved])
            for s, state in zip(unresolved, states):
                if state is not None:
                    seen.append(s)
                else:
                    out.add("triggers", "trigger.suppressed", self._outcome(
                        "trigger.suppressed", {"tenant": s.tenant, "lead_id": s.lead, "trigger": "",
                                               "send_id": "", "cause_event_id": s.event_id},
                        now_ms, reason="unknown_person"))
        return seen

    async def _facts(self, keys: list[tuple[str, str]], now_ms: int, rows: dict | None = None,
                     leads: dict | None = None) -> dict[tuple[str, str], Facts]:
        histories = ([rows[k] for k in keys] if rows is not None
                     else await self.p.history.histories(keys, now_ms - LOOKBACK_MS))
        fired = await self.p.history.fired(keys)
        scores = await self.p.scores.scores(keys)
        segments = await self.p.segments.of_leads(keys)
        states = [leads[k] for k in keys] if leads is not None else await self.p.leads.get_many(keys)
        out = {}
        for key, hist, fire, score, segs, state in zip(keys, histories, fired, scores, segments, states):
            events: dict[str, list[tuple[int, dict]]] = {}
            for at, _, name, props in hist:
                events.setdefault(name, []).append((at, props))
            out[key] = Facts(now_ms, events, score, frozenset(segs), attributes_of(state), fire)
        return out

    async def _segments(self, keys, facts, states, book, out: Out, now_ms: int) -> list[Seen]:
        """Rules segments evaluated for the touched leads; entries and exits applied and said.
        A lead entering a segment is itself an event a trigger may start on (segment.entered)."""
        changes, entered = [], []
        for key in keys:
            tenant = book.tenants[key[0]]
            rules = {sid: seg for sid, seg in tenant.segments.items() if seg.rules}
            if not rules:
                continue
            f = facts[key]
            now_in = set(f.segments)
            for sid in sorted(rules):
                holds = all(condition_holds(c, f) for c in rules[sid].rules)
                if holds != (sid in f.segments):
                    changes.append((key[0], sid, key[1], holds))
                    (now_in.add if holds else now_in.discard)(sid)
                    name = "segment.entered" if holds else "segment.exited"
                    ev = self._segment_event(name, key, sid, now_ms)
                    out.add("triggers", name, ev)
                    if holds:
                        entered.append(Seen(key[0], key[1], now_ms, ev["event_id"], "segment.entered", {"segment": sid}))
            facts[key] = Facts(f.now_ms, f.events, f.score, frozenset(now_in), f.attributes, f.fired)
        out.memberships.extend(changes)
        return entered

    async def after_produce(self, out: Out) -> None:
        """What must follow the records being on their topics: memberships applied, timers settled."""
        await self.p.segments.apply(out.memberships)
        await self.p.history.settle(out.settle)

    # -- timers ---------------------------------------------------------------------------

    async def fire_due(self, now_ms: int, limit: int = 500) -> Out:
        out = Out()
        claimed = await self.p.history.claim_due(now_ms, self.p.lease_ms, limit)
        if not claimed:
            return out
        book = self.p.book()
        lost = [sid for sid, action in claimed if action is None]
        if lost:  # a timer whose action is gone cannot fire: said, not silently dropped
            log.error("timers without their action (Redis lost them?): %s", lost[:10])
            out.counts["timer_without_action"] = len(lost)
            out.settle.extend(lost)
        actions = [a for _, a in claimed if a is not None]
        keys = sorted({(a["tenant"], a["lead_id"]) for a in actions})
        states = await self._states(actions)
        facts = await self._facts(keys, now_ms, leads=states)
        await self._fire_all(actions, book, now_ms, out, facts, states, from_timer=True)
        return out

    async def _states(self, actions: list[dict]) -> dict:
        """The leads of these actions as they are now, in one read."""
        keys = sorted({(a["tenant"], a["lead_id"]) for a in actions})
        return dict(zip(keys, await self.p.leads.get_many(keys)))

    # -- query segments -------------------------------------------------------------------

    async def refresh_segments(self, now_ms: int) -> Out:
        """Each query segment whose refresh is due (one worker takes it): run, diff, say who
        entered and who left. A query that fails is logged and tried at the next refresh."""
        out = Out()
        if self.p.queries is None:
            return out
        for tenant in self.p.book().tenants.values():
            for sid, seg in sorted(tenant.segments.items()):
                if not seg.query or not await self.p.history.lease(f"{tenant.id}:{sid}", duration_ms(seg.refresh)):
                    continue
                try:
                    members = await self.p.queries.lead_ids(bound_segment_query(seg.query, tenant.id))
                except Exception as exc:  # ClickHouse down or the query wrong: said, retried next time
                    log.error("segment %s/%s: the query failed: %r", tenant.id, sid, exc)
                    out.counts["segment_query_failed"] = out.counts.get("segment_query_failed", 0) + 1
                    continue
                entered, exited = await self.p.segments.diff(tenant.id, sid, members)
                out.memberships.extend([(tenant.id, sid, lead, True) for lead in sorted(entered)] +
                                       [(tenant.id, sid, lead, False) for lead in sorted(exited)])
                for lead in sorted(entered):
                    out.add("triggers", "segment.entered", self._segment_event("segment.entered", (tenant.id, lead), sid, now_ms))
                for lead in sorted(exited):
                    out.add("triggers", "segment.exited", self._segment_event("segment.exited", (tenant.id, lead), sid, now_ms))
        return out

    # -- firing ---------------------------------------------------------------------------

    async def _fire_all(self, actions: list[dict], book, now_ms: int, out: Out, facts, states: dict,
                        from_timer: bool = False) -> None:
        """Each action judged again (trigger, subscription, channel, the awaited event, the goal,
        quiet hours), then cooldown and caps reserved for all that may go in one round trip to
        Redis (in order: a lead's second message in the batch sees its first), then said."""
        deferred, going = [], []
        for action in actions:
            reason, until, t, tenant, state = self._judge(action, book, now_ms, facts, states)
            if reason is None and until is not None:
                deferred.append((action["send_id"], until, action))
                out.add("triggers", "trigger.deferred", self._outcome("trigger.deferred", action, now_ms,
                                                                     reason="quiet_hours", until=until))
            elif reason is not None:
                out.add("triggers", "trigger.suppressed", self._outcome("trigger.suppressed", action, now_ms,
                                                                       reason=reason))
            else:
                going.append((action, t, tenant, state))
        await self.p.history.schedule(deferred)
        answers = await self.p.history.reserve_many([
            (a["tenant"], a["lead_id"], a["trigger"], a["send_id"], now_ms, duration_ms(t.cooldown),
             week_days(now_ms, state.timezone), tenant.triggering.per_day, tenant.triggering.per_week)
            for a, t, tenant, state in going])
        for (action, t, tenant, state), answer in zip(going, answers):
            if answer != "ok":
                out.add("triggers", "trigger.suppressed", self._outcome("trigger.suppressed", action, now_ms,
                                                                       reason=answer))
                continue
            lst = t.action.list or _list_on(state, tenant, t.action.channel)
            out.add("priority", "send.requested", _send_request(action, t, lst, state, now_ms))
            out.add("triggers", "trigger.fired", self._outcome(
                "trigger.fired", action, now_ms, channel=t.action.channel, template=t.action.template,
                cause_at=action["cause_at"]))
        if from_timer:  # deferred ones were scheduled again under the same id: not settled
            waiting = {sid for sid, _, _ in deferred}
            out.settle.extend(a["send_id"] for a in actions if a["send_id"] not in waiting)

    def _judge(self, action: dict, book, now_ms: int, facts, states: dict):
        """(reason not to send or None, until when quiet hours defer it or None, trigger, tenant, lead)."""
        tenant = book.tenants.get(action["tenant"])
        t = tenant.triggers.get(action["trigger"]) if tenant else None
        state = states.get((action["tenant"], action["lead_id"]))
        if t is None or not t.enabled:
            return "trigger_removed", None, t, tenant, state
        if state is None or state.status != "accepted":
            return "not_subscribed", None, t, tenant, state
        if state.channel != t.action.channel:
            return "wrong_channel", None, t, tenant, state
        reason = _waited_for(t, action, facts.get((action["tenant"], action["lead_id"])), now_ms)
        if reason is not None:
            return reason, None, t, tenant, state
        quiet = tenant.triggering.quiet_hours or (SMS_DEFAULT_QUIET_HOURS if t.action.channel == "sms" else None)
        return None, quiet_until(now_ms, state.timezone, quiet), t, tenant, state

    # -- events out -----------------------------------------------------------------------

    def _outcome(self, name: str, action: dict, now_ms: int, **fields) -> dict:
        """A trigger.* event; its id fixed by the send id and what happened (a retry repeats it)."""
        ident = action.get("send_id") or action.get("cause_event_id", "")
        what = f"{name}:{fields.get('reason') or fields.get('until') or ''}"
        return {"event_id": derived_event_id(ident, what, action.get("cause_at", now_ms)),
                "tenant": action["tenant"], "occurred_at": now_ms, "schema": schema_label(name),
                "causation_id": action.get("cause_event_id"), "source": SOURCE, "lead_id": action["lead_id"],
                "trigger": action.get("trigger", ""), "send_id": action.get("send_id", ""), **fields}

    def _segment_event(self, name: str, key: tuple[str, str], segment: str, now_ms: int) -> dict:
        return {"event_id": derived_event_id(f"{key[0]}/{key[1]}/{segment}", name, now_ms), "tenant": key[0],
                "occurred_at": now_ms, "schema": schema_label(name), "causation_id": None, "source": SOURCE,
                "lead_id": key[1], "segment": segment}


def _as_of(f: Facts, rows: list[tuple[int, str, str, dict]], at: int, later: set[str]) -> Facts:
    """The facts as they stood at an event: its history up to it, without the events after it."""
    events: dict[str, list[tuple[int, dict]]] = {}
    for when, event_id, name, props in rows:
        if when <= at and event_id not in later:
            events.setdefault(name, []).append((when, props))
    return Facts(at, events, f.score, f.segments, f.attributes, f.fired)


def seen_of(name: str, ev: dict, tenant, ids: LeadIds) -> Seen | None:
    """An event as the engine reads it, its lead resolved; None when it can start nothing (not
    a trigger event, no such tenant, or recorded by the API as about an unknown person)."""
    as_event = as_trigger_event(name, ev)
    if tenant is None or as_event is None:
        return None
    if name == "product.tracked" and not ev.get("resolved", True):
        return None
    lead = ev.get("lead_id") or _resolve(ev, tenant, ids)
    return Seen(tenant.id, lead, _ms(ev["occurred_at"]), ev["event_id"], *as_event)


def by_address(name: str, ev: dict) -> bool:
    """A queue-path event naming its person by address: it counts only for a known lead."""
    return name == "product.tracked" and not ev.get("lead_id")


def _action(s: Seen, trigger: str, due: int) -> dict:
    """What a timer keeps (and an immediate firing uses): enough to decide again at its time."""
    return {"tenant": s.tenant, "lead_id": s.lead, "trigger": trigger,
            "send_id": trigger_send_id(s.tenant, trigger, s.lead, s.event_id), "cause_event_id": s.event_id,
            "cause_at": s.at, "cause_name": s.name, "props": s.props, "fire_at": due}


def _waited_for(t: TriggerConfig, action: dict, f: Facts | None, now_ms: int) -> str | None:
    """'completed' when the absent condition's event came in its window, 'goal_reached' when the
    goal event came while the action waited, else None."""
    if f is None:
        return None
    since, props = action["cause_at"], action.get("props") or {}
    absent = next((c.absent for c in t.conditions if c.absent), None)
    if absent:
        until = since + duration_ms(absent.within)
        # at the very instant of the cause counts too (one batch may carry both, stamped alike)
        if any(since <= at <= until and same_holds(absent.same, props, p) for at, p in f.events.get(absent.event, ())):
            return "completed"
    if t.goal and any(since < at <= now_ms and same_holds(t.goal.same, props, p)
                      for at, p in f.events.get(t.goal.event, ())):
        return "goal_reached"
    return None


def _send_request(action: dict, t: TriggerConfig, list_name: str, state, now_ms: int) -> dict:
    context = {"trigger": action["trigger"], "event": {"name": action["cause_name"], **(action.get("props") or {})}}
    return {"event_id": derived_event_id(action["send_id"], "send.requested", action["cause_at"]),
            "tenant": action["tenant"], "occurred_at": now_ms, "schema": schema_label("send.requested"),
            "causation_id": action["cause_event_id"], "source": SOURCE, "lead_id": action["lead_id"],
            "send_id": action["send_id"], "channel": t.action.channel, "list": list_name, "kind": "triggered",
            "due_at": now_ms, "local_date": local_day(now_ms, state.timezone), "attempt": 0, "not_before": None,
            "trigger": f"trigger:{action['trigger']}", "partner": (state.partners or [""])[0],
            "template": t.action.template, "context": orjson.dumps(context).decode()}


def _list_on(state, tenant, channel: str) -> str:
    """The lead's first list on the channel (whose consent and unsubscribe the message goes under)."""
    for name in state.lists:
        cfg = tenant.lists.get(name)
        if cfg is not None and cfg.channel == channel:
            return name
    return state.lists[0] if state.lists else ""


def _resolve(ev: dict, tenant, ids: LeadIds) -> str:
    """The lead id of a queue-path event that names its person by email or phone."""
    if ev.get("email"):
        return ids.of(tenant.id, "email", identity_email(ev["email"]))
    if ev.get("phone"):
        return ids.of(tenant.id, "sms", identity_phone(ev["phone"], tenant.validation.default_region))
    return ""


def _ms(ts) -> int:
    return ts if isinstance(ts, int) else int(ts.timestamp() * 1000)

