"""Consistent-hash assignment of leads to experiment arms: stable, balanced, independent."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from domain.experiment_assignment import HOLDOUT, assign, hash_point, validated_weights
from domain.experiment_stats import chi_squared, sample_ratio_mismatch

LEADS = [f"lead-{i}" for i in range(100_000)]


def assigned_counts(experiment_id: str, weights: dict[str, float], holdout_weight: float = 0.0) -> Counter:
    return Counter(assign(experiment_id, lead, weights, holdout_weight) for lead in LEADS)


def test_the_same_lead_gets_the_same_arm_every_time():
    first = [assign("exp-welcome", lead, {"A": 1, "B": 1}) for lead in LEADS[:1000]]
    again = [assign("exp-welcome", lead, {"A": 1, "B": 1}) for lead in LEADS[:1000]]
    assert first == again


@pytest.mark.parametrize("lead, point, even, seventy_thirty, with_holdout, three_way", [
    ("lead-1", 0.6233339733530362, "B", "A", "B", "C"),
    ("lead-2", 0.9949486130284905, "B", "B", "B", "B"),
    ("lead-3", 0.05003037489778193, "A", "A", HOLDOUT, "C"),
    ("lead-4", 0.11583941751379223, "A", "A", "A", "A"),
    ("01HZX3K8Q7M2N4P6R8T0V2W4Y6", 0.7822121458910711, "B", "B", "B", "C"),
])
def test_assignments_are_pinned_so_a_change_of_hash_fails(lead, point, even, seventy_thirty, with_holdout, three_way):
    # sha256("exp-welcome-subject:<lead>")[:8] / 2**64; a replay months later must agree
    assert hash_point("exp-welcome-subject", lead) == pytest.approx(point, abs=1e-15)
    assert assign("exp-welcome-subject", lead, {"A": 1, "B": 1}) == even
    assert assign("exp-welcome-subject", lead, {"A": 0.7, "B": 0.3}) == seventy_thirty
    assert assign("exp-welcome-subject", lead, {"A": 45, "B": 45}, holdout_weight=10) == with_holdout
    assert assign("exp-other", lead, {"A": 1, "B": 1, "C": 1}) == three_way


def test_hash_points_lie_in_the_unit_interval():
    points = [hash_point("exp", lead) for lead in LEADS[:5000]]
    assert all(0.0 <= p < 1.0 for p in points)


@pytest.mark.parametrize("weights, holdout_weight", [
    ({"A": 1, "B": 1}, 0.0),
    ({"A": 0.7, "B": 0.3}, 0.0),
    ({"A": 45, "B": 45}, 10.0),
])
def test_assignment_matches_the_weights_on_100k_leads(weights, holdout_weight):
    counts = assigned_counts("exp-balance", weights, holdout_weight)
    names = list(weights) + ([HOLDOUT] if holdout_weight else [])
    shares = list(weights.values()) + ([holdout_weight] if holdout_weight else [])
    assert set(counts) == set(names)
    check = sample_ratio_mismatch([counts[name] for name in names], shares)
    assert not check.flagged
    assert check.p_value > 0.01


def test_no_holdout_without_a_holdout_weight():
    assert HOLDOUT not in assigned_counts("exp-none", {"A": 1, "B": 1})


def test_two_experiments_assign_independently():
    first = [assign("exp-subject", lead, {"A": 1, "B": 1}) for lead in LEADS]
    second = [assign("exp-send-time", lead, {"X": 1, "Y": 1, "Z": 1}) for lead in LEADS]
    joint = Counter(zip(first, second))
    table = np.array([[joint[(x, y)] for x in "AB"] for y in "XYZ"])
    assert chi_squared(table).p_value > 0.01


def test_a_mapping_and_a_list_of_pairs_assign_alike():
    as_map = [assign("exp", lead, {"A": 2, "B": 1}) for lead in LEADS[:2000]]
    as_pairs = [assign("exp", lead, [("A", 2), ("B", 1)]) for lead in LEADS[:2000]]
    assert as_map == as_pairs


@pytest.mark.parametrize("weights, holdout_weight, message", [
    ({"A": 1}, 0, "at least two variants"),
    ({}, 0, "at least two variants"),
    ([("A", 1), ("A", 2)], 0, "unique, repeated: A"),
    ({"A": 1, "B": 0}, 0, "B=0"),
    ({"A": 1, "B": -1}, 0, "B=-1"),
    ({"A": 1, "B": float("nan")}, 0, "positive finite"),
    ({"A": 1, "B": True}, 0, "positive finite"),
    ({"A": 1, "": 1}, 0, "non-empty strings"),
    ({"A": 1, HOLDOUT: 1}, 0, "reserved"),
    ({"A": 1, "B": 1}, -0.1, "holdout_weight"),
])
def test_bad_weights_are_refused_with_a_clear_message(weights, holdout_weight, message):
    with pytest.raises(ValueError, match=message):
        assign("exp", "lead-1", weights, holdout_weight)


def test_validated_weights_keep_the_given_order():
    assert validated_weights({"B": 1, "A": 3}) == (("B", 1.0), ("A", 3.0))
