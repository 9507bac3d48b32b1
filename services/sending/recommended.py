"""The recommendations block of an email alert: the tenant's newest trained model (loaded when
a new version appears), its live jobs as candidates (re-pooled whenever the job store changes,
new jobs folded into the model on their content), and per lead: its declared interests, place
and the jobs it clicked, never a job the alert already shows or sent it lately."""
from __future__ import annotations

import asyncio

from domain.geo import profile_point
from domain.recommend import CandidatePool, LeadProfile, Model, candidate_pool, recommend
from domain.sending import ALERT_KINDS


class Recommender:
    def __init__(self, store, jobs):
        self.store = store  # RecommenderStore: versions, models, leads' clicked jobs
        self.jobs = jobs  # JobSource
        self.models: dict[str, Model] = {}
        self.pools: dict[str, tuple[str, int, CandidatePool, dict]] = {}

    async def fill(self, items: list, excluded: list[set[str]], now_ms: int) -> None:
        """Set item.recommended [(job, why)] on the email alerts of lists that show recommendations."""
        wanted = [(item, ex) for item, ex in zip(items, excluded) if _wants(item)]
        by_tenant: dict[str, list] = {}
        for item, ex in wanted:
            by_tenant.setdefault(item.tenant.id, []).append((item, ex))
        for tenant, group in by_tenant.items():
            found = await self._pool(tenant)
            if found is None:
                continue  # not trained yet: the alert goes without the block
            version, pool, jobs = found
            clicked = await self.store.clicked(tenant, version, [item.state.lead_id for item, _ in group])
            picks = await asyncio.to_thread(_rank_all, pool, group, clicked, now_ms)
            for (item, _), recs in zip(group, picks):
                item.recommended = [(jobs[r.job_key], r.why) for r in recs if r.job_key in jobs]

    async def _pool(self, tenant: str):
        version = await self.store.current(tenant)
        if version is None:
            return None
        model = self.models.get(tenant)
        if model is None or model.version != version:
            self.models.pop(tenant, None)  # one model and one pool per tenant at a time
            self.pools.pop(tenant, None)
            model = await self.store.load(tenant, version)
            if model is None:
                return None
            self.models[tenant] = model
        jobs_version = await self.jobs.version(tenant)
        cached = self.pools.get(tenant)
        if cached and cached[0] == version and cached[1] == jobs_version:
            return version, cached[2], cached[3]
        self.pools.pop(tenant, None)
        jobs = await self.jobs.load(tenant)
        pool = await asyncio.to_thread(candidate_pool, model, jobs.values())
        self.pools[tenant] = (version, jobs_version, pool, jobs)
        return version, pool, jobs


def _wants(item) -> bool:
    req = item.req
    cfg = item.tenant.lists.get(req["list"])
    return (req["channel"] == "email" and req["kind"] in ALERT_KINDS and not req.get("template")
            and cfg is not None and cfg.recommendations > 0)


def _profile(state, clicked: tuple[str, ...]) -> LeadProfile:
    p = state.profile or {}
    return LeadProfile(keywords=tuple(p.get("keywords") or ()), categories=tuple(p.get("categories") or ()),
                       point=profile_point(p), clicked=clicked)


def _rank_all(pool: CandidatePool, group: list, clicked: list, now_ms: int) -> list:
    out = []
    for (item, excluded), lead_clicked in zip(group, clicked):
        k = item.tenant.lists[item.req["list"]].recommendations
        shown = {j.key for j in item.jobs}
        out.append(recommend(pool.model, _profile(item.state, lead_clicked), pool, k=k,
                             exclude=shown | set(excluded), now_ms=now_ms))
    return out
