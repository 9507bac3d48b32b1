"""The worker fleet, for platform admins: GET /v1/fleet (the supervisor's view of every agent,
in domain/fleet_view.py's shape) and POST /v1/fleet/agents/{agent}/pause | /resume.

The API asks the supervisor's HTTP face (scaling/supervisor.py) with a short timeout; a
supervisor that does not answer is a 503, never a stale or empty fleet.
"""
from __future__ import annotations

import logging
import time
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, ConfigDict, Field

from api.access import Access, rule
from api.errors import ApiError
from domain.fleet_view import agent_view, fleet_view

log = logging.getLogger("leadstream.api")
TIMEOUT_S = 3.0
_ANY_ADDRESS = ("", "0.0.0.0", "::")  # a supervisor bound to every address answers on loopback


class Worker(BaseModel):
    name: str | None
    pid: int | None
    state: str | None = Field(description="running, starting, stopping, restarting or exited")
    ready: bool
    restarts: int
    last_exit: int | None = Field(description="the exit code of its last run")


class Change(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    at: str | None = Field(description="ISO 8601 UTC")
    direction: str | None = Field(description="up or down")
    from_: int | None = Field(alias="from")
    to: int | None
    reason: str | None
    lag: int | None


class Decision(BaseModel):
    direction: str | None = Field(description="up, down or hold")
    reason: str | None


class Limits(BaseModel):
    min_workers: int | None
    max_workers: int | None
    lag_per_worker: int | None


class FleetAgent(BaseModel):
    """One agent: its consumer group's lag and the workers running it."""

    agent: str
    group: str | None
    lag: int | None = Field(description="messages not yet processed (null until first measured)")
    partitions: int | None
    desired: int | None = Field(description="workers the policy asks for (0 while paused; null until decided)")
    running: int
    paused: bool
    stalled: bool = Field(description="lag without progress: more workers would not help")
    error: str | None = Field(description="why the lag is unknown or scaling failed, if so")
    last_decision: Decision | None
    workers: list[Worker]
    changes: list[Change] = Field(description="the latest scaling changes, newest first")
    limits: Limits


class SupervisorInfo(BaseModel):
    pid: int | None
    ticks: int | None
    config_version: int | None


class FleetOut(BaseModel):
    agents: list[FleetAgent]
    at: str = Field(description="when the supervisor was asked, ISO 8601 UTC")
    supervisor: SupervisorInfo


class HoldIn(BaseModel):
    """Optional: why (kept in the API's log with who asked)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=200)


_ERRORS = {404: {"description": "no such agent"},
           503: {"description": "the supervisor is not answering"}}


def fleet_router(deps, access) -> APIRouter:
    """The fleet routes (platform.read / platform.write: platform admins only)."""
    s = deps.settings
    host = "127.0.0.1" if s.supervisor_host in _ANY_ADDRESS else s.supervisor_host
    base = f"http://{host}:{s.supervisor_port}"
    router = APIRouter(tags=["fleet"], responses=_ERRORS)

    @router.get("/v1/fleet", response_model=FleetOut, openapi_extra=rule("platform.read"))
    async def fleet() -> dict:
        """Every agent the supervisor runs: lag, desired and running workers, paused or
        stalled, its workers, the last decision and the latest changes with their reasons."""
        return fleet_view(await _call(base, "GET", "/status"), int(time.time() * 1000))

    @router.post("/v1/fleet/agents/{agent}/pause", response_model=FleetAgent, openapi_extra=rule("platform.write"))
    async def pause(agent: str, body: HoldIn | None = Body(None), who: Access = Depends(access)) -> dict:
        """Hold the agent at zero workers (its lag grows; nothing is lost) until resumed.
        Answers the agent as the supervisor now shows it."""
        return await _hold(base, agent, "pause", body, who)

    @router.post("/v1/fleet/agents/{agent}/resume", response_model=FleetAgent, openapi_extra=rule("platform.write"))
    async def resume(agent: str, body: HoldIn | None = Body(None), who: Access = Depends(access)) -> dict:
        """Let the scaling policy run the agent again. Answers the agent as the supervisor now shows it."""
        return await _hold(base, agent, "resume", body, who)

    return router


async def _hold(base: str, agent: str, action: str, body: HoldIn | None, who: Access) -> dict:
    await _call(base, "POST", f"/agents/{quote(agent, safe='')}/{action}")
    log.info("fleet: %s %s by %s: %s", action, agent, who.actor, body.reason if body else "")
    status = await _call(base, "GET", "/status")
    return agent_view(agent, status["agents"][agent])


async def _call(base: str, method: str, path: str) -> dict:
    """The supervisor's JSON answer; 404 passed on, anything else that is not an answer is 503."""
    try:
        async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT_S) as client:
            r = await client.request(method, path)
    except httpx.HTTPError as exc:
        raise ApiError(503, "unavailable", f"the supervisor at {base} is not answering ({exc.__class__.__name__}: "
                                           f"{exc}); is it running? (./dev status)",
                       headers={"Retry-After": "5"}) from None
    if r.status_code == 404:
        raise ApiError(404, "not_found", _error_of(r) or f"the supervisor knows no {path}")
    if r.status_code != 200:
        raise ApiError(503, "unavailable", f"the supervisor answered {r.status_code} to {method} {path}: "
                                           f"{_error_of(r) or r.text[:200]}")
    return r.json()


def _error_of(r: httpx.Response) -> str:
    try:
        return str(r.json().get("error") or "")
    except ValueError:
        return ""
