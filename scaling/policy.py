"""The scaling policy: from a consumer group's lag to a number of workers. Pure.

desired = clamp(ceil(lag / lag_per_worker), min_workers, min(max_workers, partitions)),
the formula of KEDA's Kafka scaler. Up at once; down to the highest recommendation of the
last `scale_down_window_s` (as the Kubernetes HPA stabilises), so a dip in the lag does not
remove workers that the next poll would add again. Below `activation_lag` an agent whose
minimum is zero rests at zero. A group whose committed offsets do not move while it has lag
and workers is stalled: adding workers would not help, so the count holds and an alert is
raised. So is one with a partition that has lag and whose committed offset has not moved for
`stall_after_s` while others do (a worker that never fetches a partition it was given: Faust
issue #629 after rebalances); a stalled group's workers are restarted, once when the stall is
seen and again every RESTART_EVERY stall periods while it lasts (a stall a downstream outage
causes is not cured by it, and a restart then costs one redelivered batch). Every decision
says why.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from scaling.config import AgentScaling

RESTART_EVERY = 3  # stall periods between two restarts of a group that stays stalled


@dataclass(frozen=True)
class Observation:
    """One measurement of an agent's group, with the time it was taken (seconds)."""

    now: float
    lag: int
    committed: int  # sum of committed offsets: moves while the group makes progress
    partitions: int
    running: int
    # (topic/partition, committed offset, lag) of each partition, to see one left behind
    by_partition: tuple[tuple[str, int, int], ...] = ()


@dataclass(frozen=True)
class PolicyState:
    """What the policy remembers between observations."""

    desired: int | None = None
    # (time, recommendation) within the scale-down window, oldest first
    history: tuple[tuple[float, int], ...] = ()
    last_committed: int | None = None
    progress_at: float | None = None
    stalled: bool = False
    # topic/partition -> (committed offset, when it last moved or had nothing to do)
    partition_progress: dict = field(default_factory=dict)
    restarted_at: float | None = None


@dataclass(frozen=True)
class Decision:
    """The worker count to run, the one before, and the reason."""

    agent: str
    desired: int
    previous: int
    lag: int
    reason: str
    stalled: bool = False
    alert: str | None = None
    extra: dict = field(default_factory=dict)
    stuck: tuple[str, ...] = ()  # partitions with lag and no committed progress
    restart: bool = False  # restart the agent's workers now

    @property
    def direction(self) -> str:
        """up, down or hold."""
        if self.desired > self.previous:
            return "up"
        return "down" if self.desired < self.previous else "hold"


def recommend(conf: AgentScaling, lag: int, partitions: int) -> int:
    """The worker count this lag asks for, within the agent's bounds."""
    cap = max(min(conf.max_workers, partitions), conf.min_workers)
    if lag < max(conf.activation_lag, 1):
        raw = 0
    else:
        raw = math.ceil(lag / conf.lag_per_worker)
    return max(conf.min_workers, min(raw, cap))


def decide(conf: AgentScaling, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]:
    """The decision for this observation and the state to keep for the next one."""
    previous = state.desired if state.desired is not None else obs.running
    progress_at = _progress_at(obs, state)
    moved = _partition_progress(obs, state)
    stuck = tuple(sorted(k for k, lag in ((k, lag) for k, _, lag in obs.by_partition)
                         if lag > 0 and obs.running > 0 and obs.now - moved[k][1] >= conf.stall_after_s))
    stalled = bool(stuck) or (obs.lag > 0 and obs.running > 0
                              and obs.now - progress_at >= conf.stall_after_s)
    rec = recommend(conf, obs.lag, obs.partitions)
    window_start = obs.now - conf.scale_down_window_s
    history = tuple(h for h in state.history if h[0] >= window_start) + ((obs.now, rec),)
    if stalled:
        desired = previous
        reason = (f"stalled: lag {obs.lag} and committed offsets unchanged for "
                  f"{obs.now - progress_at:.0f}s; holding {previous} workers") if not stuck else (
            f"stalled: {len(stuck)} partition(s) with lag and no committed progress for {conf.stall_after_s:.0f}s "
            f"({', '.join(stuck[:4])}{'...' if len(stuck) > 4 else ''}); holding {previous} workers")
    elif state.desired is None:
        desired = rec
        reason = f"start: lag {obs.lag} asks for {rec} (lag/worker {conf.lag_per_worker})"
    elif rec > previous:
        desired = rec
        reason = f"lag {obs.lag} > {previous} x {conf.lag_per_worker}: up to {rec} at once"
    elif rec < previous:
        desired = max(r for _, r in history)
        reason = (f"lag {obs.lag} asks for {rec}; highest in the last "
                  f"{conf.scale_down_window_s:.0f}s is {desired}")
    else:
        desired = previous
        reason = f"lag {obs.lag} fits {previous} workers"
    if desired != previous:
        # the new count is itself a recommendation: a later scale-down waits a window from now
        history = tuple(h for h in history if h[0] < obs.now) + ((obs.now, desired),)
    alert = None
    if stalled and not state.stalled:
        alert = (f"{conf.agent}: consumer group stalled, lag {obs.lag}, "
                 + (f"no committed progress for {obs.now - progress_at:.0f}s" if not stuck else
                    f"partition(s) {', '.join(stuck[:4])} without committed progress for {conf.stall_after_s:.0f}s"))
    restart = stalled and (state.restarted_at is None or not state.stalled
                           or obs.now - state.restarted_at >= RESTART_EVERY * conf.stall_after_s)
    new_state = replace(state, desired=desired, history=history, last_committed=obs.committed,
                        progress_at=progress_at, stalled=stalled, partition_progress=moved,
                        restarted_at=obs.now if restart else state.restarted_at)
    return Decision(conf.agent, desired, previous, obs.lag, reason, stalled, alert, stuck=stuck,
                    restart=restart), new_state


def _partition_progress(obs: Observation, state: PolicyState) -> dict:
    """Each partition's committed offset and when it last moved (or had nothing to do, or
    nobody consumed the group)."""
    out = {}
    for key, committed, lag in obs.by_partition:
        before = state.partition_progress.get(key)
        fresh = before is None or before[0] != committed or lag == 0 or obs.running == 0
        out[key] = (committed, obs.now if fresh else before[1])
    return out


def _progress_at(obs: Observation, state: PolicyState) -> float:
    """When the group last made progress (or had nothing to do)."""
    if state.progress_at is None or obs.committed != state.last_committed or obs.lag == 0:
        return obs.now
    if obs.running == 0:
        return obs.now  # nobody consuming is not a stall: the policy will start workers
    return state.progress_at
