-- A plain view analysts can query: per tenant and day, how many leads came in and what became of them.
CREATE VIEW IF NOT EXISTS {db}.lead_funnel AS
SELECT
    day, tenant,
    uniqExactMergeIf(events, event_type = 'lead.submitted') AS submitted,
    uniqExactMergeIf(events, event_type = 'lead.accepted') AS accepted,
    uniqExactMergeIf(events, event_type = 'lead.rejected') AS rejected,
    uniqExactMergeIf(events, event_type = 'lead.resubmitted') AS duplicates
FROM {db}.daily_lead_counts
GROUP BY day, tenant
