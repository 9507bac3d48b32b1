"""The worker fleet as the dashboard shows it: the supervisor's GET /status (scaling/
supervisor.py) in one stable shape, one entry per agent in the supervisor's order. Pure: the
caller fetches the status and passes the time it asked."""
from __future__ import annotations

from domain.product_events import utc_iso


def fleet_view(status: dict, at_ms: int) -> dict:
    """{agents: [...], at, supervisor: {pid, ticks, config_version}}."""
    agents = status.get("agents") or {}
    return {"agents": [agent_view(name, doc) for name, doc in agents.items()], "at": utc_iso(at_ms),
            "supervisor": {"pid": status.get("pid"), "ticks": status.get("ticks"),
                           "config_version": status.get("config_version")}}


def agent_view(name: str, doc: dict) -> dict:
    """One agent: lag, desired and running workers, paused, the last decision, recent changes."""
    config = doc.get("config") or {}
    last = doc.get("last_decision") or None
    return {"agent": name, "group": doc.get("group"), "lag": doc.get("lag"), "partitions": doc.get("partitions"),
            "desired": doc.get("desired"), "running": int(doc.get("running") or 0),
            "paused": bool(doc.get("paused")), "stalled": bool(doc.get("stalled")), "error": doc.get("error"),
            "last_decision": {"direction": last.get("direction"), "reason": last.get("reason")} if last else None,
            "workers": [_worker(w) for w in doc.get("workers") or []],
            "changes": [_change(c) for c in reversed(doc.get("changes") or [])],
            "limits": {"min_workers": config.get("min_workers"), "max_workers": config.get("max_workers"),
                       "lag_per_worker": config.get("lag_per_worker")}}


def _worker(w: dict) -> dict:
    return {"name": w.get("name"), "pid": w.get("pid"), "state": w.get("state"), "ready": bool(w.get("ready")),
            "restarts": int(w.get("restarts") or 0), "last_exit": w.get("last_exit")}


def _change(c: dict) -> dict:
    """A scaling change, newest first in the list; `at` from the supervisor's epoch seconds."""
    at = c.get("at")
    return {"at": utc_iso(int(at * 1000)) if at is not None else None, "direction": c.get("direction"),
            "from": c.get("from"), "to": c.get("to"), "reason": c.get("reason"), "lag": c.get("lag")}
