"""Builds the experiment looks for a process: ClickHouse counts, the configuration service."""
from __future__ import annotations

from projections.experiment_results import arm_counts
from services.experiments import ExperimentLooks


def build_experiment_looks(deps) -> ExperimentLooks:
    async def counts(tenant: str, experiment: str):
        return await deps.on_clickhouse(arm_counts, deps.settings.clickhouse_database, tenant, experiment)

    return ExperimentLooks(lambda: deps.tenants, counts, deps.config_service)
