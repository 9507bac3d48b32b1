-- Every event of every topic, one row per event id. Duplicates (redelivery, replay)
-- collapse on merge; read with FINAL (or uniqExact(event_id)) for exact counts.
CREATE TABLE IF NOT EXISTS {db}.events
(
    event_id      String,
    event_type    String,
    event_date    Date,       -- from the event id's ULID time: identical on every redelivery
    occurred_at   DateTime,
    tenant        String,
    lead_id       String,
    causation_id  String,
    source        String,
    channel       String,
    partner       String,
    list          String,
    status        String,
    outcome       String,
    reasons       Array(String),
    payload       String,     -- the whole event as JSON, for ad-hoc analysis
    topic         String,
    partition     UInt16,
    offset        UInt64,
    ingested_at   DateTime
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(event_date)
ORDER BY (tenant, event_type, event_id)
