"""An experiment's results, per arm and from people only, and its looks:

GET  /v1/tenants/{tenant}/experiments/{id}/results   the arms and the decision if one looked now
GET  /v1/tenants/{tenant}/experiment-results         the same for every experiment of the tenant
                                                     (one count of all their arms: the dashboard)
POST /v1/tenants/{tenant}/experiments/{id}/looks     look now and record it (the carried
                                                     p-values, the winner once declared)

The experiment itself is managed like any entity: /v1/tenants/{tenant}/experiments (api/manage.py);
its `state` holds the recorded looks and the decision. Counting: projections/experiment_results.py;
statistics: domain/experiment_stats.py; the use case: services/experiments.py.
"""
from __future__ import annotations

import asyncio
import logging
import time

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field

from api.access import rule
from api.clickhouse_reads import read, reads_pool
from api.entities import refusals_as_api_errors
from api.errors import ApiError
from domain.experiments import REPORTED, Evaluation, ExperimentState
from projections.experiment_results import QUERIES, assemble, count_query
from services.experiments import ExperimentLooks, NoSuchExperiment


log = logging.getLogger("leadstream.experiments")


class LookIn(BaseModel):
    """Optional: why this look now (kept in the API's log)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=200)


class ArmOut(BaseModel):
    variant: str = Field(description="the variant's name, or holdout (leads that were sent nothing)")
    leads: int = Field(description="leads exposed: sent one of its messages (the holdout: held out)")
    sent: int = Field(description="of them, leads sent at least one message")
    counts: dict[str, int] = Field(description="leads that did it, people only: open (a person's open or click), "
                                               "click, unsubscribe (after the first exposure), complaint; "
                                               "click_to_open: the clickers among the openers; conversion: leads "
                                               "that reached a goal after their first exposure (the holdout too)")
    rates: dict[str, float | None] = Field(description="each count over the leads (click_to_open: over the "
                                                       "openers); null when the denominator is 0")
    always_valid_p: float | None = Field(description="the sequential test's p-value against the control, carried "
                                                     "across looks (null for the control and the holdout)")
    corrected_p: float | None = Field(description="always_valid_p corrected for the number of treatments")
    relative_lift: float | None = Field(description="the decision metric's rate over the control's, minus 1")
    lift_interval: list[float | None] | None = Field(description="always-valid interval of the absolute difference "
                                                              "(null ends: no variance yet)")


class ResultsOut(BaseModel):
    experiment: str
    status: str
    metric: str = Field(description="what the decision is made on")
    control: str
    promoted: str | None = Field(description="the variant every lead gets now, if one was promoted")
    arms: list[ArmOut]
    winner: str | None = Field(description="the winner at this look, or null")
    reason: str = Field(description="why: collecting (too few leads), no winner yet (p), sample ratio mismatch, "
                                    "or the winner with its lift and p")
    chi_squared_p: float = Field(description="the fixed-horizon chi-squared p-value, for reference only: it is not "
                                             "valid when looked at repeatedly, and decides nothing")
    srm_p: float = Field(description="sample-ratio check of the arms' leads against the weights")
    srm_flagged: bool = Field(description="true when srm_p < 0.001: the assignment is broken, nothing is decided")
    recorded: dict = Field(description="the experiment's stored state: the recorded looks (this one too after a "
                                       "POST .../looks; a GET records nothing) and the decision")


def results_of(experiment_id: str, ev: Evaluation, recorded: ExperimentState) -> dict:
    """The response for one evaluation; `recorded` is the experiment's state as stored."""
    d, e = ev.decision, ev.data
    tested = {a.variant: a for a in d.arms}
    arms = []
    for name in [v.name for v in e.variants] + (["holdout"] if e.holdout else []):
        t = ev.tallies.get(name)
        counts = {"open": t.opened, "click": t.clicked, "click_to_open": t.clicked, "unsubscribe": t.unsubscribed,
                  "complaint": t.complained, "conversion": t.converted} if t else {m: 0 for m in REPORTED}
        rates = {}
        for m in REPORTED:
            done, out_of = t.successes(m) if t else (0, 0)
            rates[m] = round(done / out_of, 6) if out_of else None
        a = tested.get(name)
        treatment = a is not None and name != d.control
        arms.append({"variant": name, "leads": t.leads if t else 0, "sent": t.sent if t else 0, "counts": counts,
                     "rates": rates, "always_valid_p": _num(a.always_valid_p) if treatment else None,
                     "corrected_p": _num(a.corrected_p) if treatment else None,
                     "relative_lift": _num(a.relative_lift) if treatment else None,
                     "lift_interval": [_num(x) for x in a.lift_interval] if treatment else None})
    return {"experiment": experiment_id, "status": e.status, "metric": e.metric, "control": d.control,
            "promoted": e.promoted, "arms": arms, "winner": d.winner, "reason": d.reason,
            "chi_squared_p": _num(d.chi_squared_p, 1.0), "srm_p": _num(d.srm_p, 1.0), "srm_flagged": d.srm_flagged,
            "recorded": recorded.model_dump(mode="json")}


def _num(x: float, default: float | None = None) -> float | None:
    return default if x != x or x in (float("inf"), float("-inf")) else round(float(x), 6)


def experiments_router(deps) -> APIRouter:
    pool = reads_pool(deps, size=len(QUERIES))
    router = APIRouter(tags=["experiments"])

    async def counted(tenant: str, experiment: str | None):
        """The counting queries at once, each on a pooled connection (a page waits for the slowest)."""
        db = deps.settings.clickhouse_database
        rows = await asyncio.gather(*(read(pool, lambda c, q: c.execute(*q), count_query(db, tenant, experiment, n))
                                      for n in QUERIES))
        return assemble(dict(zip(QUERIES, rows)))

    async def counts(tenant: str, experiment: str):
        return (await counted(tenant, experiment)).get(experiment, {})

    async def counts_all(tenant: str):
        return await counted(tenant, None)

    looks = ExperimentLooks(lambda: deps.tenants, counts, deps.config_service, counts_all)

    @router.get("/v1/tenants/{tenant}/experiment-results", response_model=list[ResultsOut],
                openapi_extra=rule("config.read", "path"))
    async def all_experiment_results(tenant: str) -> list[dict]:
        """Every experiment of the brand, by id, with its results as .../experiments/{id}/results
        answers them (counted together: one read of all their arms)."""
        if tenant not in deps.tenants.tenants:
            raise ApiError(404, "not_found", f"no tenant {tenant!r}")
        previews = await looks.preview_all(tenant, int(time.time() * 1000))
        return [results_of(eid, ev, stored.state) for eid, ev, stored in previews]

    @router.get("/v1/tenants/{tenant}/experiments/{experiment}/results", response_model=ResultsOut,
                openapi_extra=rule("config.read", "path"))
    async def experiment_results(tenant: str, experiment: str) -> dict:
        """Per arm: leads, people's opens, clicks, click-to-open, unsubscribes, complaints; the
        sequential p-values, the sample-ratio check and the winner if one looked now."""
        try:
            ev = await looks.preview(tenant, experiment, int(time.time() * 1000))
            return results_of(experiment, ev, looks.experiment(tenant, experiment).state)  # the preview is not kept
        except NoSuchExperiment as exc:
            raise ApiError(404, "not_found", str(exc)) from None

    @router.post("/v1/tenants/{tenant}/experiments/{experiment}/looks", response_model=ResultsOut,
                 openapi_extra=rule("config.write", "path"))
    async def experiment_look(tenant: str, experiment: str, body: LookIn | None = Body(None)) -> dict:
        """Look now and record it on the experiment (its carried p-values; the winner once the
        corrected always-valid p is below alpha; the promotion with auto_promote)."""
        log.info("a look at experiment %s/%s asked for%s", tenant, experiment,
                 f": {body.reason}" if body and body.reason else "")
        try:
            # a refusal: someone changed the experiment at the same instant (look again)
            with refusals_as_api_errors("the look was not recorded"):
                ev = await looks.record(tenant, experiment, int(time.time() * 1000))
            return results_of(experiment, ev, ev.data.state)
        except NoSuchExperiment as exc:
            raise ApiError(404, "not_found", str(exc)) from None

    return router
