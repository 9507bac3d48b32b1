-- Experiments' exposures in a table of their own, ordered by (tenant, experiment): counting an
-- experiment reads its own leads, not every send of the brand (the events' payloads). One row
-- per send.dispatched / send.skipped naming an experiment; its send id when a message went out
-- (the holdout's skipped sends have none). A row written twice (a redelivery before the events
-- table merged it) is collapsed here too and by the counting's GROUP BY.
CREATE TABLE IF NOT EXISTS {db}.experiment_exposures
(
    tenant       String,
    experiment   String,
    lead_id      String,
    variant      String,      -- experiment/variant, as the send events carry it
    occurred_at  DateTime,
    send_id      String,      -- '' for a held-out (skipped) send
    event_id     String,
    ingested_at  DateTime
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant, experiment, lead_id, event_id)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.experiment_exposures_mv TO {db}.experiment_exposures AS
SELECT tenant, visitParamExtractString(payload, 'experiment') AS experiment, lead_id,
       visitParamExtractString(payload, 'variant') AS variant, occurred_at,
       if(event_type = 'send.dispatched', visitParamExtractString(payload, 'send_id'), '') AS send_id,
       event_id, ingested_at
FROM {db}.events
WHERE event_type IN ('send.dispatched', 'send.skipped') AND visitParamExtractString(payload, 'experiment') != ''
;
-- the exposures written before this migration
INSERT INTO {db}.experiment_exposures
SELECT tenant, visitParamExtractString(payload, 'experiment') AS experiment, lead_id,
       visitParamExtractString(payload, 'variant') AS variant, occurred_at,
       if(event_type = 'send.dispatched', visitParamExtractString(payload, 'send_id'), '') AS send_id,
       event_id, ingested_at
FROM {db}.events
WHERE event_type IN ('send.dispatched', 'send.skipped') AND visitParamExtractString(payload, 'experiment') != ''
