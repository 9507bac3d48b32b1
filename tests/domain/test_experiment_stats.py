"""The A/B statistics engine: fixed-horizon chi-squared, the always-valid mSPRT, Bonferroni,
the sample-ratio check, the minimum sample and the decision built from them."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from domain.experiment_stats import (
    DEFAULT_TAU2, NO_WINNER, ArmCounts, bonferroni, chi_squared, decide, look_statistics, msprt,
    sample_ratio_mismatch,
)

EVEN = {"A": 1, "B": 1}


# -- fixed-horizon chi-squared ----------------------------------------------------------------

@pytest.mark.parametrize("table", [
    [[10, 90], [20, 80]],
    [[12, 3], [17, 16]],
    [[500, 9500], [560, 9440]],
    [[50, 950], [70, 930], [65, 935]],
    [[10, 20], [10, 20], [20, 20]],
    [[1, 99], [0, 100], [4, 96], [7, 93]],
])
def test_chi_squared_equals_scipy_without_correction(table):
    ours, theirs = chi_squared(table), chi2_contingency(table, correction=False)
    assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-12)
    assert ours.dof == theirs.dof
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9)


def test_chi_squared_reproduces_published_values():
    # scipy.stats.chi2_contingency's documented examples: the 2 x 3 table (here as 3 arms x 2)
    # and the 2 x 2 table it tests with correction=False
    three_arms = chi_squared([[10, 20], [10, 20], [20, 20]])
    assert three_arms.statistic == pytest.approx(2.7777777777777777)
    assert three_arms.dof == 2
    assert three_arms.p_value == pytest.approx(0.24935220877729619)
    assert chi_squared([[12, 3], [17, 16]]).p_value == pytest.approx(0.0614122539870913)


def test_chi_squared_of_stacked_tables_and_empty_columns():
    stacked = chi_squared(np.array([[[10, 90], [20, 80]], [[0, 100], [0, 100]]]))
    assert stacked.p_value[0] == pytest.approx(chi2_contingency([[10, 90], [20, 80]], correction=False).pvalue)
    assert (stacked.statistic[1], stacked.dof[1], stacked.p_value[1]) == (0.0, 0, 1.0)


# -- the mSPRT --------------------------------------------------------------------------------

def test_msprt_statistic_by_hand():
    # control 50/1000, treatment 80/1000, tau^2 = 1e-4:
    #   d = 0.08 - 0.05 = 0.03; pooled p = 130/2000 = 0.065
    #   V = 0.065 * 0.935 * (1/1000 + 1/1000) = 1.2155e-4; V + tau^2 = 2.2155e-4
    #   ln Lambda = 0.5 ln(1.2155/2.2155) + 1e-4 * 0.03^2 / (2 * 1.2155e-4 * 2.2155e-4)
    #             = -0.3001372 + 1.6710119 = 1.3708747;  p = exp(-1.3708747) = 0.2538848
    #   interval: W = 0.05*0.95/1000 + 0.08*0.92/1000 = 1.211e-4,
    #   half width = sqrt(W (W + tau^2) / tau^2 * (2 ln 20 + ln((W + tau^2) / W))) = 0.0420168
    test = msprt(50, 1000, 80, 1000, tau2=1e-4)
    assert test.log_likelihood_ratio == pytest.approx(1.3708747, abs=1e-6)
    assert test.p_value == pytest.approx(0.2538848, abs=1e-6)
    assert test.absolute_lift == pytest.approx(0.03)
    assert test.relative_lift == pytest.approx(0.6)
    assert (test.ci_low, test.ci_high) == pytest.approx((0.03 - 0.0420168, 0.03 + 0.0420168), abs=1e-6)


def test_msprt_p_value_is_one_for_identical_rates_on_few_leads():
    assert msprt(5, 100, 5, 100).p_value == 1.0
    assert msprt(0, 100, 0, 100).p_value == 1.0


def test_msprt_goes_below_alpha_on_a_large_clear_difference():
    assert msprt(500, 10_000, 700, 10_000).p_value < 0.05


def test_msprt_p_value_never_rises_across_looks():
    rng = np.random.default_rng(7)
    exposed, converted, p, seen = np.zeros(2), np.zeros(2), 1.0, []
    for _ in range(60):
        daily = rng.binomial(400, 0.5, 2)
        exposed += daily
        converted += rng.binomial(daily, [0.05, 0.056])
        p = msprt(converted[0], exposed[0], converted[1], exposed[1], p).p_value
        seen.append(p)
    assert all(0 <= later <= earlier <= 1 for earlier, later in zip([1.0] + seen, seen))
    assert seen[-1] < seen[0]


def test_msprt_carries_a_smaller_earlier_p_value():
    assert msprt(50, 1000, 50, 1000, previous_p_value=0.03).p_value == 0.03


def test_msprt_refuses_nonsense():
    with pytest.raises(ValueError, match="tau2"):
        msprt(5, 100, 5, 100, tau2=0)
    with pytest.raises(ValueError, match="more successes than trials"):
        msprt(101, 100, 5, 100)
    with pytest.raises(ValueError, match="previous_p_value"):
        msprt(5, 100, 5, 100, previous_p_value=1.5)


# -- Bonferroni, sample ratio, minimum sample ---------------------------------------------------

def test_bonferroni_on_three_treatments():
    assert bonferroni([0.01, 0.02, 0.5]).tolist() == pytest.approx([0.03, 0.06, 1.0])


def test_bonferroni_decides_on_the_corrected_p_value():
    # B's carried always-valid p of 0.02 wins alone, but not as one of three treatments (0.06)
    two = decide([ArmCounts("A", 1000, 50), ArmCounts("B", 1000, 60)], EVEN, {"B": 0.02})
    four = decide([ArmCounts("A", 1000, 50), ArmCounts("B", 1000, 60), ArmCounts("C", 1000, 50),
                   ArmCounts("D", 1000, 50)], {"A": 1, "B": 1, "C": 1, "D": 1}, {"B": 0.02})
    assert two.winner == "B"
    assert four.winner is None
    assert four.arms[1].corrected_p == pytest.approx(0.06)
    assert four.reason == "no winner yet: p = 0.06"


@pytest.mark.parametrize("a, b, flagged", [(5000, 5400, True), (5000, 5050, False)])
def test_sample_ratio_mismatch_on_a_50_50_experiment(a, b, flagged):
    assert sample_ratio_mismatch([a, b], [0.5, 0.5]).flagged is flagged


def test_sample_ratio_counts_the_holdout_as_an_arm():
    weights = {"A": 45, "B": 45, "holdout": 10}
    fine = decide([ArmCounts("A", 4500, 225), ArmCounts("B", 4480, 230), ArmCounts("holdout", 1010, 0)], weights)
    broken = decide([ArmCounts("A", 4500, 225), ArmCounts("B", 4480, 230), ArmCounts("holdout", 700, 0)], weights)
    assert not fine.srm_flagged and broken.srm_flagged
    assert [arm.variant for arm in fine.arms] == ["A", "B"]


def test_sample_ratio_mismatch_blocks_a_clear_winner():
    decision = decide([ArmCounts("A", 10_000, 500), ArmCounts("B", 11_000, 800)], EVEN)
    assert decision.srm_flagged and decision.winner is None
    assert decision.reason.startswith("sample ratio mismatch: assignment is broken, no decision")


def test_minimum_sample_blocks_a_decision_and_keeps_the_carried_p_value():
    decision = decide([ArmCounts("A", 100, 1), ArmCounts("B", 40, 30)], {"A": 100, "B": 40}, min_sample=100)
    assert decision.winner is None
    assert decision.reason == "collecting: arm B has 40 of the 100 leads needed"
    assert decision.carried_p_values == {"B": 1.0}


# -- the decision -----------------------------------------------------------------------------

def test_a_clear_winner_is_named_with_its_lift():
    decision = decide([ArmCounts("A", 20_000, 1000), ArmCounts("B", 20_000, 1240)], EVEN)
    assert decision.winner == "B"
    assert decision.arms[1].relative_lift == pytest.approx(0.24)
    assert decision.reason.startswith("winner: B (+24.0 % relative, p ")
    low, high = decision.arms[1].lift_interval
    assert 0 < low < 0.012 < high
    assert decision.chi_squared_p < 0.001


def test_no_winner_on_similar_rates():
    decision = decide([ArmCounts("A", 5000, 250), ArmCounts("B", 5000, 262)], EVEN)
    assert decision.winner is None
    assert decision.reason == f"no winner yet: p = {decision.arms[1].corrected_p:.2g}"
    assert decision.arms[1].corrected_p == 1.0


def test_the_control_wins_when_every_treatment_is_worse():
    decision = decide([ArmCounts("A", 10_000, 600), ArmCounts("B", 10_000, 450)], EVEN)
    assert decision.winner == "A"
    assert decision.reason.startswith("winner: A (the control")


def test_a_worse_treatment_alone_does_not_end_a_three_arm_experiment():
    decision = decide([ArmCounts("A", 10_000, 600), ArmCounts("B", 10_000, 450), ArmCounts("C", 10_000, 610)],
                      {"A": 1, "B": 1, "C": 1})
    assert decision.winner is None
    assert decision.reason.endswith("(worse than control: B)")


def test_decide_refuses_arms_without_weights():
    with pytest.raises(ValueError, match="no configured weight for B"):
        decide([ArmCounts("A", 100, 5), ArmCounts("B", 100, 5)], {"A": 1})


def test_decide_is_the_vectorised_look_one_experiment_at_a_time():
    rng = np.random.default_rng(3)
    exposed = rng.binomial(800, 0.5, (20, 10, 1)).cumsum(axis=1) * np.ones((1, 1, 2), dtype=int)
    converted = rng.binomial(exposed // 10, [0.5, 0.65])  # rates 5 % and 6.5 %, counts <= exposed
    carried_many, carried_one = np.ones((20, 2)), [None] * 20
    for look in range(10):
        many = look_statistics(exposed[:, look], converted[:, look], [1, 1], carried_many)
        carried_many = many.always_valid_p
        for i in range(20):
            one = decide([ArmCounts("A", *map(int, (exposed[i, look, 0], converted[i, look, 0]))),
                          ArmCounts("B", *map(int, (exposed[i, look, 1], converted[i, look, 1])))], EVEN,
                         carried_one[i])
            carried_one[i] = one.carried_p_values
            assert one.winner == (None if many.winner[i] == NO_WINNER else "AB"[many.winner[i]])
            assert one.arms[1].always_valid_p == pytest.approx(many.always_valid_p[i, 1])


# -- A/A: the sequential test does not cry wolf where repeated chi-squared does --------------------

def test_a_a_false_positives_sequential_versus_repeated_chi_squared():
    rng = np.random.default_rng(2024)
    experiments, looks = 300, 30
    daily_a = rng.binomial(600, 0.5, (experiments, looks))
    daily = np.stack([daily_a, 600 - daily_a], axis=-1)
    base = rng.uniform(0.04, 0.06, (experiments, 1, 1))
    exposed, converted = daily.cumsum(axis=1), rng.binomial(daily, base).cumsum(axis=1)
    carried = np.ones((experiments, 2))
    sequential, repeated = np.zeros(experiments, bool), np.zeros(experiments, bool)
    for look in range(looks):
        stats = look_statistics(exposed[:, look], converted[:, look], [1, 1], carried)
        carried = stats.always_valid_p
        sequential |= stats.winner != NO_WINNER
        repeated |= stats.chi_squared_p < 0.05
    assert sequential.mean() <= 0.08
    assert repeated.mean() >= 0.15
    assert repeated.mean() > sequential.mean() + 0.10


def test_the_default_tau2_is_the_square_of_a_tenth_of_five_percent():
    assert math.isclose(DEFAULT_TAU2, (0.10 * 0.05) ** 2)
