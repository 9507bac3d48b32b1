"""The stream processes' garbage-collection settings."""
from __future__ import annotations

import gc

from streams.gc_tuning import THRESHOLDS, tune_for_streaming


def test_start_up_objects_are_frozen_and_young_collections_are_rarer():
    before = gc.get_threshold()
    try:
        kept = [object() for _ in range(10)]
        tune_for_streaming()
        assert gc.get_threshold() == THRESHOLDS
        assert gc.get_freeze_count() >= len(kept)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
