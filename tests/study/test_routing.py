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


def records(rows: dict) -> pd.DataFrame:
    """Two epochs of one routed block for each run: digest -> images per class (None: the whole dataset)."""
    return pd.DataFrame([{"digest": d, "epoch": e, "lr.policy": 0.01, "policy_updates": 4, "block": 2,
                          "train_entropy": 1.0 - 0.1 * e, "train_usage": 0.5, "usage": 0.5,
                          "variant": "route residual", "dataset_label": "Aircraft", "images_per_class": n,
                          "seed": 0} for d, n in rows.items() for e in (1, 2)]).astype({"images_per_class": "Int64"})


def test_the_whole_dataset_row_keeps_its_updates():
    t = routing.updates(records({"whole": None, "twenty": 20}))
    assert len(t) == 2 and t["updates"].tolist() == [8, 8]
    assert t["last-epoch entropy (bits)"].tolist() == pytest.approx([0.8, 0.8])


def test_the_entropy_panel_draws_one_line_per_run_not_per_seed():
    import matplotlib.pyplot as plt
    fig = routing.figure(records({"whole": None, "twenty": 20, "ten": 10}))  # three runs of one seed
    assert len([line for line in fig.axes[0].get_lines() if len(line.get_xdata())]) == 3  # not legend handles
    plt.close(fig)
