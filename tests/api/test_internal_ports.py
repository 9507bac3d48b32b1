"""What people reach and what only operators reach: the tracking front's /metrics and /stats
answer on its internal port only; on the public port (where clicks come) they are 404."""
from __future__ import annotations

import httpx


def test_the_tracking_fronts_metrics_and_stats_are_on_the_internal_port_only(settings):
    public = f"http://{settings.tracking_host}:{settings.tracking_port}"
    internal = f"http://{settings.tracking_internal_host}:{settings.tracking_internal_port}"
    assert settings.tracking_internal_port != settings.tracking_port
    for path in ("/metrics", "/stats"):
        assert httpx.get(public + path, timeout=10).status_code == 404
    assert httpx.delete(public + "/stats", timeout=10).status_code == 404  # nobody outside resets the timings
    assert "leadstream_tracking" in httpx.get(internal + "/metrics", timeout=10).text
    assert httpx.get(internal + "/stats", timeout=10).status_code == 200
    assert httpx.get(public + "/healthz", timeout=10).text == "ok"  # health stays public for load balancers
