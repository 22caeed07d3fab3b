"""The statistics every table and figure of the study shares: a mean over seeds with its 95% Student-t interval,
the paired t-test of per-seed differences, and Holm's adjustment of a family of such tests."""
from __future__ import annotations

import math
from typing import NamedTuple

import pandas as pd
from scipy import stats


class MeanCI(NamedTuple):
    mean: float
    sd: float
    half_width: float  # of the 95% Student-t interval of the mean
    n: int


def mean_ci(values) -> MeanCI:
    """Mean over seeds, its sd and the half-width of its 95% Student-t interval, t(0.975, n - 1) x sd / sqrt(n);
    missing values are left out, and fewer than two values give NaN sd and half-width. Every interval in Table 3,
    the verdict and Fig. 2 comes from here: a paired comparison is this of the per-seed differences."""
    v = pd.Series(values, dtype=float).dropna()
    n = len(v)
    if n < 2:  # one seed has no spread to make an interval from
        return MeanCI(float(v.mean()) if n else math.nan, math.nan, math.nan, n)
    sd = float(v.std())
    return MeanCI(float(v.mean()), sd, float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)), n)


def ci95(values) -> float:
    """`mean_ci`'s half-width alone, for pandas aggregations."""
    return mean_ci(values).half_width


def t_interval(values) -> tuple[float, float]:
    """`mean_ci` as seaborn's `errorbar=` wants it: the interval's (low, high)."""
    m = mean_ci(values)
    return m.mean - m.half_width, m.mean + m.half_width


def paired_p(values) -> float:
    """Two-sided p-value of Student's t-test that the mean of per-seed differences is 0 (NaN under two values);
    from `mean_ci`, so a difference the same in every seed gives 0 rather than scipy's precision warning."""
    m = mean_ci(values)
    if m.n < 2:
        return math.nan
    if m.sd == 0:
        return 1.0 if m.mean == 0 else 0.0
    return float(2 * stats.t.sf(abs(m.mean) * math.sqrt(m.n) / m.sd, m.n - 1))


def holm(p_values) -> pd.Series:
    """Holm's step-down adjustment of a family of p-values (missing ones left out of the family and missing):
    the k-th smallest is multiplied by (m - k + 1), then made non-decreasing and capped at 1."""
    p = pd.Series(p_values, dtype=float)
    ranked = p.dropna().sort_values()
    factor = pd.Series(range(len(ranked), 0, -1), index=ranked.index, dtype=float)
    return (ranked * factor).cummax().clip(upper=1.0).reindex(p.index)
