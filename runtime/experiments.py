"""Builds the experiment looks for a process: ClickHouse counts, the configuration service."""
from __future__ import annotations

import asyncio

from projections.experiment_results import arm_counts
from services.experiments import ExperimentLooks


def build_experiment_looks(deps) -> ExperimentLooks:
    s = deps.settings

    async def counts(tenant: str, experiment: str):
        def run():
            client = deps.clickhouse()
            try:
                return arm_counts(client, s.clickhouse_database, tenant, experiment)
            finally:
                client.disconnect()
        return await asyncio.to_thread(run)

    return ExperimentLooks(lambda: deps.tenants, counts, deps.config_service)
