"""The digest run gauges follow the configuration: a digest disabled or deleted stops being
exported (a frozen last-finished value would fire LeadstreamDigestRunMissed a day later)."""
from __future__ import annotations

from prometheus_client import generate_latest

from agents.digests import _forget_unwatched
from streams import metrics


def exported(digest: str) -> bool:
    return f'digest="{digest}"' in generate_latest().decode()


def test_a_digest_no_longer_watched_leaves_both_gauges_and_the_others_stay():
    for d in ("gauge-a", "gauge-b"):
        metrics.DIGEST_RUN_LAST_FINISHED.labels("t", d, "daily").set(1)
        metrics.DIGEST_RUN_UNFINISHED_SECONDS.labels("t", d).set(0)
    _forget_unwatched({("t", "gauge-a", "daily"), ("t", "gauge-b", "daily")})
    _forget_unwatched({("t", "gauge-a", "daily")})  # gauge-b disabled
    assert exported("gauge-a") and not exported("gauge-b")
    metrics.DIGEST_RUN_LAST_FINISHED.labels("t", "gauge-a", "weekly").set(1)
    _forget_unwatched({("t", "gauge-a", "weekly")})  # moved to weekly: the daily series goes, the digest stays
    text = generate_latest().decode()
    assert 'cadence="weekly",digest="gauge-a",tenant="t"' in text  # labels come sorted
    assert 'cadence="daily",digest="gauge-a",tenant="t"' not in text
    _forget_unwatched(set())
    assert not exported("gauge-a")
