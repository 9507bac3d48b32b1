"""The short fault drill (./dev chaos --minutes 2) passes its invariants on the real stack.

Faults: workers SIGKILLed, the API and the tracking front SIGKILLed, Redis restarted, Redis
wiped (and rebuilt by the replay once its alert came), ClickHouse down 45 s, the Kafka broker
stopped and started, the mail relay throttling then slow while the fallback provider throttles,
under leads through the API and the queue path and tracking hits on the drill's own welcome
emails. It runs after the main
suite (./dev test), since it takes every service down once.
"""
from __future__ import annotations

import json
import subprocess
import sys

from stack.__main__ import child_env
from streams.settings import ROOT


def test_the_short_drill_keeps_every_invariant_and_raises_the_alerts_it_should():
    out = subprocess.run([sys.executable, "-m", "stack.chaos", "--minutes", "2", "--seed", "7", "--rate", "20",
                          "--resolve-wait", "240"], cwd=ROOT, env=child_env(), capture_output=True, text=True)
    lines = [ln for ln in out.stdout.splitlines() if not ln.startswith("%")]
    report = json.loads(lines[-1])
    shown = "\n".join(lines[-40:]) + "\n" + out.stderr[-3000:]
    assert out.returncode == 0 and report["violations"] == 0, shown
    kinds = [f["kind"] for f in report["faults_seen"]]
    assert {"kill_worker", "kill_api", "kill_tracking", "redis", "redis_wipe", "clickhouse", "kafka",
            "provider"} <= set(kinds), shown
    assert report["leads_answered"] > 1000 and report["hits_answered"] > 100, shown
    for name in ("LeadstreamStoreDown", "LeadstreamRedisStateLost"):
        rows = [a for a in report["alerts"] if a["alert"] == name]
        assert rows and rows[0]["fired_s"] is not None and rows[0]["resolved_s"] > rows[0]["fired_s"], (name, shown)
