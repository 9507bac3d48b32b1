"""Every Prometheus metric the platform exports, in one catalogue.

Workers, the API and the supervisor each serve /metrics; the names here are what
deploy/grafana and deploy/prometheus refer to. Labels stay low-cardinality: agent, group,
topic, partition, key family, never a tenant's lead.
"""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 4000, 8000)
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

# --- agents (worker processes) ---
EVENTS_PROCESSED = Counter("leadstream_events_processed_total", "Input messages an agent finished", ["agent"])
EVENTS_DEAD_LETTERED = Counter("leadstream_events_dead_lettered_total",
                               "Input messages sent to a dead-letter topic", ["agent"])
BATCH_FAILURES = Counter("leadstream_batch_failures_total",
                         "Batch attempts that failed transiently and were retried", ["agent"])
BATCH_SIZE = Histogram("leadstream_batch_size", "Messages per agent batch", ["agent"], buckets=BATCH_BUCKETS)
BATCH_SECONDS = Histogram("leadstream_batch_seconds", "Time to process one batch, effects durable",
                          ["agent"], buckets=SECONDS_BUCKETS)
END_TO_END_SECONDS = Histogram("leadstream_end_to_end_seconds",
                               "Event time to effect durable (projected or decided)", ["agent"],
                               buckets=SECONDS_BUCKETS)
TRIGGER_OUTCOMES = Counter("leadstream_trigger_outcomes_total",
                           "What the trigger engine did: trigger.fired, .scheduled, .deferred, suppressed:REASON, "
                           "segment.entered / exited, not_matched", ["outcome"])
DIGEST_OUTCOMES = Counter("leadstream_digest_outcomes_total",
                          "What the digest pipeline did: runs_planned, runs_finished, members, requested, "
                          "nothing_new, members_left_out, chunks_skipped", ["outcome"])
DIGEST_LATENESS_SECONDS = Histogram("leadstream_digest_lateness_seconds",
                                    "A chunk's digests requested, against the members' local send time", ["path"],
                                    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200))
DIGEST_RUN_LAST_FINISHED = Gauge("leadstream_digest_run_last_finished_timestamp_seconds",
                                 "When a digest's last run finished (or the digest was first seen): a run missed",
                                 ["tenant", "digest", "cadence"])
DIGEST_RUN_UNFINISHED_SECONDS = Gauge("leadstream_digest_run_oldest_unfinished_seconds",
                                      "Age (past its send time) of the oldest digest run planned but not finished",
                                      ["tenant", "digest"])
CLICKHOUSE_INSERT_SECONDS = Histogram("leadstream_clickhouse_insert_seconds", "One columnar insert",
                                      ["table"], buckets=SECONDS_BUCKETS)
CLICKHOUSE_ROWS = Counter("leadstream_clickhouse_rows_total", "Rows inserted into ClickHouse", ["table"])

# --- the supervisor (scaling) ---
CONSUMER_LAG = Gauge("leadstream_consumer_lag", "End offset minus committed offset",
                     ["group", "topic", "partition"])
AGENT_LAG = Gauge("leadstream_agent_lag", "Lag of an agent's consumer group, summed", ["agent"])
WORKERS_DESIRED = Gauge("leadstream_workers_desired", "Workers the policy asks for", ["agent"])
WORKERS_RUNNING = Gauge("leadstream_workers_running", "Worker processes alive", ["agent"])
SCALING_DECISIONS = Counter("leadstream_scaling_decisions_total", "Changes of the worker count",
                            ["agent", "direction"])
WORKER_RESTARTS = Counter("leadstream_worker_restarts_total", "Crashed workers restarted", ["agent"])
GROUP_STALLED = Gauge("leadstream_group_stalled", "1 while a group, or one of its partitions, has lag but its "
                      "committed offsets do not move", ["agent"])
STALL_RESTARTS = Counter("leadstream_stall_restarts_total", "Restarts of a stalled group's workers", ["agent"])
JOB_LAST_SUCCESS = Gauge("leadstream_job_last_success_timestamp_seconds",
                         "When a periodic job last completed", ["task"])
STORE_UP = Gauge("leadstream_store_up", "1 when the supervisor reached the store at its last check, else 0",
                 ["store"])
# labelled, so that only the process that checks (the supervisor) exports it: an unlabelled
# gauge would read 0 from every other process
REDIS_INTACT = Gauge("leadstream_redis_state_intact",
                     "1 when Redis holds the platform's state (its ls:intact mark), 0 when it answers without it",
                     ["redis"])
REDIS_MEMORY = Gauge("leadstream_redis_memory_bytes", "Redis used_memory", ["redis"])
REDIS_KEYS = Gauge("leadstream_redis_keys", "Redis keys per key family", ["family"])

# --- the configuration every process holds ---
CONFIG_VERSION = Gauge("leadstream_config_version", "Position of the configuration this process applied")
CONFIG_APPLY_SECONDS = Histogram("leadstream_config_apply_seconds",
                                 "From a configuration change being made to this process applying it",
                                 buckets=SECONDS_BUCKETS)
CONFIG_ERRORS = Counter("leadstream_config_errors_total", "Configuration events this process could not apply")

# --- the API ---
API_REQUESTS = Counter("leadstream_api_requests_total", "Requests answered", ["route", "status"])
SIGN_INS = Counter("leadstream_sign_ins_total", "Sign-in attempts by outcome", ["outcome"])
LEADS_REFUSED = Counter("leadstream_leads_refused_total",
                        "Leads of erased people refused before anything was written (do-not-contact)",
                        ["tenant", "path"])
PRODUCT_EVENTS_REFUSED = Counter("leadstream_queue_product_events_refused_total",
                                 "Product events from the queue path never written (an erased person's)",
                                 ["tenant", "reason"])
ERASED_LEFT_OUT = Counter("leadstream_erased_events_left_out_total",
                          "Observations about erased people (a click on an old message, a late bounce) left "
                          "undecided: kept on their topic, nothing written about them", ["agent"])
LEADS_UNCHECKED = Counter("leadstream_api_leads_dnc_unchecked_total",
                          "Leads the API took without asking the do-not-contact list (Redis away; the intake asks)",
                          ["tenant"])
API_LEADS = Counter("leadstream_api_leads_total", "Leads accepted for processing (202)", ["tenant"])
LEADS_HELD = Counter("leadstream_api_leads_held_total",
                     "Leads the API held clear on leads.held (Redis away or not rebuilt: no data key to seal "
                     "them with) until the intake_json agent sealed them onto leads.submitted", ["tenant"])


def expose_agent(agent: str) -> None:
    """An agent's counters exist at 0 from its start, so an alert on their increase sees the
    first dead letter or failure (a series that appears at 1 shows no increase)."""
    for counter in (EVENTS_PROCESSED, EVENTS_DEAD_LETTERED, BATCH_FAILURES):
        counter.labels(agent)


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Serve /metrics of this process on host:port (port 0: don't)."""
    if port:
        start_http_server(port, addr=host)
