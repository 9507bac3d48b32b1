"""Garbage collection tuned for a long-running stream process.

What a process builds at start (the configuration, compiled templates, the codec's readers,
caches) lives as long as the process: frozen, the collector never walks it again. Young
collections every 50,000 allocations instead of 700: a batch of messages allocates tens of
thousands of short-lived objects, and collecting them every 700 walked the same survivors over
and over. Measured on the send benchmark (one sender worker, 10,000 emails): 507-519 emails/s
with Python's defaults, 546-564 with this (no change on the pipeline benchmark). The API process
(runtime.api) too: parsing a batch of 1,000 leads, 15,647-16,150 leads/s with the defaults,
24,948-27,321 with this (the ingress benchmark, 2026-12-08).
"""
from __future__ import annotations

import gc

THRESHOLDS = (50_000, 50, 1000)


def tune_for_streaming() -> None:
    """Call once, after start-up and before the first message."""
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
