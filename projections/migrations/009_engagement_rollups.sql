-- Opens, clicks (people and machines apart), revenue, complaints and SMS replies as plain
-- sums (the events writer inserts each event once, see 006), per hour or day.
--   engagement.opened / engagement.clicked: actor human | machine (bots and mail privacy
--     proxies), reason why a machine is one; a later revision (a click found to be part of a
--     scanner's burst) moves it from human to machine: -1 and +1. cents: what the clicks pay
--     (cpc), honeypot links never.
--   unique.opened / unique.clicked: messages opened / clicked, counted at their first human
--     (or machine) open or click, from the writer's firsts_* (see 006); without the per-click
--     dimensions (creative, job_source).
--   engagement.complained; engagement.replied with the reply's intent as reason.
-- `provider` is the SMS gateway of a reply or the provider reporting a complaint.
CREATE TABLE IF NOT EXISTS {db}.engagement_hourly
(
    t          DateTime,
    tenant     String,
    partner    String,
    list       String,
    channel    String,
    event      String,
    actor      String,
    reason     String,
    n          Int64,
    cents      Int64
)
ENGINE = SummingMergeTree((n, cents))
PARTITION BY toYYYYMM(t)
ORDER BY (tenant, t, event, actor, partner, list, channel, reason)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.engagement_hourly_mv TO {db}.engagement_hourly AS
SELECT toStartOfHour(occurred_at) AS t,
       tenant,
       partner,
       list,
       channel,
       event_type AS event,
       tupleElement(row, 1) AS actor,
       tupleElement(row, 2) AS reason,
       sum(tupleElement(row, 3)) AS n,
       sum(tupleElement(row, 3) * if(event_type = 'engagement.clicked' AND visitParamExtractString(payload, 'slot') != 'honeypot',
                                     toInt64(visitParamExtractUInt(payload, 'cpc_cents')), toInt64(0))) AS cents
FROM {db}.events
ARRAY JOIN multiIf(
    event_type NOT IN ('engagement.opened', 'engagement.clicked'),
        [('', if(event_type = 'engagement.replied', visitParamExtractString(payload, 'intent'), ''), toInt64(1))],
    visitParamExtractUInt(payload, 'revision') = 0,
        [(if(visitParamExtractBool(payload, 'is_bot'), 'machine', 'human'),
          if(visitParamExtractBool(payload, 'is_bot'), visitParamExtractString(payload, 'reason'), ''), toInt64(1))],
    -- a later revision moves the open or click from one column to the other (human -> machine)
    [(if(visitParamExtractBool(payload, 'is_bot'), 'human', 'machine'), '', toInt64(-1)),
     (if(visitParamExtractBool(payload, 'is_bot'), 'machine', 'human'),
      if(visitParamExtractBool(payload, 'is_bot'), visitParamExtractString(payload, 'reason'), ''), toInt64(1))]) AS row
WHERE event_type IN ('engagement.opened', 'engagement.clicked', 'engagement.complained', 'engagement.replied')
GROUP BY t, tenant, partner, list, channel, event, actor, reason
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.engagement_hourly_firsts_mv TO {db}.engagement_hourly AS
SELECT toStartOfHour(f_at) AS t,
       tenant,
       partner,
       list,
       channel,
       if(event_type = 'engagement.opened', 'unique.opened', 'unique.clicked') AS event,
       f_actor AS actor,
       '' AS reason,
       sum(toInt64(f_delta)) AS n,
       toInt64(0) AS cents
FROM {db}.events
ARRAY JOIN firsts_at AS f_at, firsts_actor AS f_actor, firsts_delta AS f_delta
WHERE event_type IN ('engagement.opened', 'engagement.clicked')
GROUP BY t, tenant, partner, list, channel, event, actor, reason
;
CREATE TABLE IF NOT EXISTS {db}.engagement_daily
(
    day        Date,
    tenant     String,
    partner    String,
    list       String,
    channel    String,
    event      String,
    actor      String,
    reason     String,
    n          Int64,
    cents      Int64
)
ENGINE = SummingMergeTree((n, cents))
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, event, actor, partner, list, channel, reason)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.engagement_daily_mv TO {db}.engagement_daily AS
SELECT toDate(occurred_at) AS day,
       tenant,
       partner,
       list,
       channel,
       event_type AS event,
       tupleElement(row, 1) AS actor,
       tupleElement(row, 2) AS reason,
       sum(tupleElement(row, 3)) AS n,
       sum(tupleElement(row, 3) * if(event_type = 'engagement.clicked' AND visitParamExtractString(payload, 'slot') != 'honeypot',
                                     toInt64(visitParamExtractUInt(payload, 'cpc_cents')), toInt64(0))) AS cents
FROM {db}.events
ARRAY JOIN multiIf(
    event_type NOT IN ('engagement.opened', 'engagement.clicked'),
        [('', if(event_type = 'engagement.replied', visitParamExtractString(payload, 'intent'), ''), toInt64(1))],
    visitParamExtractUInt(payload, 'revision') = 0,
        [(if(visitParamExtractBool(payload, 'is_bot'), 'machine', 'human'),
          if(visitParamExtractBool(payload, 'is_bot'), visitParamExtractString(payload, 'reason'), ''), toInt64(1))],
    -- a later revision moves the open or click from one column to the other (human -> machine)
    [(if(visitParamExtractBool(payload, 'is_bot'), 'human', 'machine'), '', toInt64(-1)),
     (if(visitParamExtractBool(payload, 'is_bot'), 'machine', 'human'),
      if(visitParamExtractBool(payload, 'is_bot'), visitParamExtractString(payload, 'reason'), ''), toInt64(1))]) AS row
WHERE event_type IN ('engagement.opened', 'engagement.clicked', 'engagement.complained', 'engagement.replied')
GROUP BY day, tenant, partner, list, channel, event, actor, reason
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.engagement_daily_firsts_mv TO {db}.engagement_daily AS
SELECT toDate(f_at) AS day,
       tenant,
       partner,
       list,
       channel,
       if(event_type = 'engagement.opened', 'unique.opened', 'unique.clicked') AS event,
       f_actor AS actor,
       '' AS reason,
       sum(toInt64(f_delta)) AS n,
       toInt64(0) AS cents
FROM {db}.events
ARRAY JOIN firsts_at AS f_at, firsts_actor AS f_actor, firsts_delta AS f_delta
WHERE event_type IN ('engagement.opened', 'engagement.clicked')
GROUP BY day, tenant, partner, list, channel, event, actor, reason
;
CREATE TABLE IF NOT EXISTS {db}.engagement_daily_detail
(
    day        Date,
    tenant     String,
    partner    String,
    list       String,
    channel    String,
    template   String,
    creative   String,
    job_source String,
    provider   String,
    variant    String,
    event      String,
    actor      String,
    reason     String,
    n          Int64,
    cents      Int64
)
ENGINE = SummingMergeTree((n, cents))
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, event, actor, partner, list, channel, template, creative, job_source, provider, variant, reason)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.engagement_daily_detail_mv TO {db}.engagement_daily_detail AS
SELECT toDate(occurred_at) AS day,
       tenant,
       partner,
       list,
       channel,
       visitParamExtractString(payload, 'template') AS template,
       visitParamExtractString(payload, 'creative') AS creative,
       visitParamExtractString(payload, 'job_source') AS job_source,
       visitParamExtractString(payload, 'provider') AS provider,
       visitParamExtractString(payload, 'variant') AS variant,
       event_type AS event,
       tupleElement(row, 1) AS actor,
       tupleElement(row, 2) AS reason,
       sum(tupleElement(row, 3)) AS n,
       sum(tupleElement(row, 3) * if(event_type = 'engagement.clicked' AND visitParamExtractString(payload, 'slot') != 'honeypot',
                                     toInt64(visitParamExtractUInt(payload, 'cpc_cents')), toInt64(0))) AS cents
FROM {db}.events
ARRAY JOIN multiIf(
    event_type NOT IN ('engagement.opened', 'engagement.clicked'),
        [('', if(event_type = 'engagement.replied', visitParamExtractString(payload, 'intent'), ''), toInt64(1))],
    visitParamExtractUInt(payload, 'revision') = 0,
        [(if(visitParamExtractBool(payload, 'is_bot'), 'machine', 'human'),
          if(visitParamExtractBool(payload, 'is_bot'), visitParamExtractString(payload, 'reason'), ''), toInt64(1))],
    -- a later revision moves the open or click from one column to the other (human -> machine)
    [(if(visitParamExtractBool(payload, 'is_bot'), 'human', 'machine'), '', toInt64(-1)),
     (if(visitParamExtractBool(payload, 'is_bot'), 'machine', 'human'),
      if(visitParamExtractBool(payload, 'is_bot'), visitParamExtractString(payload, 'reason'), ''), toInt64(1))]) AS row
WHERE event_type IN ('engagement.opened', 'engagement.clicked', 'engagement.complained', 'engagement.replied')
GROUP BY day, tenant, partner, list, channel, template, creative, job_source, provider, variant, event, actor, reason
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.engagement_daily_detail_firsts_mv TO {db}.engagement_daily_detail AS
SELECT toDate(f_at) AS day,
       tenant,
       partner,
       list,
       channel,
       visitParamExtractString(payload, 'template') AS template,
       '' AS creative,
       '' AS job_source,
       '' AS provider,
       visitParamExtractString(payload, 'variant') AS variant,
       if(event_type = 'engagement.opened', 'unique.opened', 'unique.clicked') AS event,
       f_actor AS actor,
       '' AS reason,
       sum(toInt64(f_delta)) AS n,
       toInt64(0) AS cents
FROM {db}.events
ARRAY JOIN firsts_at AS f_at, firsts_actor AS f_actor, firsts_delta AS f_delta
WHERE event_type IN ('engagement.opened', 'engagement.clicked')
GROUP BY day, tenant, partner, list, channel, template, creative, job_source, provider, variant, event, actor, reason
