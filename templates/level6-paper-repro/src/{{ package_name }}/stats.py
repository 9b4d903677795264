"""Mean, standard deviation and 95% confidence intervals over the seeds of a cell.

Student's t is the default: with n runs, mean +- t(0.975, n-1) * s / sqrt(n); with five
seeds t is 2.776, with three 4.303, so a small n shows as a wide interval, as it should.
A seeded percentile bootstrap of the mean is the option for cells with at least
`MIN_BOOTSTRAP` good runs; with fewer it under-covers, and those cells keep Student's t.
A cell with fewer than 2 good runs gets no interval at all.

Methods are compared seed by seed (the same seed, split and initialisation draw for
both): the paired t-test on the differences, with the mean difference and its t
interval as the effect size, and Wilcoxon's signed-rank test as the test that assumes
no normality (exact, over every sign pattern of the ranks, up to `EXACT_WILCOXON`
pairs; ties get average ranks and zero differences are dropped). Holm's step-down
correction adjusts the p-values of all comparisons of a table together.

The t distribution is computed here (the regularised incomplete beta function, by its
continued fraction; quantiles by bisection) so that the project needs no SciPy; the
tests check every function against SciPy.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
MIN_BOOTSTRAP = 10
BOOTSTRAP_REPS = 10_000
EXACT_WILCOXON = 20  # 2**20 sign patterns at most


@dataclass(frozen=True)
class Summary:
    n: int  # good runs
    n_total: int  # runs the grid asked for
    mean: float | None
    std: float | None  # sample standard deviation (n - 1)
    ci_low: float | None
    ci_high: float | None
    ci_method: str  # "t", "bootstrap" or "" when there is no interval

    @property
    def half_width(self) -> float | None:
        if self.ci_low is None or self.ci_high is None:
            return None
        return (self.ci_high - self.ci_low) / 2


def summarize(
    values: Sequence[float],
    n_total: int,
    *,
    ci: str = "t",
    seed: int = 0,
    reps: int = BOOTSTRAP_REPS,
    confidence: float = CONFIDENCE,
) -> Summary:
    n = len(values)
    if n == 0:
        return Summary(0, n_total, None, None, None, None, "")
    array = np.asarray(values, dtype=np.float64)
    mean = float(array.mean())
    if n < 2:
        return Summary(n, n_total, mean, None, None, None, "")
    std = float(array.std(ddof=1))
    if ci == "bootstrap" and n >= MIN_BOOTSTRAP:
        low, high = bootstrap_interval(
            array, seed=seed, reps=reps, confidence=confidence
        )
        return Summary(n, n_total, mean, std, low, high, "bootstrap")
    half = t_quantile(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)
    return Summary(n, n_total, mean, std, mean - half, mean + half, "t")


def bootstrap_interval(
    values: np.ndarray, *, seed: int, reps: int, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Percentile bootstrap of the mean, from its own generator (same seed, same CI)."""
    generator = np.random.default_rng(seed)
    picks = generator.integers(0, len(values), size=(reps, len(values)))
    means = values[picks].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student's t with df degrees of freedom (0.5 < p < 1)."""
    if not 0.5 < p < 1 or df < 1:
        raise ValueError(
            f"t_quantile needs 0.5 < p < 1 and df >= 1, got p={p}, df={df}"
        )
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, high * 2
    for _ in range(200):
        middle = (low + high) / 2
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def t_cdf(t: float, df: int) -> float:
    """P(T <= t) for t >= 0: 1 - I_x(df/2, 1/2) / 2 with x = df / (df + t^2)."""
    x = df / (df + t * t)
    return 1.0 - 0.5 * regularized_beta(x, df / 2, 0.5)


def regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), by the continued fraction (modified Lentz) where it converges."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = (
        math.lgamma(a + b)
        - math.lgamma(a)
        - math.lgamma(b)
        + a * math.log(x)
        + b * math.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(1 - x, b, a) / b


def _beta_fraction(x: float, a: float, b: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return result


def t_two_sided_p(t: float, df: int) -> float:
    """P(|T| >= |t|) for Student's t with df degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return regularized_beta(df / (df + t * t), df / 2, 0.5)


@dataclass(frozen=True)
class PairedTest:
    n: int  # pairs
    mean_diff: float | None
    ci_low: float | None  # 95% t interval of the mean difference
    ci_high: float | None
    t_p: float | None  # paired t-test, two-sided
    wilcoxon_p: float | None  # Wilcoxon signed-rank, two-sided


def paired_test(
    first: Sequence[float], second: Sequence[float], confidence: float = CONFIDENCE
) -> PairedTest:
    """first - second, pair by pair: effect size with its interval, and both tests."""
    if len(first) != len(second):
        raise ValueError(f"paired samples of {len(first)} and {len(second)} values")
    diffs = np.asarray(first, dtype=np.float64) - np.asarray(second, dtype=np.float64)
    n = len(diffs)
    if n == 0:
        return PairedTest(0, None, None, None, None, None)
    mean = float(diffs.mean())
    wilcoxon = wilcoxon_p(diffs.tolist())
    if n < 2:
        return PairedTest(n, mean, None, None, None, wilcoxon)
    std = float(diffs.std(ddof=1))
    if std == 0.0:
        p = 1.0 if mean == 0.0 else 0.0
        return PairedTest(n, mean, mean, mean, p, wilcoxon)
    error = std / math.sqrt(n)
    half = t_quantile(0.5 + confidence / 2, n - 1) * error
    p = t_two_sided_p(mean / error, n - 1)
    return PairedTest(n, mean, mean - half, mean + half, p, wilcoxon)


def wilcoxon_p(diffs: Sequence[float]) -> float | None:
    """Two-sided p of Wilcoxon's signed-rank test; None with no nonzero difference."""
    nonzero = [d for d in diffs if d != 0.0]
    n = len(nonzero)
    if n == 0:
        return None
    ranks = _average_ranks([abs(d) for d in nonzero])
    observed = sum(r for r, d in zip(ranks, nonzero, strict=True) if d > 0)
    total = sum(ranks)
    if n <= EXACT_WILCOXON:
        # Every sign pattern is equally likely under the null; ranks doubled are whole.
        doubled = [round(2 * r) for r in ranks]
        counts: dict[int, int] = {0: 1}
        for rank in doubled:
            shifted: dict[int, int] = dict(counts)
            for value, count in counts.items():
                shifted[value + rank] = shifted.get(value + rank, 0) + count
            counts = shifted
        target = round(2 * observed)
        patterns = 2**n
        low = sum(c for v, c in counts.items() if v <= target) / patterns
        high = sum(c for v, c in counts.items() if v >= target) / patterns
        return float(min(1.0, 2 * min(low, high)))
    # Normal approximation, the variance reduced for ties.
    mean = total / 2
    ties = [len(list(group)) for _, group in itertools.groupby(sorted(ranks))]
    variance = n * (n + 1) * (2 * n + 1) / 24 - sum(t**3 - t for t in ties) / 48
    if variance <= 0:
        return 1.0
    z = (observed - mean) / math.sqrt(variance)
    return math.erfc(abs(z) / math.sqrt(2))


def _average_ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for i in order[start : end + 1]:
            ranks[i] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of a family of p-values (None stays None)."""
    present = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    m = len(present)
    for rank, (p, index) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[index] = running
    return adjusted


def wilcoxon_smallest_p(n: int) -> float:
    """The smallest two-sided p the exact signed-rank test can give with n pairs."""
    return min(1.0, 2 / 2**n) if n > 0 else 1.0
