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
    KeyFamily("consent", "ls:consent:*", "per_lead", holds="each lead's current consent per purpose (the ledger's)"),
    KeyFamily("consent_withdrawn", "ls:consentoff:*", "per_tenant",
              holds="the tenant's leads whose current marketing consent is withdrawn (the sender's check)"),
    KeyFamily("data_keys", "ls:dek:*", "per_tenant", holds="each lead's wrapped data key (privacy.keys' working copy)"),
    KeyFamily("recommender", "ls:reco:*", "per_tenant", holds="per tenant: its recommender's newest 3 versions "
              "(model, clickers' clicked jobs) and their index"),
    KeyFamily("recommender_training", "ls:reco-training:*", "ttl", max_ttl_s=86_400,
              holds="one training per brand per interval (TTL: the interval)"),
    KeyFamily("last_click", "ls:lastclick:*", "ttl", max_ttl_s=90 * 86_400,
              holds="a lead's newest human click on our messages (conversion attribution), 90 days"),
    KeyFamily("crm", "ls:crm:*", "per_tenant", holds="per tenant: the CRM sync's cursor and its last poll"),
    KeyFamily("crm_lock", "ls:crmlock:*", "ttl", max_ttl_s=86_400, holds="one CRM poll per interval"),
    KeyFamily("crm_due", "ls:crmdue:*", "ttl", max_ttl_s=3600, holds="a CRM webhook asked for a poll"),
    KeyFamily("crm_fields", "ls:crmf:*", "per_lead", holds="a lead's CRM record: contact id, two-way fields' "
              "registers, what the CRM holds and what we wrote, engagement times"),
    KeyFamily("crm_outbox", "ls:crmout:*", "per_tenant", holds="per tenant: the leads whose CRM write-back is due"),
    KeyFamily("crm_out_lock", "ls:crmoutlock:*", "ttl", max_ttl_s=60, holds="one write-back per brand at a time"),
    KeyFamily("crm_clear", "ls:crmclear:*", "per_tenant",
              holds="per tenant: CRM contact ids of erased people still to be emptied (no personal data)"),
    KeyFamily("crm_rate", "ls:crmrate:*", "ttl", max_ttl_s=20, holds="the write-back's requests in a 10 s window"),
    KeyFamily("do_not_contact", "ls:dnc:*", "per_tenant",
              holds="per tenant: keyed hashes of erased people (every intake path refuses them)"),
    KeyFamily("erased_anonymous", "ls:dncanon:*", "per_tenant",
              holds="per tenant: keyed hash of an erased person -> the anonymous id their analytics rows carry"),
    KeyFamily("digest_bucket", "ls:dgtop:*", "ttl", max_ttl_s=9 * 86_400,
              holds="a group's best items of one hour (at most 50)"),
    KeyFamily("digest_item", "ls:dgitem:*", "ttl", max_ttl_s=9 * 86_400, holds="what a digest shows of an item"),
    KeyFamily("digest_memberships", "ls:dgmem:*", "per_lead", holds="a lead's groups (at most 500) and when joined"),
    KeyFamily("digest_people", "ls:dgpeople:*", "per_tenant",
              holds="per tenant and time zone: the members and when each was last seen"),
    KeyFamily("digest_zone_of", "ls:dgtz:*", "per_tenant", holds="per tenant: each member's time zone"),
    KeyFamily("digest_zones", "ls:dgzones:*", "per_tenant", holds="per tenant: the time zones members are in"),
    KeyFamily("digest_groups", "ls:dggroup:*", "per_tenant", holds="per tenant: each group's kind"),
    KeyFamily("digest_snapshot", "ls:dgsnap:*", "ttl", max_ttl_s=3 * 86_400,
              holds="a digest run's members on one path, as planned"),
    KeyFamily("digest_run", "ls:dgrun:*", "ttl", max_ttl_s=14 * 86_400, holds="a digest run's plan and counters"),
    KeyFamily("digest_chunk", "ls:dgchunk:*", "ttl", max_ttl_s=3 * 86_400, holds="a chunk's claim or done mark"),
    KeyFamily("digest_open_runs", "ls:dgopen:*", "per_tenant", holds="per tenant: runs planned and not finished"),
    KeyFamily("digest_last_run", "ls:dglast:*", "per_tenant", holds="per tenant: when each digest last finished a run"),
    KeyFamily("digest_first_seen", "ls:dgfirst:*", "per_tenant", holds="per tenant: when the planner first saw each digest"),
)


# What becomes of each family when Redis loses everything (a wipe), decided here and printed in
# the README (Guarantees): "rebuilt" by `runtime.replay --redis` from the topics (the runbook
# after LeadstreamRedisStateLost), "refilled" by the platform on its own, "transient" (short-
# lived; losing it costs nothing), or "lost" with what that costs.
AFTER_WIPE: dict[str, tuple[str, str]] = {
    "intact": ("rebuilt", "set by the replay when it is done"),
    "lead": ("rebuilt", "leads.events"),
    "optout": ("rebuilt", "lead.unsubscribed / resubscribed"),
    "blocklist": ("refilled", "from the configuration, by the intake's next batch (it finds the set gone) "
                              "and by the replay"),
    "schedule": ("rebuilt", "from each lead's read model"),
    "planlock": ("transient", "a 60 s lock: the next planning pass takes it again"),
    "jobs": ("rebuilt", "the jobs topic (each job's latest event)"),
    "jobs_version": ("rebuilt", "moved by the rebuilt jobs"),
    "feed_status": ("refilled", "each feed's next poll"),
    "feed_lock": ("transient", "the feeds are polled again at once (changes only are produced)"),
    "send_mark": ("rebuilt", "send.dispatched / send.failed of the marks' lifetime: nothing is sent twice"),
    "rate": ("transient", "per-second windows: the next second starts a new one"),
    "tenant_daily_volume": ("rebuilt", "send.dispatched of the last two days (a lower bound: a send "
                                       "taken but failed is not counted again)"),
    "daily_cap": ("rebuilt", "daily alerts dispatched, by the lead's local day"),
    "history": ("rebuilt", "send.dispatched of 90 days, merged with what the workers wrote after the wipe"),
    "sent_jobs": ("rebuilt", "send.dispatched of the resend window"),
    "link_seq": ("refilled", "restarts above every code made before (domain.links.counter_floor)"),
    "lead_segments": ("rebuilt", "the trigger engine's events"),
    "trigger_events": ("rebuilt", "the events the trigger engine reads"),
    "trigger_fired": ("rebuilt", "triggers.events"),
    "trigger_caps": ("rebuilt", "triggers.events, by the lead's local day"),
    "timers": ("rebuilt", "the pending actions of triggers.events"),
    "retry_queue": ("rebuilt", "sends.retry: the latest attempt the sender never acted on"),
    "retry_item": ("rebuilt", "with the retry queue"),
    "timer": ("rebuilt", "with the timers"),
    "segment_refresh": ("transient", "a query segment is refreshed again at once"),
    "test_clock": ("transient", "set by tests only (a test clock), never in production"),
    "segment_members": ("rebuilt", "rule segments from the events; query segments at their next refresh"),
    "link": ("rebuilt", "sends.links (each message's links, acknowledged before it left)"),
    "webhook_first_received": ("rebuilt", "webhook.observation of 7 days: a provider's retry keeps its event id"),
    "provider_message": ("rebuilt", "send.dispatched of 30 days"),
    "engagement": ("rebuilt", "engagement.events (never lowered)"),
    "engagement_seen": ("rebuilt", "engagement.events of 7 days: a redelivered observation counts once"),
    "activity": ("lost", "a message's clicks of the last hour: a click burst across the wipe is "
                         "judged on its part after it"),
    "soft_bounces": ("rebuilt", "webhook.observation soft bounces within each brand's window"),
    "pruned": ("rebuilt", "engagement.unsubscribed(inactive) of the year, leads still out"),
    "source_cap": ("rebuilt", "lead.accepted of the last two days, on every list (a cap may be set since)"),
    "config_claim": ("transient", "a 60 s claim: a write in flight at the wipe is asked again"),
    "session": ("lost", "everyone signed in signs in again"),
    "person_sessions": ("lost", "with the sessions"),
    "sign_in_failures": ("lost", "lockout counts restart (a day's window)"),
    "last_seen": ("rebuilt", "leads.events and people's opens and clicks (agents.hygiene.last_seen_move)"),
    "consent": ("rebuilt", "consent.events and the consent lead.accepted came with (runtime/replay_consent.py)"),
    "consent_withdrawn": ("rebuilt", "with each lead's current consent"),
    "data_keys": ("rebuilt", "the compacted privacy.keys topic (runtime/replay_data_keys.py)"),
    "recommender": ("refilled", "the next training (every 15 minutes) trains from ClickHouse's clicks and the "
                                "live jobs; until then senders find no model, as before a brand's first training"),
    "recommender_training": ("transient", "the next tick trains at once"),
    "last_click": ("lost", "a goal reached before the person's next click is recorded as converted, "
                           "unattributed (the click is in ClickHouse; the mark is not rebuilt)"),
    "crm": ("refilled", "the next poll reads every contact again: the same event ids, each decided once"),
    "crm_lock": ("transient", "the CRM is polled again at once"),
    "crm_due": ("transient", "a webhook's poll request: the next interval's poll reads the change"),
    "crm_fields": ("lost", "the next poll takes every contact's fields as the CRM's latest change, and the next "
                           "write-back of each lead writes all its properties again (same values)"),
    "crm_outbox": ("lost", "leads due at the wipe are written at their next change"),
    "crm_clear": ("rebuilt", "the compacted privacy.crm_emptying topic (runtime/replay_crm_emptying.py): "
                             "every emptying owed and not done yet"),
    "crm_out_lock": ("transient", "the next tick writes"),
    "crm_rate": ("transient", "a new window: at most one window's share more, the CRM's 429s are waited out"),
    "do_not_contact": ("rebuilt", "privacy.erasures (runtime/replay_erasures.py), which the replay reads first"),
    "erased_anonymous": ("rebuilt", "privacy.erasures (each person's first erasure), with the do-not-contact list"),
    "digest_bucket": ("rebuilt", "activity.posted (runtime/replay_digests.py)"),
    "digest_item": ("rebuilt", "with the buckets"),
    "digest_memberships": ("rebuilt", "activity.joined / left"),
    "digest_people": ("rebuilt", "activity.joined / left; last seen from posts, opens, clicks and product events"),
    "digest_zone_of": ("rebuilt", "with the memberships"),
    "digest_zones": ("rebuilt", "with the memberships"),
    "digest_groups": ("rebuilt", "activity.joined"),
    "digest_snapshot": ("lost", "a run of the last catch-up hours is planned again from the members then"),
    "digest_run": ("lost", "such a run is planned again: its digests keep their send ids, which the "
                           "rebuilt send marks hold, so none is sent twice"),
    "digest_chunk": ("lost", "with the runs"),
    "digest_open_runs": ("lost", "runs planned again are opened again; one that is not is no longer watched"),
    "digest_last_run": ("refilled", "each digest counts from the wipe until its next run finishes"),
    "digest_first_seen": ("refilled", "from the wipe: a period due before it is not called missed"),
}


def family_of(key: str) -> KeyFamily | None:
    """The family a key belongs to, or None for a key nobody declared."""
    for f in FAMILIES:
        if fnmatch.fnmatchcase(key, f.pattern):
            return f
    return None
