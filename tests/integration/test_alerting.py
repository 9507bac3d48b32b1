"""The alerting that runs, not only the rules on disk: ./dev's Prometheus scrapes every process
(the supervisor publishes its workers by file-based discovery), loads the project's rules, and
an alert that fires goes through Alertmanager to the Slack-compatible stand-in."""
from __future__ import annotations

import time

import httpx
import yaml
from confluent_kafka import Producer

from scaling.client import SupervisorClient
from streams.settings import ROOT
from tests.integration.conftest import wait_for


def prometheus(settings, path: str, **params) -> dict:
    r = httpx.get(f"http://127.0.0.1:{settings.prometheus_port}/api/v1/{path}", params=params, timeout=10)
    r.raise_for_status()
    return r.json()["data"]


def test_prometheus_scrapes_every_process_and_holds_the_projects_rules(settings):
    workers = [w for agent in SupervisorClient(settings.supervisor_port).status()["agents"].values()
               for w in agent["workers"] if w["state"] == "running" and w["metrics_port"]]

    def scraped() -> dict[str, str]:
        return {t["labels"].get("worker") or t["labels"]["job"]: t["health"]
                for t in prometheus(settings, "targets")["activeTargets"]}
    found = wait_for(lambda: (s := scraped()) and all(s.get(w["name"]) == "up" for w in workers)
                     and all(s.get(j) == "up" for j in ("api", "tracking", "supervisor")) and s,
                     60, what="every process scraped and up")
    assert {w["name"] for w in workers} <= set(found) and len(workers) >= 10
    rules = {r["name"] for g in prometheus(settings, "rules")["groups"] for r in g["rules"]}
    on_disk = {r["alert"] for g in yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())["groups"]
               for r in g["rules"] if "alert" in r}
    assert on_disk and rules == on_disk


def test_a_dead_letter_fires_its_alert_through_alertmanager_to_the_slack_stand_in(settings):
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    p.produce(f"{settings.topic_prefix}leads.submitted", b"\x00not an event", b"alerting-test")
    assert p.flush(10) == 0

    def active() -> list[dict]:
        r = httpx.get(f"http://127.0.0.1:{settings.alertmanager_port}/api/v2/alerts", timeout=10)
        return [a for a in r.json() if a["labels"]["alertname"] == "LeadstreamDeadLetters"
                and a["labels"].get("agent") == "intake" and a["status"]["state"] == "active"]
    wait_for(active, 90, what="LeadstreamDeadLetters for intake active in Alertmanager")

    def in_slack() -> list[dict]:
        got = httpx.get(f"{settings.hooks_url}/received/alerts", timeout=10).json()
        return [m for m in got if any(a["title"] == "firing: LeadstreamDeadLetters" and "intake" in a["text"]
                                      for a in (m["body"] or {}).get("attachments", []))]
    [first, *_] = wait_for(in_slack, 60, what="the alert in the Slack stand-in")
    assert first["user_agent"].startswith("Alertmanager/") and first["received_at"] <= time.time()


def test_the_redis_state_gauge_comes_from_the_supervisor_alone_and_says_intact(settings):
    """leadstream_redis_state_intact is exported by the process that checks (the supervisor),
    not as a default 0 by every other process (which kept LeadstreamRedisStateLost firing on
    a healthy platform), and on a healthy platform it is 1 and the alert is quiet."""
    def series():
        return prometheus(settings, "query", query="leadstream_redis_state_intact")["result"]
    found = wait_for(lambda: series(), 60, what="the gauge scraped")
    assert [(r["metric"]["job"], r["value"][1]) for r in found] == [("supervisor", "1")]
    firing = prometheus(settings, "query", query='ALERTS{alertname="LeadstreamRedisStateLost"}')["result"]
    assert firing == []
