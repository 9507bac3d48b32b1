"""The workers as Prometheus scrape targets: the supervisor writes them to a file that
Prometheus's file-based service discovery reads (stack/monitoring.py configures it)."""
from __future__ import annotations

import json
import os
from pathlib import Path


def write_targets(targets: list[dict], path: Path) -> None:
    """[{"targets": ["host:port"], "labels": {...}}], replaced at once (Prometheus never reads
    half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(targets, indent=1, sort_keys=True))
    os.replace(tmp, path)
