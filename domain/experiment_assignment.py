"""Which arm of an A/B experiment a lead is in (pure): a consistent hash, never a coin.

A lead's arm is a function of (experiment id, lead id) and the configured weights alone, so it
is the same in every process, on every replay and after a restart. The point in [0, 1) is
the first 8 bytes of sha256(f"{experiment_id}:{lead_id}") read as a big-endian integer over
2**64; Python's hash() is salted per process and must never be used for this. Because the
experiment id is part of the hashed text, two experiments place the same lead independently.

The unit interval is cut in the order given: the holdout first (if its weight is positive),
then each variant in turn, each slice as wide as its share of the total weight.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping

HOLDOUT = "holdout"
_TWO_TO_64 = float(2 ** 64)

VariantWeights = Mapping[str, float] | Iterable[tuple[str, float]]


def hash_point(experiment_id: str, lead_id: str) -> float:
    """The lead's stable point in [0, 1) for this experiment."""
    digest = hashlib.sha256(f"{experiment_id}:{lead_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _TWO_TO_64


def validated_weights(variants_with_weights: VariantWeights,
                      holdout_weight: float = 0.0) -> tuple[tuple[str, float], ...]:
    """The (variant, weight) pairs in order, or ValueError saying what is wrong with them."""
    pairs = tuple(variants_with_weights.items() if isinstance(variants_with_weights, Mapping)
                  else variants_with_weights)
    names = [name for name, _ in pairs]
    if len(pairs) < 2:
        raise ValueError(f"an experiment needs at least two variants, got {names}")
    if any(not isinstance(name, str) or not name for name in names):
        raise ValueError(f"variant names must be non-empty strings, got {names}")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"variant names must be unique, repeated: {', '.join(duplicates)}")
    if HOLDOUT in names:
        raise ValueError(f"'{HOLDOUT}' is reserved for the holdout: rename that variant and use holdout_weight")
    bad = [f"{name}={weight!r}" for name, weight in pairs if not _is_positive_number(weight)]
    if bad:
        raise ValueError(f"variant weights must be positive finite numbers, got {', '.join(bad)}")
    if not (_is_positive_number(holdout_weight) or holdout_weight == 0):
        raise ValueError(f"holdout_weight must be zero or a positive finite number, got {holdout_weight!r}")
    return tuple((name, float(weight)) for name, weight in pairs)


def assign(experiment_id: str, lead_id: str, variants_with_weights: VariantWeights,
           holdout_weight: float = 0.0) -> str:
    """The variant name this lead sees in this experiment, or "holdout"."""
    pairs = validated_weights(variants_with_weights, holdout_weight)
    total = holdout_weight + sum(weight for _, weight in pairs)
    target = hash_point(experiment_id, lead_id) * total
    if target < holdout_weight:
        return HOLDOUT
    edge = float(holdout_weight)
    for name, weight in pairs:
        edge += weight
        if target < edge:
            return name
    return pairs[-1][0]  # only reachable through float rounding at the very top of the interval


def _is_positive_number(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)
