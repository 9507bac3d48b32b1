"""domain/fleet_view.py: the supervisor's /status in the dashboard's stable shape."""
from __future__ import annotations

from domain.fleet_view import fleet_view

STATUS = {"ticks": 7, "pid": 42, "config_version": 3, "agents": {
    "intake": {"group": "ls-intake", "lag": 120, "partitions": 8, "desired": 2, "running": 1, "paused": False,
               "stalled": False, "error": None, "last_decision": {"direction": "up", "reason": "lag 120"},
               "changes": [{"at": 1.0, "direction": "up", "from": 0, "to": 1, "lag": 0, "reason": "start"},
                           {"at": 2.5, "direction": "up", "from": 1, "to": 2, "lag": 120, "reason": "lag 120"}],
               "workers": [{"name": "worker-intake-0", "pid": 9, "state": "running", "ready": True, "restarts": 0,
                            "last_exit": None, "metrics_port": 18100}],
               "config": {"min_workers": 1, "max_workers": 4, "lag_per_worker": 100, "topics": ["x"]}},
    "hygiene": {"lag": None, "desired": None, "running": 0, "paused": True, "last_decision": None,
                "changes": [], "workers": [], "config": {}}}}


def test_every_agent_in_one_shape_with_its_latest_change_first():
    view = fleet_view(STATUS, 3_000)
    assert view["at"] == "1970-01-01T00:00:03Z" and view["supervisor"] == {"pid": 42, "ticks": 7, "config_version": 3}
    intake, hygiene = view["agents"]
    assert (intake["agent"], intake["lag"], intake["desired"], intake["running"]) == ("intake", 120, 2, 1)
    assert intake["changes"][0] == {"at": "1970-01-01T00:00:02.500000Z", "direction": "up", "from": 1, "to": 2,
                                    "reason": "lag 120", "lag": 120}
    assert "metrics_port" not in intake["workers"][0] and intake["limits"]["max_workers"] == 4
    assert (hygiene["paused"], hygiene["lag"], hygiene["last_decision"], hygiene["workers"]) == (True, None, None, [])
    assert set(hygiene) == set(intake)
