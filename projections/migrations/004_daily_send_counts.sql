-- Sends per day / tenant / list / template / provider / channel / kind / status (event type)
-- / reason, counted over distinct event ids (duplicates and replays count once).
CREATE TABLE IF NOT EXISTS {db}.daily_send_counts
(
    day         Date,
    tenant      String,
    list        String,
    template    String,
    provider    String,
    channel     String,
    kind        String,
    event_type  String,
    reason      String,
    events      AggregateFunction(uniqExact, String),
    sends       AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, event_type, list, template, provider, channel, kind, reason)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.daily_send_counts_mv TO {db}.daily_send_counts AS
SELECT
    event_date AS day, tenant, list,
    visitParamExtractString(payload, 'template') AS template,
    visitParamExtractString(payload, 'provider') AS provider,
    channel,
    visitParamExtractString(payload, 'kind') AS kind,
    event_type,
    visitParamExtractString(payload, 'reason') AS reason,
    uniqExactState(event_id) AS events,
    uniqExactState(visitParamExtractString(payload, 'send_id')) AS sends
FROM {db}.events
WHERE event_type LIKE 'send.%'
GROUP BY day, tenant, list, template, provider, channel, kind, event_type, reason
