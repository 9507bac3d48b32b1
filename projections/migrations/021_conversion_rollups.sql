-- Conversions (engagement.converted) in the engagement rollups: one row each, its reason
-- attributed or unattributed, its cents the revenue the brand reported with the goal.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.engagement_hourly_conversions_mv TO {db}.engagement_hourly AS
SELECT toStartOfHour(occurred_at) AS t, tenant, partner, list, channel, event_type AS event, '' AS actor,
       visitParamExtractString(payload, 'reason') AS reason, toInt64(count()) AS n,
       toInt64(sum(visitParamExtractUInt(payload, 'revenue_cents'))) AS cents
FROM {db}.events
WHERE event_type = 'engagement.converted'
GROUP BY t, tenant, partner, list, channel, event, actor, reason
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.engagement_daily_conversions_mv TO {db}.engagement_daily AS
SELECT toDate(occurred_at) AS day, tenant, partner, list, channel, event_type AS event, '' AS actor,
       visitParamExtractString(payload, 'reason') AS reason, toInt64(count()) AS n,
       toInt64(sum(visitParamExtractUInt(payload, 'revenue_cents'))) AS cents
FROM {db}.events
WHERE event_type = 'engagement.converted'
GROUP BY day, tenant, partner, list, channel, event, actor, reason
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.engagement_daily_detail_conversions_mv TO {db}.engagement_daily_detail AS
SELECT toDate(occurred_at) AS day, tenant, partner, list, channel,
       visitParamExtractString(payload, 'template') AS template,
       visitParamExtractString(payload, 'creative') AS creative,
       '' AS job_source, '' AS provider,
       visitParamExtractString(payload, 'variant') AS variant,
       event_type AS event, '' AS actor,
       visitParamExtractString(payload, 'reason') AS reason, toInt64(count()) AS n,
       toInt64(sum(visitParamExtractUInt(payload, 'revenue_cents'))) AS cents
FROM {db}.events
WHERE event_type = 'engagement.converted'
GROUP BY day, tenant, partner, list, channel, template, creative, job_source, provider, variant, event, actor, reason
;
