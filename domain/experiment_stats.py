"""The statistics of A/B experiments on conversion rates (pure): when a variant has won.

Every experiment arm has exposed leads n and converted leads x (for the chosen metric); the
first tested arm is the control, the others are treatments, and an arm called "holdout" only
counts for the sample-ratio check. The pieces, each usable on one experiment or, with numpy
arrays (arm axis last), on many at once, so the benchmark runs the very code `decide` runs:

- `chi_squared`: the fixed-horizon chi-squared test of a k x 2 contingency table (arm x
  {converted, not}), equal to scipy.stats.chi2_contingency(table, correction=False). Valid
  only when looked at once; repeated daily it declares far too many winners (the benchmark's
  baseline).
- `msprt`: the always-valid sequential test of one treatment against control, the
  normal-mixture mSPRT of Johari, Koomen, Pekelis and Walsh, "Always valid inference:
  continuous monitoring of A/B tests" (2017; Operations Research 70(3), 2022). With the
  difference of the observed rates d = x_T/n_T - x_C/n_C, its variance under "no difference"
  V = p(1 - p) (1/n_C + 1/n_T) with p = (x_C + x_T)/(n_C + n_T) the pooled rate (the normal
  approximation), and a N(0, tau^2) mixture over the true difference, the likelihood ratio of
  "some difference" to "none" at this look is

      Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 d^2 / (2 V (V + tau^2)))

  (with equal arms n_C = n_T = n, V = 2 sigma^2 / n and this is the paper's
  sqrt(2s/(2s + n tau^2)) exp(n^2 tau^2 d^2 / (4s (2s + n tau^2))), s = sigma^2). Under no
  difference Lambda is a martingale, so P(Lambda ever >= 1/alpha) <= alpha (Ville), and the
  always-valid p-value p_n = min(1, 1/Lambda_1, ..., 1/Lambda_n) may be read at every look
  and acted on whenever it drops below alpha. It is carried across looks: p_n =
  min(p_{n-1}, 1/Lambda_n). The interval is the same test inverted at every difference theta
  (with the unpooled variance W = r_C(1 - r_C)/n_C + r_T(1 - r_T)/n_T):
  d +- sqrt(W (W + tau^2) / tau^2 * (2 ln(1/alpha) + ln((W + tau^2) / W))); the sequence of
  these intervals covers the true difference at every look at once with probability about
  1 - alpha (callers may intersect them across looks to narrow them).
- `bonferroni`: the k - 1 treatment-vs-control always-valid p-values times k - 1 (capped at
  1), which keeps the chance of any false winner below alpha at any stopping time.
- `sample_ratio_mismatch`: a chi-squared goodness-of-fit test of the assignment counts
  (holdout included) against the configured weights; p < 0.001 means the assignment or the
  exposure logging is broken, and no decision is made on such data.
- `look_statistics` / `decide`: the decision at one look. Nothing is decided (and the carried
  p-values are not updated, since the normal approximation is poor on few leads) until every
  tested arm has at least `min_sample` exposed leads; nothing is decided while the sample
  ratio is off; a treatment wins when its corrected always-valid p-value is below alpha and
  it converts better than control (the best such treatment if several); the control wins
  when every treatment is significantly worse.

tau^2 is the prior spread of true differences the test is tuned to find. DEFAULT_TAU2 =
0.005^2 was chosen a priori, not fitted: base conversion rates here are about 5 % and the
lifts worth finding are about 10 % relative, i.e. 0.5 percentage points, so tau = 0.005. The
false-positive guarantee holds for any tau^2; the choice only moves power between small and
large effects. Set it to (typical absolute lift)^2 for other base rates.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from domain.experiment_assignment import HOLDOUT

DEFAULT_ALPHA = 0.05
DEFAULT_MIN_SAMPLE = 100
DEFAULT_SRM_THRESHOLD = 0.001
DEFAULT_TAU2 = 0.005 ** 2  # (10 % relative lift on a 5 % base rate)^2, see the module docstring
NO_WINNER = -1

Floats = float | NDArray[np.float64]


@dataclass(frozen=True)
class ChiSquared:
    """A chi-squared test's statistic, degrees of freedom and p-value (arrays for stacked tables)."""

    statistic: Floats
    dof: int | NDArray[np.int64]
    p_value: Floats


@dataclass(frozen=True)
class SequentialTest:
    """One treatment against control at one look of the mSPRT."""

    p_value: Floats  # always-valid, carried: min(previous p-value, 1 / Lambda at this look)
    log_likelihood_ratio: Floats  # ln Lambda at this look
    absolute_lift: Floats  # treatment rate - control rate
    relative_lift: Floats  # absolute lift / control rate (nan when the control rate is 0)
    ci_low: Floats  # always-valid interval of the absolute lift (nan without variance)
    ci_high: Floats


@dataclass(frozen=True)
class SampleRatio:
    """The goodness-of-fit of assignment counts to the configured weights."""

    p_value: Floats
    flagged: bool | NDArray[np.bool_]


@dataclass(frozen=True)
class LookStatistics:
    """Everything computed at one look, for one experiment or many (arm axis last, control at
    index 0, holdout not among the arms). `winner` is the index of the winning arm, or
    NO_WINNER (-1)."""

    rates: NDArray[np.float64]
    always_valid_p: NDArray[np.float64]  # carried forward; 1 for the control
    corrected_p: NDArray[np.float64]  # Bonferroni over the treatments; 1 for the control
    absolute_lift: NDArray[np.float64]
    relative_lift: NDArray[np.float64]
    ci_low: NDArray[np.float64]
    ci_high: NDArray[np.float64]
    chi_squared_p: NDArray[np.float64]
    srm_p: NDArray[np.float64]
    srm_flagged: NDArray[np.bool_]
    enough_sample: NDArray[np.bool_]
    winner: NDArray[np.int64]


@dataclass(frozen=True)
class ArmCounts:
    """One arm's running totals: leads exposed to it and those of them that converted."""

    variant: str
    exposed: int
    converted: int


@dataclass(frozen=True)
class ArmResult:
    """One tested arm at this look; lifts and p-values are against the control."""

    variant: str
    exposed: int
    converted: int
    rate: float
    always_valid_p: float
    corrected_p: float
    absolute_lift: float
    relative_lift: float
    lift_interval: tuple[float, float]


@dataclass(frozen=True)
class Decision:
    """The verdict at one look, and the p-values to carry to the next."""

    control: str
    arms: tuple[ArmResult, ...]  # control first; the holdout is not an arm here
    chi_squared_p: float  # fixed-horizon, for reference only
    srm_p: float
    srm_flagged: bool
    winner: str | None
    reason: str

    @property
    def carried_p_values(self) -> dict[str, float]:
        """Each treatment's always-valid p-value, to pass to the next look's `decide`."""
        return {arm.variant: arm.always_valid_p for arm in self.arms[1:]}


def chi_squared(table: ArrayLike) -> ChiSquared:
    """Chi-squared test of independence of a (..., k, 2) table (no continuity correction).

    Rows or columns that are all zero are left out (scipy refuses such tables); a table with
    fewer than two non-empty rows or columns has statistic 0, dof 0 and p-value 1."""
    counts = _counts(table, "table")
    if counts.ndim < 2 or counts.shape[-2] < 2 or counts.shape[-1] < 2:
        raise ValueError(f"a contingency table needs at least 2 rows and 2 columns, got shape {counts.shape}")
    rows = counts.sum(axis=-1, keepdims=True)
    columns = counts.sum(axis=-2, keepdims=True)
    total = rows.sum(axis=-2, keepdims=True)
    expected = rows * columns / np.where(total > 0, total, 1.0)
    filled = expected > 0
    cells = np.where(filled, (counts - expected) ** 2 / np.where(filled, expected, 1.0), 0.0)
    statistic = cells.sum(axis=(-2, -1))
    dof = ((np.count_nonzero(rows[..., 0] > 0, axis=-1) - 1).clip(0)
           * (np.count_nonzero(columns[..., 0, :] > 0, axis=-1) - 1).clip(0))
    p_value = np.where(dof > 0, _chi2_sf(statistic, np.maximum(dof, 1)), 1.0)
    return ChiSquared(_plain(statistic), _plain(dof, int), _plain(p_value))


def msprt(control_successes: ArrayLike, control_trials: ArrayLike, treatment_successes: ArrayLike,
          treatment_trials: ArrayLike, previous_p_value: ArrayLike = 1.0, *, tau2: float = DEFAULT_TAU2,
          alpha: float = DEFAULT_ALPHA) -> SequentialTest:
    """The mixture SPRT of one treatment against control at this look (formula in the module
    docstring), given the running counts and the always-valid p-value carried from the last
    look (1 at the first)."""
    if not (math.isfinite(tau2) and tau2 > 0):
        raise ValueError(f"tau2 must be a positive number, got {tau2!r}")
    _check_alpha(alpha)
    xc, nc = _successes_and_trials(control_successes, control_trials, "control")
    xt, nt = _successes_and_trials(treatment_successes, treatment_trials, "treatment")
    previous = np.asarray(previous_p_value, dtype=float)
    if np.any((previous < 0) | (previous > 1) | np.isnan(previous)):
        raise ValueError("previous_p_value must be within [0, 1] (start from 1.0)")
    rate_c, rate_t = _rate(xc, nc), _rate(xt, nt)
    lift = rate_t - rate_c
    pooled = _rate(xc + xt, nc + nt)
    null_variance = np.where((nc > 0) & (nt > 0), pooled * (1 - pooled) * (_inverse(nc) + _inverse(nt)), 0.0)
    log_lr = _log_mixture_ratio(lift, null_variance, tau2)
    p_value = np.minimum(previous, np.exp(-np.maximum(log_lr, 0.0)))
    variance = np.where((nc > 0) & (nt > 0),
                        rate_c * (1 - rate_c) * _inverse(nc) + rate_t * (1 - rate_t) * _inverse(nt), 0.0)
    half_width = _interval_half_width(variance, tau2, alpha)
    relative = np.where(rate_c > 0, lift / np.where(rate_c > 0, rate_c, 1.0), np.nan)
    return SequentialTest(_plain(p_value), _plain(log_lr), _plain(lift), _plain(relative),
                          _plain(lift - half_width), _plain(lift + half_width))


def bonferroni(p_values: ArrayLike) -> NDArray[np.float64]:
    """Bonferroni-corrected p-values over the last axis (m comparisons: p * m, at most 1)."""
    p = np.asarray(p_values, dtype=float)
    if p.ndim == 0 or p.shape[-1] == 0:
        raise ValueError("bonferroni needs at least one p-value on the last axis")
    return np.minimum(p * p.shape[-1], 1.0)


def sample_ratio_mismatch(assigned: ArrayLike, weights: ArrayLike,
                          threshold: float = DEFAULT_SRM_THRESHOLD) -> SampleRatio:
    """Chi-squared goodness of fit of assignment counts (arm axis last, holdout included as an
    arm) to the configured weights; flagged when p < threshold. No leads: p = 1."""
    observed = _counts(assigned, "assigned")
    shares = np.asarray(weights, dtype=float)
    if shares.ndim != 1 or shares.shape[0] < 2 or observed.shape[-1:] != shares.shape:
        raise ValueError(f"need one weight per arm (at least 2), got {shares.shape} weights "
                         f"for counts of shape {observed.shape}")
    if np.any(~np.isfinite(shares) | (shares <= 0)):
        raise ValueError(f"weights must be positive, got {shares.tolist()}")
    total = observed.sum(axis=-1, keepdims=True)
    expected = total * shares / shares.sum()
    statistic = (((observed - expected) ** 2) / np.where(expected > 0, expected, 1.0)).sum(axis=-1)
    p_value = np.where(total[..., 0] > 0, _chi2_sf(statistic, shares.shape[0] - 1), 1.0)
    return SampleRatio(_plain(p_value), _plain(p_value < threshold, bool))


def look_statistics(exposed: ArrayLike, converted: ArrayLike, weights: ArrayLike,
                    carried_p_values: ArrayLike | None = None, *, holdout_assigned: ArrayLike = 0,
                    holdout_weight: float = 0.0, alpha: float = DEFAULT_ALPHA,
                    min_sample: int = DEFAULT_MIN_SAMPLE, tau2: float = DEFAULT_TAU2,
                    srm_threshold: float = DEFAULT_SRM_THRESHOLD) -> LookStatistics:
    """All statistics and the winner at one look, for arrays of shape (..., k) over the tested
    arms (control first); `carried_p_values` has the same shape (the control's entry is
    ignored), `weights` one per tested arm, the holdout's passed apart."""
    n = _counts(exposed, "exposed")
    x = _counts(converted, "converted")
    if n.shape != x.shape or n.ndim < 1 or n.shape[-1] < 2:
        raise ValueError(f"exposed and converted need one matching shape (..., arms >= 2), got {n.shape} and {x.shape}")
    if np.any(x > n):
        raise ValueError("an arm cannot have more converted leads than exposed leads")
    carried = np.broadcast_to(np.asarray(1.0 if carried_p_values is None else carried_p_values, float), n.shape)
    enough = (n >= min_sample).all(axis=-1)
    test = msprt(x[..., :1], n[..., :1], x, n, carried, tau2=tau2, alpha=alpha)
    always_valid = np.where(enough[..., None], test.p_value, carried)
    always_valid[..., 0] = 1.0
    corrected = np.concatenate([np.ones_like(always_valid[..., :1]), bonferroni(always_valid[..., 1:])], axis=-1)
    srm = _srm_with_holdout(n, holdout_assigned, weights, holdout_weight, srm_threshold)
    reference = chi_squared(np.stack([x, n - x], axis=-1))
    rates = _rate(x, n)
    winner = np.where(enough & ~np.asarray(srm.flagged), _winner_index(rates, corrected, test.absolute_lift, alpha),
                      NO_WINNER)
    return LookStatistics(rates, always_valid, corrected, np.asarray(test.absolute_lift),
                          np.asarray(test.relative_lift), np.asarray(test.ci_low), np.asarray(test.ci_high),
                          np.asarray(reference.p_value), np.asarray(srm.p_value), np.asarray(srm.flagged),
                          np.asarray(enough), np.asarray(winner))


def decide(arms: Sequence[ArmCounts], weights: Mapping[str, float],
           carried_p_values: Mapping[str, float] | None = None, *, alpha: float = DEFAULT_ALPHA,
           min_sample: int = DEFAULT_MIN_SAMPLE, tau2: float = DEFAULT_TAU2,
           srm_threshold: float = DEFAULT_SRM_THRESHOLD) -> Decision:
    """The decision at this look. The first arm that is not the holdout is the control;
    `weights` has every arm's configured weight (the holdout's too, if it has one);
    `carried_p_values` is the previous look's `Decision.carried_p_values` (None at the first)."""
    tested = [arm for arm in arms if arm.variant != HOLDOUT]
    holdout = sum(arm.exposed for arm in arms if arm.variant == HOLDOUT)
    _check_arms(tested, weights)
    carried = carried_p_values or {}
    stats = look_statistics([a.exposed for a in tested], [a.converted for a in tested],
                            [weights[a.variant] for a in tested],
                            [1.0] + [carried.get(a.variant, 1.0) for a in tested[1:]],
                            holdout_assigned=holdout, holdout_weight=float(weights.get(HOLDOUT, 0.0)),
                            alpha=alpha, min_sample=min_sample, tau2=tau2, srm_threshold=srm_threshold)
    results = tuple(_arm_result(arm, stats, i) for i, arm in enumerate(tested))
    winner = results[int(stats.winner)].variant if stats.winner != NO_WINNER else None
    return Decision(tested[0].variant, results, float(stats.chi_squared_p), float(stats.srm_p),
                    bool(stats.srm_flagged), winner, _reason(results, stats, alpha, min_sample))


def _winner_index(rates: NDArray, corrected_p: NDArray, lift: NDArray, alpha: float) -> NDArray[np.int64]:
    """The best treatment significantly above control, else the control (0) if every treatment
    is significantly below it, else NO_WINNER."""
    significant = corrected_p[..., 1:] < alpha
    better = significant & (lift[..., 1:] > 0)
    worse = significant & (lift[..., 1:] < 0)
    best = np.argmax(np.where(better, rates[..., 1:], -np.inf), axis=-1) + 1
    return np.where(better.any(axis=-1), best, np.where(worse.all(axis=-1), 0, NO_WINNER))


def _reason(results: tuple[ArmResult, ...], stats: LookStatistics, alpha: float, min_sample: int) -> str:
    if stats.srm_flagged:
        return f"sample ratio mismatch: assignment is broken, no decision ({_p_text(float(stats.srm_p))})"
    short = [arm for arm in results if arm.exposed < min_sample]
    if short:
        return f"collecting: arm {short[0].variant} has {short[0].exposed} of the {min_sample} leads needed"
    treatments = results[1:]
    if stats.winner > 0:
        won = results[int(stats.winner)]
        return f"winner: {won.variant} ({_lift_text(won)}, {_p_text(won.corrected_p)})"
    if stats.winner == 0:
        p = max(arm.corrected_p for arm in treatments)
        return f"winner: {results[0].variant} (the control: every treatment converts less, {_p_text(p)})"
    worse = [arm.variant for arm in treatments if arm.corrected_p < alpha and arm.absolute_lift < 0]
    open_p = min(arm.corrected_p for arm in treatments if arm.variant not in worse)
    return f"no winner yet: {_p_text(open_p)}" + (f" (worse than control: {', '.join(worse)})" if worse else "")


def _arm_result(arm: ArmCounts, stats: LookStatistics, i: int) -> ArmResult:
    lift, relative = (0.0, 0.0) if i == 0 else (float(stats.absolute_lift[i]), float(stats.relative_lift[i]))
    interval = (math.nan, math.nan) if i == 0 else (float(stats.ci_low[i]), float(stats.ci_high[i]))
    return ArmResult(arm.variant, arm.exposed, arm.converted, float(stats.rates[i]), float(stats.always_valid_p[i]),
                     float(stats.corrected_p[i]), lift, relative, interval)


def _check_arms(tested: list[ArmCounts], weights: Mapping[str, float]) -> None:
    names = [arm.variant for arm in tested]
    if len(tested) < 2:
        raise ValueError(f"an experiment needs a control and at least one treatment, got {names}")
    if len(set(names)) != len(names):
        raise ValueError(f"variant names must be unique, got {names}")
    missing = [name for name in names if name not in weights]
    if missing:
        raise ValueError(f"no configured weight for {', '.join(missing)}: pass every arm's weight")


def _srm_with_holdout(exposed: NDArray, holdout_assigned: ArrayLike, weights: ArrayLike, holdout_weight: float,
                      threshold: float) -> SampleRatio:
    shares = np.asarray(weights, dtype=float)
    if holdout_weight <= 0:
        return sample_ratio_mismatch(exposed, shares, threshold)
    holdout = np.broadcast_to(np.asarray(holdout_assigned, dtype=float), exposed.shape[:-1])[..., None]
    return sample_ratio_mismatch(np.concatenate([exposed, holdout], axis=-1), np.append(shares, holdout_weight),
                                 threshold)


def _log_mixture_ratio(lift: NDArray, variance: NDArray, tau2: float) -> NDArray:
    """ln Lambda of the normal mixture; 0 (no evidence either way) where the variance is 0."""
    v = np.where(variance > 0, variance, 1.0)
    log_lr = 0.5 * np.log(v / (v + tau2)) + tau2 * lift ** 2 / (2 * v * (v + tau2))
    return np.where(variance > 0, log_lr, 0.0)


def _interval_half_width(variance: NDArray, tau2: float, alpha: float) -> NDArray:
    v = np.where(variance > 0, variance, 1.0)
    width = np.sqrt(v * (v + tau2) / tau2 * (2 * math.log(1 / alpha) + np.log((v + tau2) / v)))
    return np.where(variance > 0, width, np.nan)


def _successes_and_trials(successes: ArrayLike, trials: ArrayLike, arm: str) -> tuple[NDArray, NDArray]:
    x, n = _counts(successes, f"{arm} successes"), _counts(trials, f"{arm} trials")
    if np.any(x > n):
        raise ValueError(f"{arm}: more successes than trials")
    return x, n


def _counts(values: ArrayLike, what: str) -> NDArray[np.float64]:
    counts = np.asarray(values, dtype=float)
    if np.any(~np.isfinite(counts) | (counts < 0)):
        raise ValueError(f"{what} must be non-negative counts")
    return counts


def _rate(successes: NDArray, trials: NDArray) -> NDArray:
    return np.where(trials > 0, successes / np.where(trials > 0, trials, 1.0), 0.0)


def _inverse(trials: NDArray) -> NDArray:
    return 1.0 / np.where(trials > 0, trials, 1.0)


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")


def _plain(values: ArrayLike, kind: type = float):
    """A Python scalar for a single experiment, the array itself for many."""
    array = np.asarray(values)
    return kind(array) if array.ndim == 0 else array


def _p_text(p: float) -> str:
    return "p < 0.0001" if p < 0.0001 else f"p = {p:.2g}"


def _lift_text(arm: ArmResult) -> str:
    if math.isnan(arm.relative_lift):
        return f"{arm.absolute_lift * 100:+.2f} points"
    return f"{arm.relative_lift * 100:+.1f} % relative"


def _chi2_sf(statistic, dof):
    """The chi-squared distribution's survival function. scipy.stats is imported here, not at
    the top: it adds ~70 MB to every process that imports it, and every worker imports this
    module (through the tenants' experiments) while only evaluations need it."""
    from scipy.stats import chi2
    return chi2.sf(statistic, dof)
