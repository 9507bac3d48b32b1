"""A bench's Redis DB says it holds the platform's state, as bootstrap says of an empty log, so
its workers make data keys (without the mark they retry forever: the replay bench hung so);
the replay bench's DB to rebuild stays unmarked until the replay marks it."""
from __future__ import annotations

from bench._common import cleanup, isolated_settings, prepare, run_id
from projections.redis_data_keys import DataKeyStore
from tests.redis_db import run_async

LIVE_DB, REBUILT_DB = 38, 39


def test_prepare_marks_the_live_db_intact_and_leaves_a_db_to_rebuild_unmarked():
    rid = run_id()
    live = isolated_settings(f"test{rid}p.", LIVE_DB, f"test{rid}p")
    rebuilt = isolated_settings(f"test{rid}p.", REBUILT_DB, f"test{rid}pr")
    try:
        prepare(live)
        prepare(rebuilt, intact=False)
        assert run_async(LIVE_DB, lambda c: DataKeyStore(c).intact()) is True
        assert run_async(REBUILT_DB, lambda c: DataKeyStore(c).intact()) is False
    finally:
        cleanup(live)
        cleanup(rebuilt)
