"""The statistics behind every interval and test of the study (study/stats.py), against numbers worked by hand.
Named apart from tests/data/test_stats.py: pytest imports test modules by their file name."""
import math

import pandas as pd
import pytest

from multitune_lib.study import stats

T_975_2 = 4.302652729749464  # Student t, 97.5% quantile, 2 degrees of freedom (three seeds): from a t table


def test_paired_p_and_holm_of_numbers_worked_by_hand():
    # differences 1, 2, 3: t = 2 / (1 / sqrt 3) = sqrt 12; with 2 degrees of freedom p = 1 - t / sqrt(t^2 + 2)
    assert stats.paired_p([1, 2, 3]) == pytest.approx(1 - math.sqrt(12) / math.sqrt(14), rel=1e-9)  # 0.0741799
    assert math.isnan(stats.paired_p([1.0, None]))  # one seed: no test
    assert (stats.paired_p([2, 2, 2]), stats.paired_p([0, 0])) == (0.0, 1.0)  # no spread
    adjusted = stats.holm([0.01, 0.04, None, 0.03])  # m = 3: 0.01 x 3, 0.03 x 2, then 0.04 x 1 held up to 0.06
    assert adjusted.iloc[[0, 1, 3]].tolist() == pytest.approx([0.03, 0.06, 0.06]) and math.isnan(adjusted.iloc[2])
    assert stats.holm([0.4, 0.5]).tolist() == [0.8, 0.8]
    assert stats.holm([0.9, 0.6]).tolist() == [1.0, 1.0]  # capped


def test_mean_ci_of_numbers_worked_by_hand():
    m = stats.mean_ci([1, 2, 3])
    assert (m.mean, m.sd, m.n) == (2.0, 1.0, 3)
    assert m.half_width == pytest.approx(T_975_2 * 1 / math.sqrt(3), rel=1e-12)  # 2.4841377
    assert stats.t_interval([1, 2, 3]) == pytest.approx((2 - 2.4841377, 2 + 2.4841377), rel=1e-7)
    assert stats.ci95(pd.Series([1.0, 2.0, 3.0, None])) == pytest.approx(2.4841377, rel=1e-7)  # None left out
    one = stats.mean_ci([5.0])
    assert one.mean == 5.0 and one.n == 1 and math.isnan(one.sd) and math.isnan(one.half_width)
    assert stats.mean_ci([]).n == 0 and math.isnan(stats.mean_ci([]).mean)
