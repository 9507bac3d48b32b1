"""The topic catalogue: every topic the platform uses, its key, partitions and retention."""
from __future__ import annotations

from dataclasses import dataclass

FOREVER = -1
TOMBSTONES_KEPT_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    holds: str
    retention_ms: int = FOREVER
    compacted: bool = False
    dead_letter: bool = True
    partitions: int | None = None  # None: the platform's default (LEADSTREAM_PARTITIONS)
    # a compacted topic whose replaced and tombstoned records must be gone from the log within
    # this long (an erased lead's data key): segments roll and are compacted by then, and a
    # tombstone itself is kept one day (for consumers that were away), then removed too
    forget_within_ms: int | None = None
    # raw input holding personal data clear (as a partner wrote it, or taken while no data key
    # could be had): its records are deleted as soon as this agent's group has read them
    # (streams/forgetting.py); retention only bounds what was never read
    forgotten_once_read_by: str | None = None

    def config(self) -> dict[str, str]:
        return {"cleanup.policy": "compact" if self.compacted else "delete",
                "retention.ms": str(self.retention_ms),
                "max.message.bytes": "4194304", **self.forgetting()}

    def forgetting(self) -> dict[str, str]:
        """The settings that bound how long a replaced record stays (empty: the broker's)."""
        if self.forget_within_ms is None:
            return {}
        return {"max.compaction.lag.ms": str(self.forget_within_ms), "segment.ms": str(self.forget_within_ms),
                "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": str(TOMBSTONES_KEPT_MS)}


SUBMITTED = "leads.submitted"
LEAD_EVENTS = "leads.events"
INTAKE_JSON = "leads.intake.json"
LEADS_HELD = "leads.held"
JOBS = "jobs.events"
SENDS_PRIORITY = "sends.priority"
SENDS_BULK = "sends.bulk"
SENDS_RETRY = "sends.retry"
SEND_EVENTS = "sends.events"
SEND_LINKS = "sends.links"
ENGAGEMENT_OBSERVED = "engagement.observed"
ENGAGEMENT_EVENTS = "engagement.events"
WEBHOOKS_RAW = "webhooks.raw"
WEBHOOKS_OUT_DEAD = "webhooks.outbound.dead"
PRODUCT_EVENTS = "product.events"
PRODUCT_INTAKE = "product.intake.json"
TRIGGER_EVENTS = "triggers.events"
ACTIVITY_EVENTS = "activity.events"
DIGESTS_PRIORITY = "digests.priority"
DIGESTS_STANDARD = "digests.standard"
DIGEST_EVENTS = "digests.events"
CONSENT_EVENTS = "consent.events"
DATA_KEYS = "privacy.keys"
ERASURES = "privacy.erasures"
CRM_EMPTYING = "privacy.crm_emptying"
MIGRATIONS = "privacy.migrations"
CONFIG = "config.entities"
CONFIG_HISTORY = "config.history"

CATALOGUE = [
    # the control plane: every configuration change, written to both in one transaction; every
    # process keeps the current configuration from the compacted one (one partition: one order)
    TopicSpec(CONFIG, "entity_key", "config.<entity>.upserted / .deleted (Avro): the latest of every entity",
              compacted=True, dead_letter=False, partitions=1),
    TopicSpec(CONFIG_HISTORY, "entity_key", "config.<entity>.upserted / .deleted (Avro): every change, kept forever",
              dead_letter=False, partitions=1),
    TopicSpec(SUBMITTED, "lead_id", "lead.submitted, unsubscribe / resubscribe / preferences_requested (Avro): the intake's input"),
    TopicSpec(LEAD_EVENTS, "lead_id", "lead.accepted / rejected / resubmitted / unsubscribed / preferences_changed (Avro): decided facts"),
    TopicSpec(INTAKE_JSON, "any", "partners' leads as JSON, written straight to Kafka: forgotten once read",
              retention_ms=14 * 24 * 3600 * 1000, forgotten_once_read_by="intake_json"),
    # the leads the API took while no data key could be had (Redis away or rebuilding): clear
    # until the intake_json agent, which waits for Redis, seals them onto leads.submitted
    TopicSpec(LEADS_HELD, "lead_id", "lead.submitted (Avro), personal fields clear: held until sealed, "
                                     "forgotten once read", retention_ms=14 * 24 * 3600 * 1000,
              forgotten_once_read_by="intake_json"),
    TopicSpec(JOBS, "job_key", "job.posted / updated / expired (Avro): the last word on every job",
              compacted=True),
    # urgent and bulk sends travel apart, with their own consumer groups, so a welcome
    # never waits behind a morning's daily alerts
    TopicSpec(SENDS_PRIORITY, "lead_id", "send.requested (Avro) for welcome and triggered messages"),
    TopicSpec(SENDS_BULK, "lead_id", "send.requested (Avro) for the daily alerts"),
    TopicSpec(SENDS_RETRY, "lead_id", "send.requested (Avro) deferred until not_before",
              retention_ms=7 * 24 * 3600 * 1000),
    TopicSpec(SEND_EVENTS, "lead_id", "send.dispatched / failed / deferred / skipped / delivered / bounced (Avro): what happened"),
    # every composed message's tracked links, kept before the message leaves: Redis serves them
    # to the tracking front for 90 days, and a Redis wipe rebuilds them from here
    TopicSpec(SEND_LINKS, "lead_id", "send.links (Avro): the tracked links of one composed message",
              retention_ms=91 * 24 * 3600 * 1000, dead_letter=False),
    # what the tracking front and the provider webhooks saw; the engagement agent decides what it was
    TopicSpec(ENGAGEMENT_OBSERVED, "lead_id", "engagement.hit (tracking front) and webhook.observation (providers), as seen"),
    TopicSpec(ENGAGEMENT_EVENTS, "lead_id", "engagement.opened / clicked / unsubscribed / replied / complained / reactivated (Avro)"),
    # what people did in a brand's product (the API, or the queue path's JSON sealed by the
    # intake_json agent), and what the trigger engine made of it and of the platform's own events
    TopicSpec(PRODUCT_EVENTS, "lead_id", "product.tracked (Avro): events of a brand's product, the trigger engine's input"),
    TopicSpec(PRODUCT_INTAKE, "any", "brands' product events as JSON, written straight to Kafka: forgotten once read",
              retention_ms=14 * 24 * 3600 * 1000, forgotten_once_read_by="intake_json"),
    TopicSpec(TRIGGER_EVENTS, "lead_id", "trigger.scheduled / fired / suppressed / deferred, segment.entered / exited (Avro)"),
    # activity in a brand's communities and feeds, and who follows what: the digests' input
    TopicSpec(ACTIVITY_EVENTS, "group_id (posted) / lead_id (joined, left)",
              "activity.posted / joined / left (Avro): items in groups, and memberships"),
    # a digest run's members in chunks, on two paths with their own consumer groups: members
    # seen lately are digested before the standard backlog
    TopicSpec(DIGESTS_PRIORITY, "run", "digest.chunk_requested (Avro): chunks of the recently active members",
              retention_ms=7 * 24 * 3600 * 1000),
    TopicSpec(DIGESTS_STANDARD, "run", "digest.chunk_requested (Avro): chunks of everyone else",
              retention_ms=7 * 24 * 3600 * 1000),
    TopicSpec(DIGEST_EVENTS, "run", "digest.planned / chunk_done / run_finished (Avro): every run, tracked"),
    # the consent ledger: every consent given or withdrawn (the lead's current consent is its projection)
    TopicSpec(CONSENT_EVENTS, "lead_id", "consent.given / withdrawn (Avro): the consent ledger, kept forever"),
    # each lead's data key, wrapped by the KEK: the personal fields of events are sealed with it,
    # and an erasure is its tombstone (compaction then forgets the key, and every copy of those
    # fields becomes unreadable)
    TopicSpec(DATA_KEYS, "tenant/lead_id", "privacy.data_key (Avro), or a tombstone: erased", compacted=True,
              dead_letter=False, forget_within_ms=3600 * 1000),
    # every erasure: who asked, when, why, the do-not-contact entry; never an address or a name.
    # The replay reads it first, so an erased person is never rebuilt
    TopicSpec(ERASURES, "lead_id", "privacy.subject_erased (Avro): the erasures, kept forever", dead_letter=False),
    # contacts of erased people the brand's CRM did not empty when asked (down, refusing): owed
    # until the crm agent empties them, then a tombstone; Redis' ls:crmclear is its working copy
    TopicSpec(CRM_EMPTYING, "tenant/contact_id", "privacy.crm_emptying_owed (Avro), or a tombstone: emptied",
              compacted=True, dead_letter=False),
    # where a migration of the log stands (runtime/rekey.py): each step once done, and the end
    TopicSpec(MIGRATIONS, "migration[/step]", "a migration's progress and completion (JSON), its id map while it runs",
              compacted=True, dead_letter=False, partitions=1, forget_within_ms=3600 * 1000),
    TopicSpec(WEBHOOKS_RAW, "provider", "webhook.received: every provider webhook's raw request, accepted or not",
              retention_ms=30 * 24 * 3600 * 1000, dead_letter=False),
    TopicSpec(WEBHOOKS_OUT_DEAD, "lead_id", "events a tenant's endpoints refused or never answered, after every retry",
              retention_ms=30 * 24 * 3600 * 1000, dead_letter=False),
]


def dlq(topic: str) -> str:
    """The dead-letter topic of an input topic."""
    return f"{topic}.dlq"


def all_topics() -> list[TopicSpec]:
    """Every topic with its dead-letter topic (kept 30 days)."""
    out = list(CATALOGUE)
    for t in CATALOGUE:
        if t.dead_letter:
            out.append(TopicSpec(dlq(t.name), t.key, f"undecodable or invalid messages of {t.name}",
                                 retention_ms=30 * 24 * 3600 * 1000, dead_letter=False))
    return out


def named(prefix: str, name: str) -> str:
    return f"{prefix}{name}"


def forgotten_once_read(agent: str) -> list[str]:
    """The raw input topics whose records are deleted once this agent's group has read them."""
    return [t.name for t in CATALOGUE if t.forgotten_once_read_by == agent]
