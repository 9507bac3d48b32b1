-- What became of the leads, as plain sums (the events writer inserts each event once, see
-- 006), per hour or day and the dimensions the analytics API groups and filters by. One
-- row per event: `event` is its type and `reason` the outcome (duplicates) or the reason
-- (unsubscribes); a rejection adds one row per reason under 'lead.rejected_reason'.
-- Read by domain/analytics.py, which picks the smallest table holding what a query needs.
CREATE TABLE IF NOT EXISTS {db}.lead_hourly
(
    t        DateTime,
    tenant   String,
    partner  String,
    list     String,
    channel  String,
    event    String,
    reason   String,
    n        Int64
)
ENGINE = SummingMergeTree(n)
PARTITION BY toYYYYMM(t)
ORDER BY (tenant, t, event, partner, list, channel, reason)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.lead_hourly_mv TO {db}.lead_hourly AS
SELECT toStartOfHour(occurred_at) AS t, tenant, partner, list, channel,
       tupleElement(what, 1) AS event, tupleElement(what, 2) AS reason, toInt64(count()) AS n
FROM {db}.events
ARRAY JOIN arrayConcat(
    [(event_type, multiIf(event_type = 'lead.resubmitted', outcome,
                          event_type = 'lead.unsubscribed', visitParamExtractString(payload, 'reason'), ''))],
    arrayMap(r -> ('lead.rejected_reason', r), if(event_type = 'lead.rejected', reasons, emptyArrayString()))) AS what
WHERE event_type IN ('lead.submitted', 'lead.accepted', 'lead.rejected', 'lead.resubmitted', 'lead.unsubscribed')
GROUP BY t, tenant, partner, list, channel, event, reason
;
CREATE TABLE IF NOT EXISTS {db}.lead_daily
(
    day      Date,
    tenant   String,
    partner  String,
    list     String,
    channel  String,
    event    String,
    reason   String,
    n        Int64
)
ENGINE = SummingMergeTree(n)
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, event, partner, list, channel, reason)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.lead_daily_mv TO {db}.lead_daily AS
SELECT toDate(occurred_at) AS day, tenant, partner, list, channel,
       tupleElement(what, 1) AS event, tupleElement(what, 2) AS reason, toInt64(count()) AS n
FROM {db}.events
ARRAY JOIN arrayConcat(
    [(event_type, multiIf(event_type = 'lead.resubmitted', outcome,
                          event_type = 'lead.unsubscribed', visitParamExtractString(payload, 'reason'), ''))],
    arrayMap(r -> ('lead.rejected_reason', r), if(event_type = 'lead.rejected', reasons, emptyArrayString()))) AS what
WHERE event_type IN ('lead.submitted', 'lead.accepted', 'lead.rejected', 'lead.resubmitted', 'lead.unsubscribed')
GROUP BY day, tenant, partner, list, channel, event, reason
;
-- The detail: SMS carrier (as `provider`), country (the location's, else the phone's region),
-- state, experiment variant (empty until events carry one).
CREATE TABLE IF NOT EXISTS {db}.lead_daily_detail
(
    day       Date,
    tenant    String,
    partner   String,
    list      String,
    channel   String,
    provider  String,
    country   String,
    state     String,
    variant   String,
    event     String,
    reason    String,
    n         Int64
)
ENGINE = SummingMergeTree(n)
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, event, partner, list, channel, country, state, provider, variant, reason)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.lead_daily_detail_mv TO {db}.lead_daily_detail AS
SELECT toDate(occurred_at) AS day, tenant, partner, list, channel,
       visitParamExtractString(payload, 'carrier') AS provider,
       if(visitParamExtractString(visitParamExtractRaw(payload, 'location'), 'country') != '',
          visitParamExtractString(visitParamExtractRaw(payload, 'location'), 'country'),
          visitParamExtractString(payload, 'region')) AS country,
       visitParamExtractString(visitParamExtractRaw(payload, 'location'), 'state') AS state,
       visitParamExtractString(payload, 'variant') AS variant,
       tupleElement(what, 1) AS event, tupleElement(what, 2) AS reason, toInt64(count()) AS n
FROM {db}.events
ARRAY JOIN arrayConcat(
    [(event_type, multiIf(event_type = 'lead.resubmitted', outcome,
                          event_type = 'lead.unsubscribed', visitParamExtractString(payload, 'reason'), ''))],
    arrayMap(r -> ('lead.rejected_reason', r), if(event_type = 'lead.rejected', reasons, emptyArrayString()))) AS what
WHERE event_type IN ('lead.submitted', 'lead.accepted', 'lead.rejected', 'lead.resubmitted', 'lead.unsubscribed')
GROUP BY day, tenant, partner, list, channel, provider, country, state, variant, event, reason
;
-- Submitted and accepted leads per keyword and per category of their interests (a lead with
-- three keywords counts once under each, a keyword given twice once; '' for a lead with none).
CREATE TABLE IF NOT EXISTS {db}.lead_daily_keyword
(
    day      Date,
    tenant   String,
    partner  String,
    list     String,
    channel  String,
    keyword  String,
    event    String,
    n        Int64
)
ENGINE = SummingMergeTree(n)
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, event, keyword, partner, list, channel)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.lead_daily_keyword_mv TO {db}.lead_daily_keyword AS
SELECT toDate(occurred_at) AS day, tenant, partner, list, channel, keyword, event_type AS event,
       toInt64(count()) AS n
FROM {db}.events
ARRAY JOIN if(empty(extractAll(visitParamExtractRaw(payload, 'keywords'), '"((?:[^"\\\\]|\\\\.)*)"')), [''],
              arrayDistinct(extractAll(visitParamExtractRaw(payload, 'keywords'), '"((?:[^"\\\\]|\\\\.)*)"'))) AS keyword
WHERE event_type IN ('lead.submitted', 'lead.accepted')
GROUP BY day, tenant, partner, list, channel, keyword, event
;
CREATE TABLE IF NOT EXISTS {db}.lead_daily_category
(
    day       Date,
    tenant    String,
    partner   String,
    list      String,
    channel   String,
    category  String,
    event     String,
    n         Int64
)
ENGINE = SummingMergeTree(n)
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, event, category, partner, list, channel)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.lead_daily_category_mv TO {db}.lead_daily_category AS
SELECT toDate(occurred_at) AS day, tenant, partner, list, channel, category, event_type AS event,
       toInt64(count()) AS n
FROM {db}.events
ARRAY JOIN if(empty(extractAll(visitParamExtractRaw(payload, 'categories'), '"((?:[^"\\\\]|\\\\.)*)"')), [''],
              arrayDistinct(extractAll(visitParamExtractRaw(payload, 'categories'), '"((?:[^"\\\\]|\\\\.)*)"'))) AS category
WHERE event_type IN ('lead.submitted', 'lead.accepted')
GROUP BY day, tenant, partner, list, channel, category, event
