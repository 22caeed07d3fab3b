"""What the notebooks say about their setup and what they conclude: from the profile that ran and from the tables,
never from prose written for another profile."""
import pandas as pd

from multitune_lib.study import Study, conclusions, describe


def test_setup_names_the_profile_s_network_schedule_and_validation():
    text = describe.setup(Study("imagenet-cpu", results="unused"), ["spottune", "multitune"])
    assert "- network: EfficientNet-Lite0 (17 blocks, 9 of them with an identity path)" in text
    assert "resized on the device to 128 px" in text and "15 epochs" in text and "seeds 0, 1 and 2" in text
    assert "every 2 epochs on a fixed sample of 1,000 val images; the last epoch on the whole val split" in text
    assert "- SpotTune: lr 0.1, policy lr 0.01, lr x0.1 at epochs 8 and 12, weight decay 5e-4 on Aircraft, 0 on " \
           "CIFAR100, the policy routes 9 blocks (those with an identity path; the others fine-tuned), a policy at " \
           "0.25 of SpotTune's width" in text
    assert "epochs 20, 50" not in text and "40, 60" not in text
    gpu = describe.setup(Study("imagenet", results="unused"), ["spottune"])
    assert "every 5 epochs on a fixed sample of 1,000 val images; the last epoch at each lr (the method's " \
           "milestones) and the last epoch on the whole val split" in gpu
    assert "lr x0.1 at epochs 40, 60 and 80" in gpu and "the policy routes 9 blocks (those with an identity" in gpu
    smoke = describe.setup(Study("smoke", results="unused"), ["multitune"])
    assert "ResNet-26 (12 blocks, all residual), from random initialisation" in smoke
    assert "a constant lr (milestones 20, 50 and 80 lie beyond its 2 epochs)" in smoke


def test_pending_says_what_the_store_holds_and_what_would_train(tmp_path, finish):
    study = Study("smoke", results=tmp_path)
    plan = lambda s: s.run_all(["spottune", "multitune"], [6], ["aircraft"])  # noqa: E731
    assert describe.pending(study, plan).endswith("holds 0 of this section's 2 runs. It lacks MultiTune 1, "
                                                  "SpotTune 1: they train now, a progress line each (`train = "
                                                  "False` would read the store only).")
    finish(study, study.config("spottune", "aircraft", 6, 0))
    finish(study, study.config("multitune", "aircraft", 6, 0))
    assert describe.pending(study, plan) == (f"The results store ({tmp_path}) holds 2 of this section's 2 runs "
                                             "(float32: 2 runs): nothing trains.")
    assert study.log == []  # the plan ran on a read-only copy


def test_runs_table_in_percent():
    runs = pd.DataFrame({"method_label": ["SpotTune"], "dataset": ["aircraft"],
                         "images_per_class": pd.array([None], dtype="Int64"), "seed": [0], "final_val_acc": [0.3512],
                         "best_val_acc": [0.36], "train_minutes": [12.34], "precision": ["float32"]})
    assert describe.runs_table(runs).iloc[0].tolist() == ["SpotTune", "aircraft", "all", 0, 35.1, 36.0, 12.3,
                                                          "float32"]


def test_the_data_conclusion_reads_the_counts_sizes_and_table2():
    counts = pd.DataFrame({"dataset": ["aircraft"] * 2, "split": ["train", "val"], "images": [3334, 3333],
                           "classes": [100, 100], "min per class": [33, 33], "max per class": [34, 34]})
    sized = pd.DataFrame({"dataset": ["aircraft"] * 3, "width": [95, 107, 144], "height": [72, 72, 72]})
    stats = pd.DataFrame({"dataset": ["aircraft"] * 2, "whole - paper": [0.0017, -0.0021]})
    assert conclusions.data(counts, sized, stats) == (
        "Aircraft holds 3,334 train and 3,333 val images of 100 classes (33-34 in each split per class), 72 px high "
        "and 95-144 px wide (median 107). The per-channel mean and std of the whole train images lie within 0.0021 "
        "on aircraft of the paper's Table 2 (the largest difference of the six numbers).")


def test_the_ablation_conclusion_counts_moves_beyond_their_interval_and_what_holm_keeps():
    table = pd.DataFrame({
        "difference": ["paper protocol", "augmentation", "shared trunk", "released code (all at once)"],
        "gap_pct": [2.2, 0.5, 3.0, 5.0], "gap_ci95": [5.1, 4.0, 4.0, 6.7], "seeds": [3, 3, 3, 3],
        "change_pct": [float("nan"), -1.7, 0.3, 2.8], "change_ci95": [float("nan"), 1.0, 1.0, 2.0],
        "change_p_holm": [float("nan"), 0.03, 1.0, 0.2]})
    text = conclusions.ablation(table, "Aircraft, 10 images per class")
    assert text.startswith("Under the paper's protocol, MultiTune minus SpotTune on Aircraft, 10 images per class "
                           "is +2.2 ± 5.1 points over 3 seeds.")
    assert "Of the 3 moves towards the released code, 2 shift the gap beyond their own interval (augmentation -1.7, " \
           "favouring SpotTune; released code (all at once) +2.8, favouring MultiTune); after Holm's adjustment " \
           "over all 3, 1 stays below 0.05 (augmentation -1.7, favouring SpotTune)." in text
    assert text.endswith("leaves a gap of +5.0 ± 6.7 points.")


def test_the_verdict_reading_counts_rows_by_their_interval_and_what_holm_keeps():
    v = pd.DataFrame({"data": ["Aircraft", "Aircraft", "CIFAR100"], "images_per_class": pd.array([None, 20, 20],
                                                                                                  dtype="Int64"),
                      "measure": ["final"] * 3, "seeds": [3, 3, 3], "diff_pct": [10.9, 3.1, -2.0],
                      "ci95_pct": [3.4, 3.3, 1.0], "p_holm": [0.03, 0.4, 0.2], "ahead": [3, 2, 0]})
    assert conclusions.verdict_reading(v) == (
        "MultiTune minus SpotTune at the final epoch, paired by seed: above 0 beyond its 95% interval on 1 of 3 rows "
        "(Aircraft, whole dataset: +10.9 ± 3.4), around 0 on 1 (Aircraft, 20 per class: +3.1 ± 3.3) and below on 1 "
        "(CIFAR100, 20 per class: -2.0 ± 1.0); MultiTune is ahead in every seed on 1; after Holm's adjustment over "
        "the rows, 1 stays below 0.05 (Aircraft, whole dataset: +10.9 ± 3.4).")
    few = conclusions.verdict_reading(v.iloc[1:], adjusted_over=3)  # a selection says over how many Holm adjusted
    assert few.endswith("after Holm's adjustment over all 3 rows of the verdict, 0 stay below 0.05.")
    one = v.assign(seeds=1, ci95_pct=float("nan"), p_holm=float("nan")).iloc[:1]
    assert conclusions.verdict_reading(one) == ("MultiTune minus SpotTune at the final epoch, one seed and so no "
                                                "interval yet (Aircraft, whole dataset: +10.9).")
