"""deploy/grafana and deploy/prometheus: only metrics the platform exports, valid PromQL,
alerts that fire on what they name (promtool, from Debian's `prometheus` package)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from streams import metrics
from streams.settings import ROOT

DASHBOARD = ROOT / "deploy" / "grafana" / "leadstream.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = Path(__file__).with_name("prometheus_alerts_test.yml")
METRIC = re.compile(r"\bleadstream_[a-z0-9_]+")
SELECTOR = re.compile(r"\b(leadstream_[a-z0-9_]+)\{([^}]*)\}")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
ROWS = {"Queue health", "Throughput", "Latency", "Errors", "Redis", "Digests"}


def exported() -> dict[str, set[str]]:
    """Every series name streams/metrics.py exposes, with its label names."""
    out = {}
    for m in vars(metrics).values():
        if isinstance(m, MetricWrapperBase):
            (family,) = m.describe()
            for suffix in SUFFIXES[family.type]:
                out[family.name + suffix] = set(m._labelnames) | ({"le"} if suffix == "_bucket" else set())
    return out


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict]:
    """The dashboard's panels, rows (containers without queries) left out."""
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def dashboard_exprs() -> list[str]:
    out = [t["expr"] for p in panels() for t in p["targets"]]
    return out + [v["definition"] for v in dashboard()["templating"]["list"] if v.get("definition")]


def rules() -> list[dict]:
    return [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]


def every_expr() -> list[str]:
    return dashboard_exprs() + [r["expr"] for r in rules()]


def promtool() -> str:
    """The promtool binary; a clear failure, not a skip, when it is missing."""
    path = shutil.which("promtool")
    if not path:
        pytest.fail("promtool not found: it comes with Debian's `prometheus` package "
                    "(apt-get install -y --no-install-recommends prometheus)")
    return path


# --- metric names ---

def test_the_catalogue_is_read_with_the_suffixes_prometheus_exposes():
    names = exported()
    assert "leadstream_events_processed_total" in names
    assert {"leadstream_batch_seconds_bucket", "leadstream_batch_seconds_count"} <= names.keys()
    assert "leadstream_batch_seconds" not in names and "leadstream_events_processed" not in names


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_metric_used_exists_in_streams_metrics(source):
    exprs = dashboard_exprs() if source == "dashboard" else [r["expr"] for r in rules()]
    names = exported()
    used = {name for e in exprs for name in METRIC.findall(e)}
    assert used, "no leadstream metric found: the pattern is wrong"
    assert used - names.keys() == set()


def test_every_query_reads_at_least_one_leadstream_metric():
    for e in every_expr():
        assert METRIC.search(e), e


def test_label_matchers_and_groupings_name_labels_the_metrics_have():
    names = exported()
    for e in every_expr():
        for metric, matchers in SELECTOR.findall(e):
            assert set(MATCHER.findall(matchers)) <= names[metric], e
        have = set().union(*(names[m] for m in METRIC.findall(e)))
        for group in GROUPING.findall(e):
            assert {x.strip() for x in group.split(",") if x.strip()} <= have, e


# --- the dashboard ---

def test_dashboard_has_the_rows_and_every_panel_a_datasource_and_a_query():
    d = dashboard()
    assert {p["title"] for p in d["panels"] if p["type"] == "row"} == ROWS
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    assert len(panels()) >= 16
    for p in panels():
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["expr"].strip() and t["refId"], p["title"]
            assert t["datasource"]["uid"] == "${datasource}", p["title"]
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24, p["title"]


def test_dashboard_queries_are_valid_promql(tmp_path):
    # Grafana's variables replaced by values, each query made a recording rule for promtool
    subst = {"$__rate_interval": "5m", "${agent:regex}": ".*", "$agent": ".*"}
    recorded = []
    for i, e in enumerate(dashboard_exprs()):
        for k, v in subst.items():
            e = e.replace(k, v)
        if e.startswith("label_values("):  # a Grafana function, not PromQL: check its metric only
            e = e[len("label_values("):].split(",")[0]
        recorded.append({"record": f"dashboard:query_{i}", "expr": e})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recorded}]}))
    run = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


# --- the alert rules ---

def test_alerts_cover_what_must_wake_someone():
    by_metric = {name: r["alert"] for r in rules() for name in METRIC.findall(r["expr"])}
    for metric in ("leadstream_group_stalled", "leadstream_agent_lag", "leadstream_batch_failures_total",
                   "leadstream_events_dead_lettered_total", "leadstream_redis_memory_bytes",
                   "leadstream_job_last_success_timestamp_seconds", "leadstream_worker_restarts_total",
                   "leadstream_api_requests_total", "leadstream_digest_run_oldest_unfinished_seconds",
                   "leadstream_digest_run_last_finished_timestamp_seconds"):
        assert metric in by_metric, metric
    for r in rules():
        assert r["labels"]["severity"] in ("warning", "critical") and r["annotations"]["summary"]


def test_alert_rules_pass_promtool_check():
    run = subprocess.run([promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"SUCCESS: {len(rules())} rules found" in run.stdout


def test_promtool_check_refuses_a_broken_rule(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n- name: x\n  rules:\n  - alert: X\n    expr: sum by (agent (leadstream_agent_lag)\n")
    run = subprocess.run([promtool(), "check", "rules", str(broken)], capture_output=True, text=True)
    assert run.returncode != 0


def test_each_alert_fires_on_its_situation_and_not_on_a_healthy_one():
    run = subprocess.run([promtool(), "test", "rules", ALERT_TESTS.name], cwd=ALERT_TESTS.parent,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    tested = set(re.findall(r"alertname: (\w+)", ALERT_TESTS.read_text()))
    assert tested == {r["alert"] for r in rules()}
