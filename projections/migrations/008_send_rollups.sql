-- What the senders did, as plain sums (the events writer inserts each event once, see 006),
-- per hour or day. `event` is the event type; `reason`: why a send was skipped, deferred or
-- failed (the code before any ':' detail), the bounce type (hard/soft), 'retry' for a request
-- re-queued after a deferral (its first request has ''). `template` is the template version
-- (content hash), as opens and clicks carry it; `variant` is empty until events carry one.
CREATE TABLE IF NOT EXISTS {db}.send_hourly
(
    t        DateTime,
    tenant   String,
    partner  String,
    list     String,
    channel  String,
    provider String,
    kind     String,
    event    String,
    reason   String,
    n        Int64
)
ENGINE = SummingMergeTree(n)
PARTITION BY toYYYYMM(t)
ORDER BY (tenant, t, event, partner, list, channel, provider, kind, reason)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.send_hourly_mv TO {db}.send_hourly AS
SELECT toStartOfHour(occurred_at) AS t,
       tenant,
       partner,
       list,
       channel,
       visitParamExtractString(payload, 'provider') AS provider,
       visitParamExtractString(payload, 'kind') AS kind,
       event_type AS event,
       multiIf(event_type = 'send.requested', if(visitParamExtractUInt(payload, 'attempt') > 0, 'retry', ''),
               event_type = 'send.bounced', visitParamExtractString(payload, 'bounce_type'),
               event_type IN ('send.failed', 'send.deferred', 'send.skipped'),
               splitByChar(':', visitParamExtractString(payload, 'reason'))[1], '') AS reason,
       toInt64(count()) AS n
FROM {db}.events
WHERE event_type IN ('send.requested', 'send.dispatched', 'send.failed', 'send.deferred', 'send.skipped',
                     'send.delivered', 'send.bounced')
GROUP BY t, tenant, partner, list, channel, provider, kind, event, reason
;
CREATE TABLE IF NOT EXISTS {db}.send_daily
(
    day      Date,
    tenant   String,
    partner  String,
    list     String,
    channel  String,
    provider String,
    kind     String,
    event    String,
    reason   String,
    n        Int64
)
ENGINE = SummingMergeTree(n)
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, event, partner, list, channel, provider, kind, reason)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.send_daily_mv TO {db}.send_daily AS
SELECT toDate(occurred_at) AS day,
       tenant,
       partner,
       list,
       channel,
       visitParamExtractString(payload, 'provider') AS provider,
       visitParamExtractString(payload, 'kind') AS kind,
       event_type AS event,
       multiIf(event_type = 'send.requested', if(visitParamExtractUInt(payload, 'attempt') > 0, 'retry', ''),
               event_type = 'send.bounced', visitParamExtractString(payload, 'bounce_type'),
               event_type IN ('send.failed', 'send.deferred', 'send.skipped'),
               splitByChar(':', visitParamExtractString(payload, 'reason'))[1], '') AS reason,
       toInt64(count()) AS n
FROM {db}.events
WHERE event_type IN ('send.requested', 'send.dispatched', 'send.failed', 'send.deferred', 'send.skipped',
                     'send.delivered', 'send.bounced')
GROUP BY day, tenant, partner, list, channel, provider, kind, event, reason
;
CREATE TABLE IF NOT EXISTS {db}.send_daily_detail
(
    day      Date,
    tenant   String,
    partner  String,
    list     String,
    channel  String,
    provider String,
    template String,
    creative String,
    kind     String,
    variant  String,
    event    String,
    reason   String,
    n        Int64
)
ENGINE = SummingMergeTree(n)
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, event, partner, list, channel, provider, template, creative, kind, variant, reason)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.send_daily_detail_mv TO {db}.send_daily_detail AS
SELECT toDate(occurred_at) AS day,
       tenant,
       partner,
       list,
       channel,
       visitParamExtractString(payload, 'provider') AS provider,
       if(event_type = 'send.dispatched', visitParamExtractString(payload, 'template_version'),
          visitParamExtractString(payload, 'template')) AS template,
       visitParamExtractString(payload, 'creative') AS creative,
       visitParamExtractString(payload, 'kind') AS kind,
       visitParamExtractString(payload, 'variant') AS variant,
       event_type AS event,
       multiIf(event_type = 'send.requested', if(visitParamExtractUInt(payload, 'attempt') > 0, 'retry', ''),
               event_type = 'send.bounced', visitParamExtractString(payload, 'bounce_type'),
               event_type IN ('send.failed', 'send.deferred', 'send.skipped'),
               splitByChar(':', visitParamExtractString(payload, 'reason'))[1], '') AS reason,
       toInt64(count()) AS n
FROM {db}.events
WHERE event_type IN ('send.requested', 'send.dispatched', 'send.failed', 'send.deferred', 'send.skipped',
                     'send.delivered', 'send.bounced')
GROUP BY day, tenant, partner, list, channel, provider, template, creative, kind, variant, event, reason
