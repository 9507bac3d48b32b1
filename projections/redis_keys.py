"""The catalogue of every Redis key family the platform writes, and how each is bounded.

A family is either bounded by something finite (one key per lead, one per tenant, a fixed
set) or a cache with a TTL. The supervisor exports key counts per family, and a test scans
Redis after a run: every key must belong to a family here, and each family must keep its
promise.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass


@dataclass(frozen=True)
class KeyFamily:
    name: str
    pattern: str  # Redis glob
    bound: str  # what bounds it: "per_lead", "per_tenant", "single" or "ttl"
    max_ttl_s: int | None = None  # for bound == "ttl": every key carries a TTL at most this
    holds: str = ""


# set while Redis holds the platform's state: by the bootstrap of a platform with nothing to
# lose yet, and by `runtime.replay --redis` once it has rebuilt everything after a wipe. Missing,
# a link the tracking front cannot find answers 503 (being rebuilt), not 404 (runtime/bootstrap.py)
INTACT = "ls:intact"

FAMILIES = (
    KeyFamily("intact", INTACT, "single", holds="Redis holds the platform's state (not wiped, or rebuilt)"),
    KeyFamily("lead", "ls:lead:*", "per_lead", holds="each lead's read model (projection of leads.events)"),
    KeyFamily("optout", "ls:optout:*", "per_tenant", holds="a tenant's opted-out addresses"),
    KeyFamily("blocklist", "ls:block", "single", holds="the global blocklist from the tenant file"),
    KeyFamily("schedule", "ls:due:*", "per_tenant", holds="a tenant's schedule: one member per lead and list"),
    KeyFamily("planlock", "ls:planlock:*", "ttl", max_ttl_s=60, holds="one planning pass per tenant at a time"),
    KeyFamily("jobs", "ls:jobs:*", "per_tenant", holds="a tenant's live jobs (projection of jobs.events)"),
    KeyFamily("jobs_version", "ls:jobsver:*", "per_tenant", holds="moves when a tenant's jobs change"),
    KeyFamily("feed_status", "ls:feed:*", "per_tenant", holds="each feed's last poll (one per configured feed)"),
    KeyFamily("feed_lock", "ls:feedlock:*", "ttl", max_ttl_s=24 * 3600, holds="a feed's poll interval"),
    KeyFamily("send_mark", "ls:send:*", "ttl", max_ttl_s=3 * 24 * 3600, holds="a send id's in-flight / sent mark"),
    KeyFamily("rate", "ls:rate:*", "ttl", max_ttl_s=5, holds="per-second rate-limit windows"),
    KeyFamily("tenant_daily_volume", "ls:daycap:*", "ttl", max_ttl_s=2 * 24 * 3600,
              holds="a tenant's sends per channel and UTC day"),
    KeyFamily("daily_cap", "ls:cap:*", "ttl", max_ttl_s=2 * 24 * 3600, holds="sends to a lead on its local day"),
    KeyFamily("history", "ls:hist:*", "ttl", max_ttl_s=90 * 24 * 3600, holds="a lead's last 50 sends"),
    KeyFamily("sent_jobs", "ls:sentjobs:*", "ttl", max_ttl_s=30 * 24 * 3600, holds="jobs sent to a lead lately"),
    KeyFamily("link_seq", "ls:linkseq", "single", holds="the tracked-link code counter"),
    KeyFamily("lead_segments", "ls:seg:*", "per_lead", holds="the segments a lead is in"),
    KeyFamily("trigger_events", "ls:tev:*", "ttl", max_ttl_s=90 * 86_400, holds="a lead's recent events (trigger conditions)"),
    KeyFamily("trigger_fired", "ls:tfired:*", "per_lead", holds="when each trigger last sent to a lead"),
    KeyFamily("trigger_caps", "ls:tcap:*", "ttl", max_ttl_s=8 * 86_400, holds="a lead's triggered messages per local day"),
    KeyFamily("timers", "ls:timers", "single", holds="pending trigger actions by due time"),
    KeyFamily("retry_queue", "ls:retryq", "single", holds="deferred send requests by due time (the retry agent)"),
    KeyFamily("retry_item", "ls:retry:*", "ttl", max_ttl_s=8 * 86_400, holds="one deferred send request"),
    KeyFamily("timer", "ls:timer:*", "ttl", max_ttl_s=200 * 86_400, holds="one pending trigger action"),
    KeyFamily("segment_refresh", "ls:segrefresh:*", "ttl", max_ttl_s=86_400, holds="a query segment's refresh lease"),
    KeyFamily("test_clock", "ls:clockskew", "single", holds="the trigger engine's clock offset (test clocks only)"),
    KeyFamily("segment_members", "ls:segm:*", "per_tenant", holds="a segment's members (one set per segment)"),
    KeyFamily("link", "ls:link:*", "ttl", max_ttl_s=90 * 24 * 3600, holds="a tracked link's record"),
    KeyFamily("webhook_first_received", "ls:whfirst:*", "ttl", max_ttl_s=7 * 24 * 3600,
              holds="when a provider event without a time of its own first came (its replays keep that id)"),
    KeyFamily("provider_message", "ls:pmsg:*", "ttl", max_ttl_s=30 * 24 * 3600,
              holds="the send behind a provider's message id (for its webhooks)"),
    KeyFamily("engagement", "ls:eng:*", "per_lead", holds="a lead's engagement counters and last human times"),
    KeyFamily("engagement_seen", "ls:engseen:*", "ttl", max_ttl_s=7 * 24 * 3600,
              holds="engagement events already counted"),
    KeyFamily("activity", "ls:act:*", "ttl", max_ttl_s=3600, holds="a message's recent clicks (bot filter)"),
    KeyFamily("soft_bounces", "ls:soft:*", "ttl", max_ttl_s=90 * 24 * 3600, holds="a lead's recent soft bounces"),
    KeyFamily("pruned", "ls:pruned:*", "per_tenant", holds="per tenant and channel: leads pruned as inactive in the last year"),
    KeyFamily("source_cap", "ls:srccap:*", "ttl", max_ttl_s=2 * 24 * 3600,
              holds="leads a partner brought to a list with a per-source cap, per UTC day"),
    KeyFamily("config_claim", "ls:cfgclaim:*", "ttl", max_ttl_s=60,
              holds="an entity version being written (optimistic concurrency across API processes)"),
    KeyFamily("session", "ls:sess:*", "ttl", max_ttl_s=7 * 24 * 3600, holds="a signed-in person's session"),
    KeyFamily("person_sessions", "ls:psess:*", "ttl", max_ttl_s=7 * 24 * 3600,
              holds="a person's open sessions (to end them on a password change)"),
    KeyFamily("sign_in_failures", "ls:signfail:*", "ttl", max_ttl_s=24 * 3600,
              holds="recent failed sign-ins per account and per address (lockout)"),
    KeyFamily("last_seen", "ls:lastseen:*", "per_tenant",
              holds="per tenant and channel: each active lead's last human engagement (hygiene)"),
)


def family_of(key: str) -> KeyFamily | None:
    """The family a key belongs to, or None for a key nobody declared."""
    for f in FAMILIES:
        if fnmatch.fnmatchcase(key, f.pattern):
            return f
    return None
