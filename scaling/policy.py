"""The scaling policy: from a consumer group's lag to a number of workers. Pure.

desired = clamp(ceil(lag / lag_per_worker), min_workers, min(max_workers, partitions)),
the formula of KEDA's Kafka scaler. Up at once; down to the highest recommendation of the
last `scale_down_window_s` (as the Kubernetes HPA stabilises), so a dip in the lag does not
remove workers that the next poll would add again. Below `activation_lag` an agent whose
minimum is zero rests at zero. A group whose committed offsets do not move while it has lag
and workers is stalled: adding workers would not help, so the count holds and an alert is
raised. Every decision says why.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from scaling.config import AgentScaling


@dataclass(frozen=True)
class Observation:
    """One measurement of an agent's group, with the time it was taken (seconds)."""

    now: float
    lag: int
    committed: int  # sum of committed offsets: moves while the group makes progress
    partitions: int
    running: int


@dataclass(frozen=True)
class PolicyState:
    """What the policy remembers between observations."""

    desired: int | None = None
    # (time, recommendation) within the scale-down window, oldest first
    history: tuple[tuple[float, int], ...] = ()
    last_committed: int | None = None
    progress_at: float | None = None
    stalled: bool = False


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
    stalled = (obs.lag > 0 and obs.running > 0
               and obs.now - progress_at >= conf.stall_after_s)
    rec = recommend(conf, obs.lag, obs.partitions)
    window_start = obs.now - conf.scale_down_window_s
    history = tuple(h for h in state.history if h[0] >= window_start) + ((obs.now, rec),)
    if stalled:
        desired = previous
        reason = (f"stalled: lag {obs.lag} and committed offsets unchanged for "
                  f"{obs.now - progress_at:.0f}s; holding {previous} workers")
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
                 f"no committed progress for {obs.now - progress_at:.0f}s")
    new_state = replace(state, desired=desired, history=history, last_committed=obs.committed,
                        progress_at=progress_at, stalled=stalled)
    return Decision(conf.agent, desired, previous, obs.lag, reason, stalled, alert), new_state


def _progress_at(obs: Observation, state: PolicyState) -> float:
    """When the group last made progress (or had nothing to do)."""
    if state.progress_at is None or obs.committed != state.last_committed or obs.lag == 0:
        return obs.now
    if obs.running == 0:
        return obs.now  # nobody consuming is not a stall: the policy will start workers
    return state.progress_at
