"""SpotTune's policy record as notebook 07 reads it: variant names, and updates per lr with the last-epoch entropy."""
import math

import pandas as pd
import pytest

from multitune_lib.study import routing


def test_a_variant_is_named_by_its_scope_and_any_width_it_sets():
    assert routing.variant(None, math.nan) == "route all"  # runs from before the field: every unit routed
    assert routing.variant("residual", None) == "route residual"
    assert routing.variant("all", 1.0) == "route all, policy width 1"


def test_updates_sum_each_lr_once_per_epoch_and_read_the_entropy_of_the_last():
    rows = []
    for epoch, lr, n, entropy in ((1, 0.01, 16, 1.0), (2, 0.01, 16, 0.9), (3, 0.001, 8, 0.5)):
        for block in (0, 1):  # two routed blocks: the epoch's updates must count once, not per block
            rows.append({"digest": "a", "epoch": epoch, "lr.policy": lr, "policy_updates": n, "block": block,
                         "train_entropy": entropy + 0.1 * block, "variant": "route residual",
                         "dataset_label": "Aircraft", "images_per_class": 20, "seed": 0})
    t = routing.updates(pd.DataFrame(rows)).iloc[0]
    assert (t["updates at lr 0.01"], t["updates at lr 0.001"], t["updates"]) == (32, 8, 40)
    assert t["last-epoch entropy (bits)"] == pytest.approx(0.55)
