"""Engagement decisions: from what the tracking front and the providers observed to the facts.

Pure. The engagement agent passes in the observation (a hit or a provider webhook's
observation), what it knows of the message's recent clicks and the tenant's policy; these
functions say which events follow. Event ids are derived from the observation's id, so a
redelivered observation decides the very same events (and ClickHouse/Redis collapse them).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from domain.bots import BotPolicy, Hit, SendActivity, Verdict, burst_victims, classify, remember
from domain.schema_labels import schema_label
from domain.sms_replies import ReplyIntent

SOURCE = "agent:engagement"
ATTRIBUTION = ("send_id", "code", "slot", "job_key", "job_source", "position", "cpc_cents", "list",
               "template", "campaign", "creative")
BLANK_ATTRIBUTION = {"send_id": "", "code": "", "slot": "", "job_key": "", "job_source": "",
                     "position": 0, "cpc_cents": 0, "list": "", "template": "", "campaign": "",
                     "creative": ""}
UNSUBSCRIBE_REASONS = {"one_click": "link", "sms_stop": "sms_stop", "complaint": "complaint",
                       "hard_bounce": "hard_bounce", "soft_bounces": "soft_bounces",
                       "provider_unsubscribe": "provider", "inactive": "inactive"}

Out = tuple[str, str, dict]  # (topic role: engagement | lead_input | send_events | priority, event name, event)


@dataclass(frozen=True)
class Policy:
    bots: BotPolicy
    soft_bounce_limit: int
    soft_bounce_window_ms: int
    more_keywords: tuple[str, ...]


def _envelope(name: str, event_id: str, tenant: str, at_ms: int, cause: str) -> dict:
    return {"event_id": event_id, "tenant": tenant, "occurred_at": at_ms,
            "schema": schema_label(name), "causation_id": cause, "source": SOURCE}


def derived_id(event_id: str, suffix: str) -> str:
    """A deterministic id for the n-th event decided from one observation (ULID time kept)."""
    return f"{event_id[:20]}{suffix}" if suffix else event_id


def hit_of(ev: dict) -> Hit:
    """The bot filter's view of an engagement.hit event."""
    return Hit(kind=ev["kind"], method=ev["method"], user_agent=ev["user_agent"], ip=ev["ip"] or "",
               at_ms=event_ms(ev["occurred_at"]), delivered_ms=ev["delivered_at"], slot=ev["slot"],
               send_id=ev["send_id"], code=ev["code"])


def verdict_fields(v: Verdict, via: str = "tracking") -> dict:
    return {"actor": v.actor, "is_bot": v.is_bot, "reason": v.reason, "via": via}


def decide_hit(ev: dict, activity: SendActivity, policy: Policy,
               recent: dict[str, dict]) -> tuple[list[Out], SendActivity, dict[str, dict]]:
    """The events a tracking hit decides, the message's activity after it, and the clicked
    events still inside the burst window (by code), so a later burst can revise them."""
    hit = hit_of(ev)
    at = hit.at_ms
    if ev["kind"] == "unsubscribe":
        return _unsubscribe_hit(ev), activity, recent
    verdict = classify(hit, activity, policy.bots)
    name = "engagement.opened" if ev["kind"] == "open" else "engagement.clicked"
    out_ev = (_envelope(name, ev["event_id"], ev["tenant"], at, ev["event_id"])
              | {"lead_id": ev["lead_id"], "channel": "email" if ev["kind"] == "open" else _channel(ev)}
              | {k: ev[k] for k in ATTRIBUTION}
              | {"method": ev["method"], "user_agent": ev["user_agent"], "ip": ev["ip"] or ""}
              | verdict_fields(verdict) | {"revision": 0, "partner": ev.get("partner", "")})
    if name == "engagement.clicked":
        out_ev["destination_url"] = ev["destination_url"]
    outs: list[Out] = [("engagement", name, out_ev)]
    if name == "engagement.clicked":
        outs += _revise_burst(activity, hit, policy, recent, verdict)
        activity = remember(activity, hit, verdict, policy.bots)
        recent = {c: e for c, e in recent.items() if at - event_ms(e["occurred_at"]) <= policy.bots.burst_window_s * 1000}
        if not verdict.is_bot:
            recent[ev["code"]] = out_ev
    return outs, activity, recent


def _revise_burst(activity: SendActivity, hit: Hit, policy: Policy, recent: dict[str, dict],
                  verdict: Verdict) -> list[Out]:
    """Earlier clicks this one shows to be part of a scanner's burst: revised as bots."""
    if verdict.reason not in ("burst", "honeypot"):
        return []
    outs = []
    for code in burst_victims(activity, hit, policy.bots) if verdict.reason == "burst" else tuple(recent):
        earlier = recent.get(code)
        if earlier is None or earlier["is_bot"]:
            continue
        revised = earlier | {"actor": "bot", "is_bot": True, "reason": verdict.reason,
                             "revision": earlier["revision"] + 1}
        recent[code] = revised
        outs.append(("engagement", "engagement.clicked", revised))
    return outs


def _unsubscribe_hit(ev: dict) -> list[Out]:
    """A POST to /u/{code} (the page's button or RFC 8058 one-click) unsubscribes; a GET only shows the page."""
    if ev["method"] != "POST":
        return []
    return unsubscribe(ev, how="one_click", channel=_channel(ev), send_id=ev["send_id"],
                       list_=ev["list"], template=ev["template"])


def unsubscribe(ev: dict, how: str, channel: str, send_id: str = "", list_: str = "",
                template: str = "") -> list[Out]:
    """The request the intake turns into lead.unsubscribed, and the engagement fact with its cause."""
    at = event_ms(ev["occurred_at"])
    request = (_envelope("lead.unsubscribe_requested", derived_id(ev["event_id"], "UNSUBREQ"), ev["tenant"], at,
                         ev["event_id"])
               | {"lead_id": ev["lead_id"], "reason": UNSUBSCRIBE_REASONS[how], "requested_by": SOURCE})
    fact = (_envelope("engagement.unsubscribed", derived_id(ev["event_id"], "UNSUBENG"), ev["tenant"], at,
                      ev["event_id"])
            | {"lead_id": ev["lead_id"], "channel": channel, "send_id": send_id, "list": list_,
               "template": template, "how": how})
    return [("lead_input", "lead.unsubscribe_requested", request), ("engagement", "engagement.unsubscribed", fact)]


def _leave_list(ev: dict, at: int) -> list[Out]:
    """A provider's unsubscribe from one kind of mail (SendGrid's unsubscribe group): the person
    leaves the list of that message and stays on the others, as if they had chosen "leave this
    list" on the preference page. A message of no list (a triggered one) leaves nothing here;
    the provider keeps the group suppressed on its side."""
    if not ev["list"]:
        return []
    request = (_envelope("lead.preferences_requested", derived_id(ev["event_id"], "LEFTLIST"), ev["tenant"], at,
                         ev["event_id"])
               | {"lead_id": ev["lead_id"], "list": ev["list"], "action": "leave_list", "cadence": "",
                  "pause_weeks": 0, "send_id": ev["send_id"], "code": "", "requested_by": SOURCE})
    return [("lead_input", "lead.preferences_requested", request)]


def _channel(ev: dict) -> str:
    # SMS carries one link, in slot "sms"; everything else is in an email
    return "sms" if ev.get("slot") == "sms" else "email"


def event_ms(t) -> int:
    """An event's timestamp-millis field as ms, whether decoded to a datetime or still an int."""
    return t if isinstance(t, int) else int(t.timestamp() * 1000)


# ---- provider webhooks ---------------------------------------------------------------------

def decide_observation(ev: dict, soft_bounces_in_window: int, policy: Policy,
                       intent: ReplyIntent | None = None) -> list[Out]:
    """The events one provider observation decides. soft_bounces_in_window counts this
    address's soft bounces inside the tenant's window, this one included."""
    kind = ev["kind"]
    at = event_ms(ev["occurred_at"])
    if kind == "delivered":
        return [("send_events", "send.delivered", _send_fact("send.delivered", ev, at))]
    if kind in ("bounced", "failed"):
        bounce = ev["bounce_type"] or ("hard" if kind == "bounced" else "soft")
        outs: list[Out] = [("send_events", "send.bounced",
                            _send_fact("send.bounced", ev, at) | {"bounce_type": bounce, "reason": ev["reason"]})]
        if bounce == "hard":
            outs += unsubscribe(ev, "hard_bounce", ev["channel"], ev["send_id"], ev["list"], ev["template"])
        elif soft_bounces_in_window >= policy.soft_bounce_limit:
            outs += unsubscribe(ev, "soft_bounces", ev["channel"], ev["send_id"], ev["list"], ev["template"])
        return outs
    if kind == "complained":
        fact = (_envelope("engagement.complained", ev["event_id"], ev["tenant"], at, ev["event_id"])
                | {"lead_id": ev["lead_id"], "send_id": ev["send_id"], "provider": ev["provider"], "reason": ev["reason"],
                   "partner": ev.get("partner", "")})
        return [("engagement", "engagement.complained", fact)] + unsubscribe(
            ev, "complaint", ev["channel"], ev["send_id"], ev["list"], ev["template"])
    if kind == "unsubscribed":
        return unsubscribe(ev, "provider_unsubscribe", ev["channel"], ev["send_id"], ev["list"], ev["template"])
    if kind == "left_list":
        return _leave_list(ev, at)
    if kind in ("opened", "clicked"):
        return [_provider_engagement(ev, at, policy)]
    if kind == "reply" and intent is not None:
        return _reply(ev, at, intent)
    return []  # deferred and the like: kept on the raw topic and in metrics only


def _send_fact(name: str, ev: dict, at: int) -> dict:
    return (_envelope(name, ev["event_id"], ev["tenant"], at, ev["event_id"])
            | {"lead_id": ev["lead_id"], "send_id": ev["send_id"], "channel": ev["channel"],
               "provider": ev["provider"], "provider_id": ev["provider_message_id"], "list": ev["list"],
               "template": ev["template"], "partner": ev.get("partner", "")})


def _provider_engagement(ev: dict, at: int, policy: Policy) -> Out:
    """An open or click the provider tracked itself: filtered like ours, on what it reports."""
    kind = "open" if ev["kind"] == "opened" else "click"
    hit = Hit(kind=kind, method="GET", user_agent=ev["user_agent"], ip=ev["ip"] or "", at_ms=at, delivered_ms=0,
              slot="", send_id=ev["send_id"], code="")
    verdict = classify(hit, SendActivity(), policy.bots)
    name = "engagement.opened" if kind == "open" else "engagement.clicked"
    out = (_envelope(name, ev["event_id"], ev["tenant"], at, ev["event_id"])
           | {"lead_id": ev["lead_id"], "channel": ev["channel"] or "email"} | BLANK_ATTRIBUTION
           | {"send_id": ev["send_id"], "list": ev["list"], "template": ev["template"]}
           | {"method": "GET", "user_agent": ev["user_agent"], "ip": ev["ip"] or ""}
           | verdict_fields(verdict, via=ev["provider"]) | {"revision": 0, "partner": ev.get("partner", "")})
    if name == "engagement.clicked":
        out["destination_url"] = ev["url"]
    return ("engagement", name, out)


def _reply(ev: dict, at: int, intent: ReplyIntent) -> list[Out]:
    fact = (_envelope("engagement.replied", ev["event_id"], ev["tenant"], at, ev["event_id"])
            | {"lead_id": ev["lead_id"], "provider": ev["provider"], "from_number": ev["from_number"],
               "to_number": ev["to_number"], "text": ev["text"][:1600], "intent": intent.kind,
               "keyword": intent.keyword, "partner": ev.get("partner", "")})
    outs: list[Out] = [("engagement", "engagement.replied", fact)]
    if intent.kind == "stop":
        outs += unsubscribe(ev, "sms_stop", "sms")
    if intent.kind == "start":
        request = (_envelope("lead.resubscribe_requested", derived_id(ev["event_id"], "RESUBREQ"), ev["tenant"], at,
                             ev["event_id"])
                   | {"lead_id": ev["lead_id"], "reason": "sms_start", "requested_by": SOURCE})
        outs.append(("lead_input", "lead.resubscribe_requested", request))
    if intent.kind in ("stop", "help", "start"):
        outs.append(("priority", "send.requested", _answer(ev, at, "triggered", f"reply:{intent.kind}")))
    elif intent.kind == "more":  # the next best jobs, now (jobs already sent are left out)
        outs.append(("priority", "send.requested", _answer(ev, at, "more_jobs", "sms:more")))
    return outs


def _answer(ev: dict, at: int, kind: str, trigger: str) -> dict:
    """The send request answering a reply, on the priority path; its id is fixed by the reply's."""
    day = datetime.fromtimestamp(at / 1000, tz=timezone.utc).strftime("%Y-%m-%d")
    return (_envelope("send.requested", derived_id(ev["event_id"], "ANSWER"), ev["tenant"], at, ev["event_id"])
            | {"lead_id": ev["lead_id"], "send_id": f"reply-{ev['event_id']}", "channel": "sms", "list": "",
               "kind": kind, "due_at": at, "local_date": day, "attempt": 0, "not_before": None,
               "trigger": trigger, "partner": ev.get("partner", "")})


def engagement_counts(name: str, ev: dict) -> dict[str, int]:
    """How one decided engagement event moves the lead's counters (a revision moves a
    click from the human to the machine column)."""
    if name not in ("engagement.opened", "engagement.clicked"):
        return {}
    what = "opens" if name == "engagement.opened" else "clicks"
    if ev.get("revision", 0) > 0:
        return {f"human_{what}": -1, f"machine_{what}": 1} if ev["is_bot"] else {}
    return {f"{'machine' if ev['is_bot'] else 'human'}_{what}": 1}


def score(counts: dict[str, int]) -> int:
    """The lead's engagement score: a human click weighs three opens; machines weigh nothing."""
    return 3 * max(0, counts.get("human_clicks", 0)) + max(0, counts.get("human_opens", 0))
