"""Looking at experiments: count the arms, decide, record the look on the configuration log.

A look reads the arms' tallies (people only, per lead: projections/experiment_results.py),
decides with the carried always-valid p-values (domain.experiments.evaluate) and writes the
entity back with the look, the winner once declared and, with auto_promote, the promotion: a
configuration event like any operator's change, so the log holds every look and the numbers
behind each decision. The agent's timer looks at every running experiment on its interval;
the API looks on request.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from domain.config_changes import Change
from domain.config_entities import Ref, dump
from domain.experiments import ArmTally, Evaluation, ExperimentConfig, evaluate
from domain.tenants import TenantBook

ACTOR = "system:experiments"
Counts = Callable[[str, str], Awaitable[dict[str, ArmTally]]]  # (tenant, experiment) -> tallies
AllCounts = Callable[[str], Awaitable[dict[str, dict[str, ArmTally]]]]  # tenant -> experiment -> tallies


class NoSuchExperiment(LookupError):
    """The tenant has no experiment by that id."""


@dataclass
class ExperimentLooks:
    """The use case; `config` is the configuration service (services/config_changes.py)."""

    book: Callable[[], TenantBook]
    counts: Counts
    config: object
    counts_all: AllCounts | None = None

    def experiment(self, tenant: str, experiment_id: str) -> ExperimentConfig:
        brand = self.book().tenants.get(tenant)
        e = brand.experiments.get(experiment_id) if brand else None
        if e is None:
            raise NoSuchExperiment(f"no experiment {experiment_id!r} in tenant {tenant!r}")
        return e

    async def preview(self, tenant: str, experiment_id: str, now_ms: int) -> Evaluation:
        """The decision if one looked now, recording nothing."""
        e = self.experiment(tenant, experiment_id)
        return evaluate(e, await self.counts(tenant, experiment_id), now_ms)

    async def preview_all(self, tenant: str, now_ms: int) -> list[tuple[str, Evaluation, ExperimentConfig]]:
        """Every experiment of the tenant (by id) with the decision if one looked now, from one
        count of all their arms; (id, evaluation, the experiment as stored)."""
        brand = self.book().tenants.get(tenant)
        if brand is None or not brand.experiments:
            return []
        tallies = await self.counts_all(tenant)
        return [(eid, evaluate(e, tallies.get(eid, {}), now_ms), e) for eid, e in sorted(brand.experiments.items())]

    async def record(self, tenant: str, experiment_id: str, now_ms: int) -> Evaluation:
        """Look now and write the look (and any decision) to the experiment's entity."""
        ref = Ref("experiment", tenant, experiment_id)
        current = self.config.current(ref)
        if current is None or current.data is None:
            raise NoSuchExperiment(f"no experiment {experiment_id!r} in tenant {tenant!r}")
        e = ExperimentConfig.model_validate(current.data)
        evaluation = evaluate(e, await self.counts(tenant, experiment_id), now_ms)
        await self.config.apply([Change("replace", ref, dump(evaluation.data), expected_version=current.version,
                                        actor=ACTOR, source="experiments")])
        return evaluation

    async def record_running(self, now_ms: int, due: Callable[[str, str], Awaitable[bool]],
                             release: Callable[[str, str], Awaitable[None]] | None = None) -> int:
        """Look at every running experiment that `due(tenant, id)` claims (True: this process
        looks now); how many. A look that fails gives its claim back through `release` (the
        next round tries again instead of an interval later) and the others still happen; the
        first failure is raised after them."""
        done, failed = 0, None
        for tenant, brand in self.book().tenants.items():
            for eid, e in sorted(brand.experiments.items()):
                if e.status != "running" or not await due(tenant, eid):
                    continue
                try:
                    await self.record(tenant, eid, now_ms)
                    done += 1
                except Exception as exc:  # noqa: BLE001 - raised below, after the other experiments
                    failed = failed or exc
                    if release is not None:
                        await release(tenant, eid)
        if failed is not None:
            raise failed
        return done
