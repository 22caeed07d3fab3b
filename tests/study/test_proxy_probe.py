"""The proxy probe: the candidates it trains are the search's own first ones, and its noise table worked by hand."""
import pandas as pd
import pytest

from multitune_lib.methods import ratio_search
from multitune_lib.study import Study, proxy_probe


def test_the_probe_trains_the_searchs_first_candidates_under_each_seed_longer():
    study = Study("imagenet-cpu", results="unused")
    plan = proxy_probe.configs(study, "aircraft", 20, 3, (0, 1), 4)
    base = study.config("contribution", "aircraft", 20, 0, source_sha256=study.source_sha256).resolved()
    asked = []
    ratio_search.swarm(lambda r: asked.append(r) or 0.0, 49, base.search_particles, 1, base.seed)
    assert [cfg.ratios for i, seed, cfg in plan if seed == 0] == asked[:3]
    assert {cfg.epochs for *_, cfg in plan} == {4} and {cfg.holdout for *_, cfg in plan} == {0.2}
    assert len({cfg.digest() for *_, cfg in plan}) == 6 and {s for _, s, _ in plan} == {0, 1}


def test_noise_compares_the_spread_between_candidates_with_the_spread_a_seed_makes():
    scores = pd.DataFrame({"candidate": [0, 0, 1, 1, 2, 2], "seed": [0, 1] * 3, "epoch": 2,
                           "score_pct": [10.0, 12.0, 20.0, 22.0, 30.0, 32.0]})
    t = proxy_probe.noise(scores).iloc[0]
    assert t["between_candidates_sd"] == pytest.approx(10.0)  # means 11, 21, 31
    assert t["within_candidate_sd"] == pytest.approx(2 ** 0.5)  # each pair 2 apart
    assert t["rank_corr_seeds"] == pytest.approx(1.0)
