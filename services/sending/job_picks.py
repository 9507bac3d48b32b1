"""Which jobs a message shows: the tenant's job index (rebuilt only when its jobs changed),
ranked for the lead, one per distinct job, never one sent to them in the resend window."""
from __future__ import annotations

from dataclasses import dataclass

from domain.geo import profile_point
from domain.jobs import is_new, new_since
from domain.matching import JobIndex, rank
from domain.sending import ALERT_KINDS, needs_jobs, previous_alert_ms
from services.sending.ports import JobSource


@dataclass
class Picked:
    jobs: list
    new_keys: frozenset  # the jobs first seen since the lead's previous alert on the list
    matching: int  # jobs that match at all (new or not): tells no_new_jobs from no_matching_jobs


NOTHING = Picked([], frozenset(), 0)


class JobPicker:
    def __init__(self, source: JobSource):
        self.source = source
        self.indexes: dict[str, tuple[int, JobIndex]] = {}
        self.checked: dict[str, JobIndex] = {}  # this batch's indexes, their versions checked once

    async def for_batch(self, tenants: set[str]) -> None:
        """Check each tenant's job index once for a batch, so that picking does not ask Redis
        for the version once a message (py-spy: ~4 % of the sender, ./dev bench send)."""
        self.checked = {tenant: await self._index(tenant) for tenant in tenants}

    def batch_done(self) -> None:
        self.checked = {}

    async def pick(self, req: dict, tenant, state, exclude: set[str], history: list[dict],
                   now_ms: int) -> Picked:
        """The request's jobs, best match first: for a daily alert only jobs first seen since
        the lead's previous alert on the list; which of them are new."""
        if not needs_jobs(req):
            return NOTHING
        since = new_since(previous_alert_ms(history, req["list"]), now_ms) if req["kind"] in ALERT_KINDS else None
        only_new = since if req["kind"] == "daily" else None
        matches = await self._matches(req, tenant, state, exclude, now_ms, only_new)
        new_keys = frozenset(m.job.key for m in matches if since is not None and is_new(m.first_seen_ms, since))
        matching = len(matches) or (len(await self._matches(req, tenant, state, exclude, now_ms, None, k=1))
                                    if only_new is not None else 0)
        return Picked([m.job for m in matches], new_keys, matching)

    async def _matches(self, req: dict, tenant, state, exclude: set[str], now_ms: int,
                       new_since_ms: int | None = None, k: int | None = None) -> list:
        index = self.checked.get(tenant.id) or await self._index(tenant.id)
        profile = state.profile or {}
        point = profile_point(profile)
        cfg = tenant.lists.get(req["list"])
        if k is None:
            k = cfg.jobs_per_message if cfg else 5
            if req["channel"] == "sms":
                k = min(k, 3)
            if req["kind"] == "welcome":
                k = min(k, 3)  # a welcome shows a few current matches, not a whole alert
        return rank(index, profile.get("keywords") or [], profile.get("categories") or [],
                    point, now_ms, exclude, k=k, new_since_ms=new_since_ms)

    async def _index(self, tenant: str) -> JobIndex:
        version = await self.source.version(tenant)
        cached = self.indexes.get(tenant)
        if cached and cached[0] == version:
            return cached[1]
        self.indexes.pop(tenant, None)  # not kept while the new one is built: one index at a time
        index = JobIndex(tenant)
        for job in (await self.source.load(tenant)).values():
            index.add(job)
        self.indexes[tenant] = (version, index)
        return index
