"""./dev bench all: each benchmark's JSON judged against the issues' targets, the table."""
from __future__ import annotations

import subprocess
import sys

from bench.all import TARGETS, available, table, verdict
from streams.settings import ROOT


def test_every_target_names_a_benchmark_that_exists():
    assert set(TARGETS) <= set(available())
    assert {"ingress", "pipeline", "send", "tracking", "replay"} <= set(TARGETS)


def test_verdicts_follow_the_targets():
    assert verdict("ingress", {"value": 24_575}) == (">= 20,000 leads/s", "yes")
    assert verdict("ingress", {"value": 16_260})[1] == "no"
    assert verdict("tracking", {"ratio": 0.6, "p99_ms": 7.0})[1] == "no"  # fast enough, too slow at p99
    assert verdict("replay", {"value": 30, "state_equal": False})[1] == "no"
    assert verdict("replay", {"value": 30, "state_equal": True, "exit": 1})[1] == "no"
    assert verdict("send", None)[1] == "failed"
    assert verdict("send", {"unit": "emails/s"})[1] == "no"  # a JSON line without its value
    assert verdict("recommend", {"value": 0.3}) == ("-", "-")


def test_the_table_has_a_row_per_benchmark_with_its_verdict():
    text = table([("ingress", {"value": 24575, "unit": "leads/s", "baseline": 140272, "ratio": 0.175}, 48.0),
                  ("send", None, 3.0)])
    lines = text.splitlines()
    assert lines[0].split() == ["bench", "value", "unit", "baseline", "ratio", "target", "met", "took"]
    assert lines[1].split()[:5] == ["ingress", "24575", "leads/s", "140272", "0.175"] and "yes" in lines[1]
    assert lines[2].split()[0] == "send" and "failed" in lines[2]


def test_an_unknown_benchmark_is_refused_by_name():
    proc = subprocess.run([sys.executable, "-m", "bench.all", "--only", "ingress,nosuch"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "unknown benchmark(s) nosuch" in proc.stderr
