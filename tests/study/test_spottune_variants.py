"""SpotTune's variants and routing scopes: what they plan, and their paired comparison on numbers worked by hand."""
import math

import pandas as pd
import pytest

from multitune_lib.study import Study, conclusions, spottune_variants as variants
from multitune_lib.study.spottune_variants import ALL, FINETUNE, RESIDUAL


def test_the_scopes_plan_both_routings_and_fine_tuning_on_every_row_and_seed():
    study = Study("imagenet-cpu", seeds=[0, 1])
    rows = study.profile.every_row()
    plan = variants.configs(study, rows, variants.SCOPES)
    assert (("aircraft", None) in rows and ("cifar100", None) not in rows and len(rows) == 9)
    assert len(plan) == 2 * 9 * 3 and plan["digest"].nunique() == len(plan)
    whole = plan[plan["images_per_class"].isna()]
    assert set(whole["dataset"]) == {"aircraft"}  # the whole row stays missing, not 0 or NaN-as-float
    one = plan[(plan["variant"] == ALL) & (plan["seed"] == 1)].iloc[0]
    n = None if pd.isna(one["images_per_class"]) else int(one["images_per_class"])
    assert one["digest"] == study.config("spottune", one["dataset"], n, 1, source_sha256=study.source_sha256,
                                         route="all").digest()


def fake(rows: dict) -> pd.DataFrame:
    """{(dataset, n): {variant: [accuracy per seed]}} as `results` returns it."""
    return pd.DataFrame([{"dataset": d, "images_per_class": n, "variant": v, "seed": seed, "final_pct": acc}
                         for (d, n), by in rows.items() for v, accs in by.items()
                         for seed, acc in enumerate(accs)]).astype({"images_per_class": "Int64"})


def test_the_comparison_pairs_by_seed_keeps_the_whole_row_and_gives_one_seed_no_interval():
    res = fake({("aircraft", None): {FINETUNE: [40, 41, 42], ALL: [30, 30, 30], RESIDUAL: [31.9, 32, 32.1]},
                ("aircraft", 5): {FINETUNE: [10, math.nan, math.nan], ALL: [9, 9, 9], RESIDUAL: [12]}})
    t = variants.comparison(res)
    assert list(t["images_per_class"].fillna(0)) == [0, 0, 5, 5]  # the whole row first, as the paper orders them
    whole, five = (t[(t["images_per_class"].fillna(0) == n) & (t["variant"] == RESIDUAL)].iloc[0] for n in (0, 5))
    assert [whole[k] for k in ("acc_pct", "vs_all_pct", "vs_finetune_pct")] == pytest.approx([32, 2, -9])
    assert whole["vs_all_ci95"] == pytest.approx(4.302653 * 0.1 / math.sqrt(3))  # differences 1.9, 2, 2.1: sd 0.1
    assert (five["seeds"], five["vs_all_pct"], five["vs_finetune_pct"]) == (1, 3, 2)
    assert math.isnan(five["vs_all_ci95"])
    said = conclusions.variants(t, where="row of the profile")
    assert "against routing all blocks higher on 1, within its interval on 0 and lower on 0 of 1 row with an " \
           "interval (1 row with one seed)" in said
