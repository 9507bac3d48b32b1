"""The sender's decisions, pure: may this request go out now, and which events tell what
happened. The sender agent does the I/O around them (Redis marks, providers, Kafka).

At most once per send id: a request whose id is already marked "sent" or "failed" is
skipped; one marked "inflight" by a worker that may have died waits until the claim's lease
has run out, then is reported as failed(outcome_unknown) — the provider may or may not have
taken it, and sending it again could deliver it twice.
"""
from __future__ import annotations

from dataclasses import dataclass

from domain.identity import derived_event_id
from domain.intake import RESUBSCRIBE_FROM, LeadState
from domain.preferences import preference_of
from domain.schedule import after_quiet_hours, in_quiet_hours
from domain.schema_labels import schema_label
from domain.sms_replies import ReplyIntent, confirmation_text

LEASE_MS = 5 * 60 * 1000  # a claim older than this belongs to a worker that is gone
PRIORITY_KINDS = ("welcome", "triggered", "more_jobs")
DAILY_CAPPED = ("daily",)  # welcome and triggered messages do not count against the daily cap
# messages that bring a list's jobs: the last one delivered marks what is "new" in the next.
# A welcome is not one: it shows current matches without calling them new.
ALERT_KINDS = ("daily", "more_jobs")
NO_NEW_JOBS = "no_new_jobs"  # send.skipped: matches exist, but none first seen since the previous alert
NO_MATCHING_JOBS = "no_matching_jobs"  # send.skipped: no job matches the lead at all
ASKED_FOR = ("more_jobs",)  # what the person asked for just now: a pause of the list does not hold it
SOURCE = "agent:sender"
MAX_ATTEMPTS = 8  # a transient failure is retried until this many attempts, then send.failed
RESEND_JOBS_AFTER_MS = 14 * 24 * 3600 * 1000  # a job is not sent to the same lead again within this
WELCOME_TEMPLATE = "welcome"  # tenants/templates/{tenant}/welcome.*, else default/welcome.*
# what a request composes (content_of): a job alert (daily, more jobs), a welcome, the answer
# to an SMS reply, or a named template with its context (a trigger's message, later a digest)
JOB_ALERT, WELCOME, REPLY, TEMPLATE = "job_alert", "welcome", "reply", "template"


@dataclass(frozen=True)
class Verdict:
    """go, skip (send.skipped), defer (to the retry topic) or fail (send.failed)."""

    action: str
    reason: str = ""
    retry_at: int | None = None


GO = Verdict("go")


def screen(req: dict, state: LeadState | None, suppressed: bool, now_ms: int,
           quiet_hours: str | None = None, consent_withdrawn: bool = False) -> Verdict:
    """Checks made again at send time: the lead may have left (or left the list, or paused it
    on the preference page) since the request was planned, and an SMS that was deferred
    (rate limits, a provider's trouble) may now fall in the lead's quiet hours: it waits for
    their end instead of waking anyone."""
    if req.get("not_before") and _ms(req["not_before"]) > now_ms:
        return Verdict("defer", "not_yet", _ms(req["not_before"]))
    if state is None:
        return Verdict("skip", "unknown_lead")
    if state.status != "accepted":
        return Verdict("skip", state.status)  # unsubscribed, cold, suppressed, rejected
    pref = preference_of(state, req["list"])
    if pref.left:
        return Verdict("skip", "left_list")
    if req["list"] not in state.lists:
        return Verdict("skip", "not_on_list")
    if pref.paused_at(now_ms) and req["kind"] not in ASKED_FOR:
        return Verdict("skip", "paused")
    if suppressed:
        return Verdict("skip", "suppressed")
    if consent_withdrawn and req["kind"] not in ASKED_FOR:  # the ledger's current marketing consent
        return Verdict("skip", "consent_withdrawn")
    if req["channel"] == "sms" and _late(req, now_ms) and in_quiet_hours(now_ms, state.timezone, quiet_hours):
        return Verdict("defer", "quiet_hours", after_quiet_hours(now_ms, state.timezone, quiet_hours))
    return GO


LATE_MS = 30 * 60 * 1000
RESUBSCRIBE_WAIT_MS = 10 * 60 * 1000  # how long a START confirmation waits for the intake


def _late(req: dict, now_ms: int) -> bool:
    """Sent later than planned (a retry, or half an hour past its instant): the quiet hours
    checked when it was planned no longer vouch for now."""
    return req.get("attempt", 0) > 0 or now_ms - _ms(req["due_at"]) > LATE_MS


def is_reply(req: dict) -> bool:
    """An answer to the lead's own SMS (STOP / HELP confirmation)."""
    return (req.get("trigger") or "").startswith("reply:")


def screen_reply(req: dict, state: LeadState | None, blocklisted: bool, now_ms: int) -> Verdict:
    """An answer goes to whoever wrote, subscribed or not (a STOP is confirmed once). START is
    confirmed only once the lead is subscribed again: while the intake has yet to decide it
    waits a moment; a lead that START cannot bring back (a complaint, the brand's own
    unsubscribe) gets no false "you are subscribed". The wait is bounded by time, not by
    tries: a loaded intake can take many seconds to decide, and the answer must not be lost."""
    if state is None:
        return Verdict("skip", "unknown_lead")
    if blocklisted:
        return Verdict("skip", "suppressed")
    if req["trigger"] == "reply:start" and state.status != "accepted":
        waited_ms = now_ms - _ms(req["due_at"])
        if set(state.reasons) & set(RESUBSCRIBE_FROM["sms_start"]) and waited_ms < RESUBSCRIBE_WAIT_MS:
            step = min(2000 * 2 ** req.get("attempt", 0), 30_000)
            return Verdict("defer", "awaiting_resubscribe", now_ms + step)
        return Verdict("skip", "not_resubscribed")
    return GO


def reply_text(req: dict, brand: str, help_contact: str) -> str:
    """The confirmation text for a reply trigger ("reply:stop" / "reply:help" / "reply:start")."""
    kind = req["trigger"].split(":", 1)[1]
    text = confirmation_text(ReplyIntent(kind, kind.upper(), "reply"), brand, help_contact)
    if text is None:
        raise ValueError(f"no confirmation for reply trigger {req['trigger']!r}")
    return text


def after_mark(mark: bytes | None, now_ms: int, lease_ms: int = LEASE_MS) -> Verdict:
    """What an existing in-flight / sent mark of the send id means for this request."""
    if mark is None:
        return GO
    text = mark.decode()
    if text.startswith("sent"):
        return Verdict("skip", "already_sent")
    if text.startswith("failed"):
        return Verdict("skip", "already_failed")
    claimed_ms = int(text.rsplit("|", 1)[1]) if text.count("|") == 2 else 0
    if now_ms - claimed_ms < lease_ms:
        return Verdict("defer", "in_flight_elsewhere", claimed_ms + lease_ms)
    return Verdict("fail", "outcome_unknown")


def over_cap(req: dict, nth_today: int, caps: dict[str, int]) -> bool:
    """A daily alert past the tenant's per-lead cap for its channel and local day."""
    return req["kind"] in DAILY_CAPPED and nth_today > caps.get(req["channel"], 1)


def backoff_ms(attempt: int, retry_after_s: float | None) -> int:
    """Delay before the next attempt: the provider's Retry-After, else 2 s doubling to 10 min."""
    if retry_after_s:
        return int(retry_after_s * 1000)
    return min(2000 * 2 ** attempt, 600_000)


def retried(req: dict, not_before: int) -> dict:
    """The request again, one attempt later, not before that instant."""
    attempt = req.get("attempt", 0) + 1
    return {**req, "attempt": attempt, "not_before": not_before,
            "event_id": derived_event_id(req["send_id"], f"send.requested#{attempt}", not_before)}


def send_event(kind: str, req: dict, now_ms: int, **fields) -> tuple[str, dict]:
    """send.dispatched / failed / deferred / skipped for this request (with the request's
    partner, so that what happens to a send counts for the partner that sent the lead)."""
    attempt = req.get("attempt", 0)
    ev = {"event_id": derived_event_id(req["send_id"], f"{kind}#{attempt}", _ms(req["due_at"])),
          "tenant": req["tenant"], "occurred_at": now_ms, "schema": schema_label(kind),
          "causation_id": req["event_id"], "source": SOURCE, "lead_id": req["lead_id"],
          "send_id": req["send_id"], "channel": req["channel"], "list": req["list"],
          "kind": req["kind"], "partner": req.get("partner", ""), **fields}
    if kind != "send.skipped":
        ev.setdefault("attempt", attempt)
    return kind, ev


def topic_for(req: dict) -> str:
    """Which send topic a request belongs on: priority work never queues behind bulk work."""
    return "priority" if req["kind"] in PRIORITY_KINDS else "bulk"


def _ms(ts) -> int:
    return ts if isinstance(ts, int) else int(ts.timestamp() * 1000)


def previous_alert_ms(history: list[dict], list_name: str) -> int | None:
    """When the lead's previous alert on this list was delivered, from its send history
    (newest first, as projections.redis_sends keeps it), or None when there is none."""
    times = [h["at"] for h in history
             if h.get("list") == list_name and h.get("kind") in ALERT_KINDS and h.get("at")]
    return max(times) if times else None


def empty_alert_reason(kind: str, channel: str, new_jobs: int, matching_jobs: int) -> str | None:
    """Why a message must not go out for want of jobs, or None when it may: a daily alert needs a
    job first seen since the previous alert (no_new_jobs when only older matches exist), any
    other SMS but a welcome needs a match (it is its jobs and its link). A welcome goes without."""
    if kind == "daily" and not new_jobs:
        return NO_NEW_JOBS if matching_jobs else NO_MATCHING_JOBS
    if channel == "sms" and kind != "welcome" and not matching_jobs:
        return NO_MATCHING_JOBS
    return None


def content_of(req: dict) -> str:
    """What to compose for this request: the answer to a reply, a named template (with the
    request's context), a welcome, or a job alert."""
    if is_reply(req):
        return REPLY
    if req.get("template"):
        return TEMPLATE
    if req["kind"] == "welcome":
        return WELCOME
    return JOB_ALERT


def template_id(req: dict, list_template: str) -> str:
    """The template a request composes with: its own, the welcome, or the list's."""
    content = content_of(req)
    if content == TEMPLATE:
        return req["template"]
    if content == WELCOME:
        return WELCOME_TEMPLATE
    if content == REPLY:
        return "reply"
    return list_template


def needs_jobs(req: dict) -> bool:
    """Whether the message is made of matched jobs (an answer or a template message is not,
    unless its context asks for jobs)."""
    content = content_of(req)
    return content in (JOB_ALERT, WELCOME)


def may_go_without_jobs(req: dict, new_jobs: int, matching_jobs: int) -> str | None:
    """The skip reason of a message that needs jobs and has none (see empty_alert_reason)."""
    if not needs_jobs(req):
        return None
    return empty_alert_reason(req["kind"], req["channel"], new_jobs, matching_jobs)


def suppression_keys(address: str | None, req: dict) -> list[str]:
    """What a blocklist or opt-out may name for this send: the address (and, for email, its
    domain), or the lead id when the lead is unknown."""
    if address is None:
        return [req["lead_id"]]
    if req["channel"] == "email" and "@" in address:
        return [address, "@" + address.rsplit("@", 1)[1]]
    return [address]


def cap_key(req: dict) -> tuple[str, str, str, str]:
    """The per-lead, per-local-day counter a daily alert takes."""
    return (req["tenant"], req["channel"], req["lead_id"], req["local_date"])


def sms_list_of(lists, channel_of) -> str:
    """The lead's SMS list (for a "more jobs" request that names none): the first of the lead's
    lists whose channel is sms, else the first list, else ""."""
    lists = list(lists)
    for name in lists:
        if channel_of(name) == "sms":
            return name
    return lists[0] if lists else ""


def log_ids(req: dict) -> dict:
    """The ids a log line about one request carries (see streams/logs.py)."""
    return {"tenant": req["tenant"], "lead_id": req["lead_id"], "event_id": req["event_id"],
            "send_id": req["send_id"]}
