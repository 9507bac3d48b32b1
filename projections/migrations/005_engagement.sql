-- Opens and clicks, one row per event id and its latest revision (a click found later to be
-- part of a scanner's burst is revised to a bot under the same event id). Read with FINAL.
-- Humans and machines are kept side by side: is_bot/actor/reason say which and why.
CREATE TABLE IF NOT EXISTS {db}.engagement
(
    event_id     String,
    revision     UInt32,
    event_type   String,      -- engagement.opened | engagement.clicked
    day          Date,
    occurred_at  DateTime,
    tenant       String,
    lead_id      String,
    channel      String,
    send_id      String,
    list         String,
    template     String,
    campaign     String,
    creative     String,
    slot         String,
    code         String,
    job_key      String,
    job_source   String,
    position     UInt16,
    cpc_cents    UInt32,
    actor        String,      -- human | bot | proxy (a mail privacy proxy: a machine open)
    is_bot       UInt8,
    reason       String,
    via          String,      -- tracking (our front) or the provider that reported it
    user_agent   String,
    ip           String
)
ENGINE = ReplacingMergeTree(revision)
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, event_type, event_id)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.engagement_mv TO {db}.engagement AS
SELECT
    event_id,
    toUInt32(visitParamExtractUInt(payload, 'revision')) AS revision,
    event_type,
    event_date AS day,
    occurred_at, tenant, lead_id, channel,
    visitParamExtractString(payload, 'send_id') AS send_id,
    list,
    visitParamExtractString(payload, 'template') AS template,
    visitParamExtractString(payload, 'campaign') AS campaign,
    visitParamExtractString(payload, 'creative') AS creative,
    visitParamExtractString(payload, 'slot') AS slot,
    visitParamExtractString(payload, 'code') AS code,
    visitParamExtractString(payload, 'job_key') AS job_key,
    visitParamExtractString(payload, 'job_source') AS job_source,
    toUInt16(visitParamExtractUInt(payload, 'position')) AS position,
    toUInt32(visitParamExtractUInt(payload, 'cpc_cents')) AS cpc_cents,
    visitParamExtractString(payload, 'actor') AS actor,
    toUInt8(visitParamExtractBool(payload, 'is_bot')) AS is_bot,
    visitParamExtractString(payload, 'reason') AS reason,
    visitParamExtractString(payload, 'via') AS via,
    visitParamExtractString(payload, 'user_agent') AS user_agent,
    visitParamExtractString(payload, 'ip') AS ip
FROM {db}.events
WHERE event_type IN ('engagement.opened', 'engagement.clicked')
