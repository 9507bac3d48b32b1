-- The message log's own table: one narrow row per send.* event, ordered by (tenant, send_id),
-- the fields the log shows already taken out of the payload. Reading the log then neither
-- parses JSON nor reads the brand's other events, and one send's rows sit together. Filled by
-- a materialized view from events; the send events written before this migration are copied
-- in. A row written twice (a redelivery before a merge) changes no field the log shows: the
-- log takes the furthest status, the first and last times, and each reason once.
CREATE TABLE IF NOT EXISTS {db}.send_events
(
    tenant       String,
    send_id      String,
    event_type   String,
    at_ms        UInt64,      -- the event's time in ms (the payload's occurred_at)
    lead_id      String,
    channel      String,
    list         String,
    provider     String,
    kind         String,
    trigger_id   String,
    template     String,
    reason       String,
    event_id     String,
    ingested_at  DateTime
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(toDateTime(intDiv(at_ms, 1000)))
ORDER BY (tenant, send_id, event_id)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.send_events_mv TO {db}.send_events AS
SELECT tenant, visitParamExtractString(payload, 'send_id') AS send_id, event_type,
       toUInt64(occurred_at) * 1000
         + toUInt16OrZero(substring(visitParamExtractString(payload, 'occurred_at'), 21, 3)) AS at_ms,
       lead_id, channel, list, visitParamExtractString(payload, 'provider') AS provider,
       visitParamExtractString(payload, 'kind') AS kind, visitParamExtractString(payload, 'trigger') AS trigger_id,
       visitParamExtractString(payload, 'template') AS template,
       visitParamExtractString(payload, 'reason') AS reason, event_id, ingested_at
FROM {db}.events
WHERE event_type IN ('send.requested', 'send.deferred', 'send.skipped', 'send.dispatched', 'send.failed',
                     'send.delivered', 'send.bounced')
;
-- the send events written before this migration
INSERT INTO {db}.send_events
SELECT tenant, visitParamExtractString(payload, 'send_id') AS send_id, event_type,
       toUInt64(occurred_at) * 1000
         + toUInt16OrZero(substring(visitParamExtractString(payload, 'occurred_at'), 21, 3)) AS at_ms,
       lead_id, channel, list, visitParamExtractString(payload, 'provider') AS provider,
       visitParamExtractString(payload, 'kind') AS kind, visitParamExtractString(payload, 'trigger') AS trigger_id,
       visitParamExtractString(payload, 'template') AS template,
       visitParamExtractString(payload, 'reason') AS reason, event_id, ingested_at
FROM {db}.events
WHERE event_type IN ('send.requested', 'send.deferred', 'send.skipped', 'send.dispatched', 'send.failed',
                     'send.delivered', 'send.bounced')
