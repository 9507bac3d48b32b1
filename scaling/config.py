"""Per-agent scaling configuration (scaling/agents.yaml): one source for every backend."""
from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_FILE = Path(__file__).with_name("agents.yaml")


class AgentScaling(BaseModel):
    """How one agent scales on its consumer group's lag."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent: str
    topics: tuple[str, ...]
    lag_per_worker: int = Field(gt=0)
    activation_lag: int = Field(ge=0)
    min_workers: int = Field(ge=0)
    max_workers: int = Field(ge=1)
    scale_down_window_s: float = Field(ge=0)
    stall_after_s: float = Field(gt=0)

    @model_validator(mode="after")
    def _bounds(self) -> "AgentScaling":
        if self.min_workers > self.max_workers:
            raise ValueError(f"{self.agent}: min_workers {self.min_workers} > max_workers {self.max_workers}")
        if not self.topics:
            raise ValueError(f"{self.agent}: no topics to measure lag on")
        return self

    def group(self, prefix: str = "") -> str:
        """The agent's consumer group (the Faust app id, see streams/app.py)."""
        return f"{prefix}leadstream-{self.agent}"


def parse_scaling(data: dict, source: str = "scaling file") -> dict[str, AgentScaling]:
    """Every agent's scaling, defaults applied; ValueError names the agent and the field."""
    if not isinstance(data, dict) or not isinstance(data.get("agents"), dict):
        raise ValueError(f"{source}: expected a mapping with an 'agents' mapping")
    defaults = data.get("defaults") or {}
    out = {}
    for agent, conf in data["agents"].items():
        try:
            out[agent] = AgentScaling(agent=agent, **{**defaults, **(conf or {})})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: agent {agent!r}: {exc}") from exc
    return out


def load_scaling(path: Path = DEFAULT_FILE) -> dict[str, AgentScaling]:
    """Read and check the scaling file."""
    try:
        with open(path) as fh:
            data = yaml.safe_load(fh)
    except OSError as exc:
        raise ValueError(f"cannot read scaling file {path}: {exc}; set LEADSTREAM_SCALING_FILE") from exc
    return parse_scaling(data, str(path))
