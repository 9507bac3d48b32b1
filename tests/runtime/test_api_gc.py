"""The API process collects garbage as the stream processes do (streams/gc_tuning): with
Python's defaults, gen-0 collections every 700 allocations walked the same survivors while a
batch of 1,000 leads was parsed, and the ingress bench measured 15,647-16,150 leads/s against
24,948-27,321 with the tuning (same session)."""
from __future__ import annotations

import subprocess
import sys

from streams.gc_tuning import THRESHOLDS
from streams.settings import ROOT

PROBE = ("import gc, sys\n"
         "before = gc.get_threshold()\n"
         "from runtime.api import create_app\n"
         "app = create_app()\n"
         "print(before, gc.get_threshold(), gc.get_freeze_count() > 10_000, sep='|')\n"
         "sys.stdout.flush()\n"
         "import os; os._exit(0)\n")


def test_the_api_process_freezes_its_start_up_objects_and_collects_young_garbage_rarely():
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    before, after, frozen = out.stdout.strip().splitlines()[-1].split("|")
    assert before == "(700, 10, 10)"  # Python's defaults, which the process starts with
    assert after == str(THRESHOLDS)
    assert frozen == "True"  # the app, the configuration's readers, the codec: never walked again
