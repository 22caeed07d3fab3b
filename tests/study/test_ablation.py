"""The fidelity ablation: which settings each difference flips, and what its table says, on numbers worked by hand."""
import math

import pandas as pd
import pytest

from multitune_lib.study import Study, ablation
from multitune_lib.study.ablation import PAPER, RELEASED


def test_each_difference_flips_only_what_the_methods_code_does_differently():
    assert ablation.settings("multitune", "aircraft", "shared trunk") == {"trunk": "shared"}
    assert ablation.settings("spottune", "aircraft", "shared trunk") == {}
    assert ablation.settings("multitune", "aircraft", "L2-SP: alpha term 0, SGD weight decay") == \
        {"l2sp_scope": "released", "weight_decay": 5e-4}
    assert ablation.settings("multitune", "cifar100", "L2-SP: alpha term 0, SGD weight decay")["weight_decay"] == 0.0
    assert ablation.settings("multitune", "aircraft", "augmentation") == {"augment": "flip_both"}
    assert ablation.settings("spottune", "aircraft", "augmentation") == {"augment": "none"}
    assert ablation.settings("spottune", "aircraft", "lr steps at the first milestone only") == {"lr_steps": "first"}
    assert ablation.settings("spottune", "aircraft", RELEASED) == {"protocol": "released"}
    assert ablation.settings("multitune", "aircraft", PAPER) == {}


def test_the_imagenet_cpu_ablation_keeps_spottune_routing_every_unit_and_says_so():
    study = Study("imagenet-cpu", results="unused")
    plan = ablation.configs(study, *study.profile.ablation_row())
    spot = plan[plan["method"] == "spottune"]
    assert {c.route for c in spot["config"]} == {"all"} and study.config("spottune", "aircraft", 10).route == "residual"
    assert spot.loc[spot["difference"] == PAPER, "same_as_paper"].all()
    assert "SpotTune with route all" in ablation.kept(study) and ablation.kept(Study("smoke")) == ""


def test_the_smoke_ablation_plans_one_run_per_real_difference():
    plan = ablation.configs(Study("smoke", seeds=[0, 1]), "aircraft", 4)
    assert len(plan) == 2 * 2 * len(ablation.ORDER)
    one = plan[plan["seed"] == 0]
    assert one["digest"].nunique() == 14  # MultiTune: paper, 6 differences, released; SpotTune: paper, 4, released
    paper = one[one["difference"] == PAPER].set_index("method")["digest"]
    same = one[one["same_as_paper"]]
    assert (same["digest"] == same["method"].map(paper)).all()  # no difference: the paper run itself


def fake_results(gaps_paper, gaps_variant, variant="shared trunk", **more) -> pd.DataFrame:
    """SpotTune at 30% in every run; MultiTune at 30 + gap, for the paper protocol and one difference (or more)."""
    rows = []
    for difference, gaps in ((PAPER, gaps_paper), (variant, gaps_variant), *more.items()):
        for seed, gap in enumerate(gaps):
            rows += [{"difference": difference, "method": "spottune", "seed": seed, "final_pct": 30.0,
                      "same_as_paper": difference == PAPER},
                     {"difference": difference, "method": "multitune", "seed": seed, "final_pct": 30.0 + gap,
                      "same_as_paper": difference == PAPER}]
    return pd.DataFrame(rows)


def test_the_summary_pairs_by_seed_and_reads_each_difference():
    t = ablation.summary(fake_results([2, 4, 6], [12, 14, 16])).set_index("difference")
    assert t.loc[PAPER, "gap_pct"] == 4 and t.loc[PAPER, "gap_ci95"] == pytest.approx(4.302653 * 2 / math.sqrt(3))
    trunk = t.loc["shared trunk"]
    assert (trunk["gap_pct"], trunk["change_pct"], trunk["change_ci95"]) == (14, 10, 0)  # same shift in every seed
    assert trunk["reads"] == "carries part of the paper's gain: it favours MultiTune by +10.00 points (± 0.00)"
    t = ablation.summary(fake_results([2, 4, 6], [-12, -14, -16])).set_index("difference")
    assert t.loc["shared trunk", "reads"].startswith("reverses the comparison: it favours SpotTune by -18.00")
    t = ablation.summary(fake_results([2, 4, 6], [3, 3, 7])).set_index("difference")
    assert t.loc["shared trunk", "reads"].startswith("does not matter here: the gap moves by +0.33 points")
    assert t.loc["setting B's lr lost", "reads"] == "not run yet"


def test_a_move_beyond_its_interval_that_holm_leaves_above_005_is_read_as_chance():
    # two differences, each moving the gap by 1, 1.5, 2: t = 1.5 / (0.5 / sqrt 3), raw p = 1 - t / sqrt(t^2 + 2)
    raw = 1 - math.sqrt(27) / math.sqrt(29)  # 0.0351: beyond the 95% interval on its own
    res = fake_results([2, 4, 6], [3, 5.5, 8], batch_size_120=[3, 5.5, 8]).replace("batch_size_120", "batch size 120")
    t = ablation.summary(res).set_index("difference")
    assert t.loc["shared trunk", "change_p"] == pytest.approx(raw)
    assert t.loc[["shared trunk", "batch size 120"], "change_p_holm"].tolist() == pytest.approx([2 * raw] * 2)
    assert t.loc["shared trunk", "reads"] == ("carries part of the paper's gain: it favours MultiTune by +1.50 points "
                                              "(± 1.24); but across the 2 differences tested, Holm's adjusted p is "
                                              "0.07: no more than chance could give")
    assert math.isnan(t.loc[PAPER, "change_p"])  # the reference is not tested against itself


def test_the_figure_draws_each_seeds_move_from_the_paper_gap():
    fig = ablation.figure(fake_results([2, 4, 6], [3, 3, 7]))
    gaps, moves = (sorted(x for c in ax.collections for x, _ in c.get_offsets()) for ax in fig.axes)
    assert gaps == pytest.approx([2, 3, 3, 4, 6, 7])  # the strip's dots: one per seed and difference
    assert moves == pytest.approx([-1, 0, 0, 0, 1, 1])  # 3-2, 3-4, 7-6; the paper's own moves are 0


def test_the_figure_draws_while_a_method_has_no_finished_run():
    res = fake_results([2, 4, 6], [3, 3, 7])
    res.loc[res["method"] == "spottune", "final_pct"] = math.nan  # as the store holds it before SpotTune trains
    fig = ablation.figure(res)
    assert [ax.get_title() for ax in fig.axes] == ["MultiTune minus SpotTune",
                                                   "its move from the paper protocol's gap, paired by seed"]
    assert all(not ax.collections for ax in fig.axes)  # no gap without SpotTune: nothing drawn, no error
    t = ablation.summary(res)
    assert t["gap_pct"].isna().all() and (t["reads"] == "not run yet").all()
