-- Daily counts per tenant / partner / list / event type / outcome / reason. The state is
-- uniqExact over event ids, so an event inserted twice is still counted once.
CREATE TABLE IF NOT EXISTS {db}.daily_lead_counts
(
    day         Date,
    tenant      String,
    partner     String,
    list        String,
    event_type  String,
    outcome     String,
    reason      String,
    events      AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, event_type, partner, list, outcome, reason)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.daily_lead_counts_mv TO {db}.daily_lead_counts AS
SELECT
    event_date AS day, tenant, partner, list, event_type, outcome,
    arrayJoin(if(empty(reasons), [''], reasons)) AS reason,
    uniqExactState(event_id) AS events
FROM {db}.events
WHERE event_type LIKE 'lead.%'
GROUP BY day, tenant, partner, list, event_type, outcome, reason
