"""Training the tenants' recommenders: the scheduled job behind the recommendations block.

For each brand with a list that shows recommendations: its live jobs (the job store) and the
people's job clicks of the last WINDOW_DAYS (ClickHouse) train a new model (domain.recommend),
saved as a new version with each clicker's clicked jobs (projections/redis_recommender.py);
senders load the newest version on their next batch. A job that arrives after the training is
folded into the model by the sender (its content is enough), so it is recommendable as soon as
its feed stores it.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from domain.recommend import Click, Model, train
from domain.tenants import TenantBook

WINDOW_DAYS = 90
DAY_MS = 86_400_000


def wants_recommendations(tenant) -> bool:
    return any(cfg.recommendations > 0 for cfg in tenant.lists.values())


def clicked_by_lead(clicks: list[Click]) -> dict[str, list[str]]:
    """Each lead's clicked job keys, newest first, each once."""
    out: dict[str, list[str]] = {}
    for lead, job, _ in sorted(clicks, key=lambda c: -c[2]):
        keys = out.setdefault(lead, [])
        if job not in keys:
            keys.append(job)
    return out


@dataclass
class RecommenderTraining:
    """The use case. `jobs` is a JobSource, `clicks(tenant, since_ms)` the click log, `store`
    a RecommenderStore."""

    book: Callable[[], TenantBook]
    jobs: object
    clicks: Callable[[str, int], Awaitable[list[Click]]]
    store: object

    async def train(self, tenant: str, now_ms: int) -> Model:
        """Train, save and announce a new version of the tenant's model."""
        jobs = list((await self.jobs.load(tenant)).values())
        log = await self.clicks(tenant, now_ms - WINDOW_DAYS * DAY_MS)
        model = await asyncio.to_thread(train, jobs, log, now_ms, f"v{now_ms}")
        await self.store.save(tenant, model, clicked_by_lead(log))
        return model

    async def train_due(self, now_ms: int, due: Callable[[str], Awaitable[bool]]) -> int:
        """Train every brand that shows recommendations and that `due(tenant)` claims; how many."""
        done = 0
        for tenant_id, tenant in sorted(self.book().tenants.items()):
            if wants_recommendations(tenant) and await due(tenant_id):
                await self.train(tenant_id, now_ms)
                done += 1
        return done
