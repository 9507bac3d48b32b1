"""Prometheus and Alertmanager for the local stack (Debian's packages), on loopback.

Prometheus scrapes every process: the API, the tracking front's internal port, the supervisor,
and each worker, which the supervisor publishes as it starts and stops them
(`TARGETS_FILE`, file-based service discovery). It loads the project's alert rules
(deploy/prometheus/alerts.yml) and sends what fires to Alertmanager, which routes every alert
to the Slack-compatible stand-in (the hook receiver's POST /slack/alerts), resolved ones too.
Evaluation is every 5 s here so a drill or a test sees an alert within seconds; the rules'
own `for:` durations are kept.
"""
from __future__ import annotations

import json
from pathlib import Path

from scaling.targets import write_targets
from streams.settings import ROOT, Settings

STACK = ROOT / ".stack"
PROMETHEUS_DIR = STACK / "prometheus"
ALERTMANAGER_DIR = STACK / "alertmanager"
TARGETS_FILE = PROMETHEUS_DIR / "targets" / "workers.json"
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
SLACK_PATH = "/slack/alerts"


def prometheus_prepare(s: Settings) -> None:
    (PROMETHEUS_DIR / "data").mkdir(parents=True, exist_ok=True)
    TARGETS_FILE.parent.mkdir(parents=True, exist_ok=True)
    if not TARGETS_FILE.exists():
        write_targets([], TARGETS_FILE)
    static = {"api": [f"{s.api_host}:{s.api_port}"],
              "tracking": [f"{s.tracking_internal_host}:{s.tracking_internal_port}"],
              "supervisor": [f"{s.supervisor_host}:{s.supervisor_port}"]}
    jobs = [{"job_name": name, "static_configs": [{"targets": targets}]} for name, targets in static.items()]
    jobs.append({"job_name": "workers", "file_sd_configs": [{"files": [str(TARGETS_FILE)], "refresh_interval": "5s"}]})
    config = {"global": {"scrape_interval": "5s", "evaluation_interval": "5s", "scrape_timeout": "4s"},
              "rule_files": [str(RULES)],
              "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{s.alertmanager_port}"]}]}]},
              "scrape_configs": jobs}
    _write_json_as_yaml(PROMETHEUS_DIR / "prometheus.yml", config)


def prometheus_command(s: Settings) -> list[str]:
    return ["prometheus", f"--config.file={PROMETHEUS_DIR / 'prometheus.yml'}",
            f"--storage.tsdb.path={PROMETHEUS_DIR / 'data'}", "--storage.tsdb.retention.time=2d",
            f"--web.listen-address=127.0.0.1:{s.prometheus_port}", "--web.enable-lifecycle", "--log.level=warn"]


def alertmanager_prepare(s: Settings) -> None:
    (ALERTMANAGER_DIR / "data").mkdir(parents=True, exist_ok=True)
    config = {"route": {"receiver": "slack", "group_by": ["alertname", "agent", "store"], "group_wait": "5s",
                        "group_interval": "10s", "repeat_interval": "1h"},
              "receivers": [{"name": "slack", "slack_configs": [{
                  "api_url": s.hooks_url.rstrip("/") + SLACK_PATH, "channel": "#leadstream-alerts",
                  "send_resolved": True, "title": '{{ .Status }}: {{ .CommonLabels.alertname }}',
                  "text": '{{ range .Alerts }}{{ .Annotations.summary }} {{ end }}'}]}]}
    _write_json_as_yaml(ALERTMANAGER_DIR / "alertmanager.yml", config)


def alertmanager_command(s: Settings) -> list[str]:
    return ["prometheus-alertmanager", f"--config.file={ALERTMANAGER_DIR / 'alertmanager.yml'}",
            f"--storage.path={ALERTMANAGER_DIR / 'data'}", f"--web.listen-address=127.0.0.1:{s.alertmanager_port}",
            "--cluster.listen-address=", "--log.level=warn"]


def _write_json_as_yaml(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1))  # JSON is YAML: both read it
