-- Exact counts without counting distinct ids at query time. The events writer
-- (projections/clickhouse.py) looks each batch's event keys up in event_keys and inserts only
-- the events ClickHouse does not hold yet, so every materialized view below sees each event
-- (and each later revision of one) exactly once and can keep plain sums. A batch re-sent after
-- a crash between the insert and the offset commit, a redelivery or a replay inserts nothing.
--
-- event_key: the event id, or "event_id#revision" for a later revision of an open or click.
-- firsts_*: set by the writer on one open or click row of a message when the first human (or
-- machine) open / click of that message changes: -1 at the old first's time, +1 at the new
-- one's (projections/engagement_firsts.py). Summed, they count the messages opened or clicked.
ALTER TABLE {db}.events
    ADD COLUMN event_key String DEFAULT event_id,
    ADD COLUMN firsts_at Array(DateTime),
    ADD COLUMN firsts_actor Array(String),
    ADD COLUMN firsts_delta Array(Int8)
;
CREATE TABLE IF NOT EXISTS {db}.event_keys
(
    event_key   String,
    event_date  Date
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_date)
ORDER BY event_key
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.event_keys_mv TO {db}.event_keys AS
SELECT event_key, event_date FROM {db}.events
;
-- Every open and click per message, in its latest revision (read by the writer to decide the
-- firsts; rows of one message are found by send_id through the primary key).
CREATE TABLE IF NOT EXISTS {db}.send_engagement
(
    send_id     String,
    kind        String,      -- open | click
    event_id    String,
    revision    UInt32,
    at_ms       UInt64,      -- occurred_at, to the second (as the rollups' buckets)
    machine     UInt8,
    event_date  Date
)
ENGINE = ReplacingMergeTree(revision)
PARTITION BY toYYYYMM(event_date)
ORDER BY (send_id, kind, event_id)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.send_engagement_mv TO {db}.send_engagement AS
SELECT
    visitParamExtractString(payload, 'send_id') AS send_id,
    if(event_type = 'engagement.opened', 'open', 'click') AS kind,
    event_id,
    toUInt32(visitParamExtractUInt(payload, 'revision')) AS revision,
    toUInt64(occurred_at) * 1000 AS at_ms,
    toUInt8(visitParamExtractBool(payload, 'is_bot')) AS machine,
    event_date
FROM {db}.events
WHERE event_type IN ('engagement.opened', 'engagement.clicked') AND visitParamExtractString(payload, 'send_id') != ''
