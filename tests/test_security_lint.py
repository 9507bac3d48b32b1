"""bandit (a static security linter) over every source folder: no finding of medium or high
severity except those accepted below, each with the reason it is safe. A new finding fails
until it is fixed or accepted here with its reason; an accepted one that is gone fails too,
so this list never keeps a stale excuse.

pip-audit (known vulnerabilities of the pinned packages) cannot run here: it asks PyPI's JSON
API, which this machine's package access does not serve ("Dependency not found on PyPI and
could not be audited" for every package); see the README's Guarantees."""
from __future__ import annotations

import json
import subprocess
import sys

from streams.settings import ROOT

FOLDERS = ["domain", "schemas", "streams", "projections", "channels", "services", "agents", "api", "scaling",
           "runtime", "stack", "bench"]

# where ClickHouse SQL is built as text: only identifiers we own go in (the database name from
# the settings, checked to be an identifier; tables and columns from code; metric events and
# dimensions from the fixed catalogue), every value a caller sends goes as a %(name)s parameter
SQL_BUILT = "SQL text from our own identifiers; every caller's value is a driver parameter"
ACCEPTED: dict[tuple[str, str], str] = {
    **{("B608", path): SQL_BUILT for path in (
        "api/audit.py", "domain/analytics.py", "projections/clickhouse.py", "projections/clickhouse_erasure.py", "projections/event_history.py",
        "projections/experiment_results.py", "projections/revenue.py", "projections/send_log.py",
        "projections/trigger_stats.py", "stack/demo.py", "stack/engagement_demo.py", "stack/morning.py",
        "stack/recommendations_demo.py", "stack/consent_demo.py", "stack/digests_demo.py", "stack/standins/partner_reports.py", "stack/triggers_demo.py", "stack/chaos_checks.py",
        "bench/_analytics_baseline.py", "bench/_analytics_history.py", "bench/export.py", "bench/analytics.py", "bench/pipeline.py",
        "bench/replay.py")},
    ("B104", "api/fleet.py"): "not a bind: recognises a supervisor bound to every address, to reach it on loopback",
    ("B104", "scaling/supervisor.py"): "not a bind: workers bound to every address are published for scraping "
                                       "on loopback",
    ("B104", "scaling/manifests.py"): "a container's metrics port inside its pod (Kubernetes), scraped by the cluster",
    ("B324", "channels/webhooks_in/vonage.py"): "Vonage's own 'md5hash' signature method, for accounts set to it; "
                                                "sha256 is the default",
    ("B310", "scaling/client.py"): "the supervisor's http URL from the settings, never a caller's",
    ("B310", "stack/services.py"): "./dev's health checks of its own loopback services",
    ("B108", "stack/services.py"): "ClickHouse's own tmp folder inside .stack/, not the system's /tmp",
    ("B108", "bench/_bare_smtp.py"): "mkdtemp under /dev/shm (a fresh private folder, mode 700) for the "
                                      "send bench's sink to keep mail in memory",
}


def _findings() -> set[tuple[str, str]]:
    done = subprocess.run([sys.executable, "-m", "bandit", "-q", "-r", *FOLDERS, "-ll", "-f", "json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert not report["errors"], report["errors"]
    return {(r["test_id"], r["filename"].removeprefix("./")) for r in report["results"]}


def test_every_medium_or_high_security_finding_is_fixed_or_accepted_with_a_reason():
    found = _findings()
    new = sorted(found - set(ACCEPTED))
    assert not new, "fix these or accept them in ACCEPTED with the reason they are safe: " + ", ".join(
        f"{path} {test}" for test, path in new)
    stale = sorted(set(ACCEPTED) - found)
    assert not stale, "accepted but no longer found (drop them): " + ", ".join(f"{p} {t}" for t, p in stale)
    assert all(len(reason) > 20 for reason in ACCEPTED.values())
