"""Builds the recommender training for a process: the job store, ClickHouse's click log, the
model store in Redis."""
from __future__ import annotations

from projections.recommender_clicks import click_log
from projections.redis_jobs import JobStore
from projections.redis_recommender import RecommenderStore
from services.recommendations import RecommenderTraining


def build_recommender_training(deps) -> RecommenderTraining:
    async def clicks(tenant: str, since_ms: int):
        return await deps.on_clickhouse(click_log, deps.settings.clickhouse_database, tenant, since_ms)

    return RecommenderTraining(lambda: deps.tenants, JobStore(deps.redis), clicks, RecommenderStore(deps.redis))
