-- Every configuration change (config.history), one row per event id: who changed which entity,
-- when, from where, and its state before and after (secrets blanked). An entity's state on a
-- given day: argMax(data, version) over the rows at or before that day.
CREATE TABLE IF NOT EXISTS {db}.config_history
(
    event_id     String,
    at           DateTime,
    day          Date,
    entity       String,     -- tenant, list, partner, template, webhook, feed, api_key, person, grant, platform
    entity_key   String,     -- kind:tenant/id or kind:id
    tenant       String,     -- empty for platform-wide entities
    entity_id    String,
    version      UInt64,
    op           String,     -- upserted | deleted
    actor        String,     -- person:EMAIL, key:ID, import:USER, bootstrap
    actor_ip     String,
    user_agent   String,
    source       String,     -- api | import
    data         String,     -- JSON after the change ('' when deleted)
    before       String,     -- JSON before the change ('' when created)
    change       String,     -- JSON [{path, before, after}]
    ingested_at  DateTime
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, entity_key, version, event_id)
