"""What SpotTune's policy does: per epoch and routed block, the share of training images it sampled onto the
fine-tuned copy, the entropy of that choice (bits: 1 is a coin flip, 0 a fixed choice), the share of validation
images its argmax sends there, and how many updates the policy took at each learning rate. Read from the history
of every SpotTune run that records them."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from ..store.results import last_epoch
from .figures import save_fig
from .study import Study

MEASURES = {"train_usage": "sampled in training", "train_entropy": "entropy (bits)", "usage": "argmax on val"}


def variant(route, policy_width) -> str:
    """How tables name a SpotTune run's routing: its scope and, where set, its policy's width."""
    scope = "route all" if not isinstance(route, str) else f"route {route}"
    width = "" if policy_width is None or (isinstance(policy_width, float) and math.isnan(policy_width)) \
        else f", policy width {policy_width:g}"
    return scope + width


def spottune_runs(study: Study) -> pd.DataFrame:
    """Every finished SpotTune run with its routing variant."""
    runs = study.runs()
    runs = runs[runs["method"] == "spottune"]
    route = runs["route"] if "route" in runs else pd.Series(None, index=runs.index, dtype=object)
    width = runs["policy_width"] if "policy_width" in runs else pd.Series(math.nan, index=runs.index)
    return runs.assign(variant=[variant(r, w) for r, w in zip(route, width)])


def routing(study: Study) -> pd.DataFrame:
    """Long table: one row per SpotTune run that records training-time routing, epoch and routed block."""
    runs = spottune_runs(study)
    h = study.store.history()
    keys = ["digest", "epoch", "lr.policy", "policy_updates"]
    if h.empty or "policy_updates" not in h:
        return pd.DataFrame(columns=[*keys, "block", *MEASURES, "variant", "dataset_label", "images_per_class",
                                     "seed"])
    h = h[h["digest"].isin(runs["digest"]) & h["policy_updates"].notna()]
    parts = []
    for prefix in MEASURES:
        cols = [c for c in h.columns if c.startswith(f"{prefix}.")]
        part = h.melt(id_vars=keys, value_vars=cols, var_name="block", value_name=prefix)
        parts.append(part.assign(block=part["block"].str.removeprefix(f"{prefix}.").astype(int)))
    long = parts[0]
    for part in parts[1:]:
        long = long.merge(part, on=[*keys, "block"], how="left")
    long = long.dropna(subset=["train_usage"])
    meta = runs[["digest", "variant", "dataset_label", "images_per_class", "seed"]]
    return long.merge(meta, on="digest").sort_values(["variant", "digest", "epoch", "block"], ignore_index=True)


def updates(long: pd.DataFrame) -> pd.DataFrame:
    """Policy updates per run at each policy lr, and in all, with the mean entropy at the last epoch."""
    per_epoch = long.drop_duplicates(["digest", "epoch"])
    keys = ["variant", "dataset_label", "images_per_class", "seed"]
    # dropna=False: the whole-dataset row's images_per_class is missing, and a plain grouping would drop it
    table = per_epoch.groupby([*keys, "lr.policy"], dropna=False)["policy_updates"].sum().unstack("lr.policy")
    table.columns = [f"updates at lr {lr:g}" for lr in table.columns]
    table["updates"] = table.sum(axis=1)
    last = last_epoch(long)
    table["last-epoch entropy (bits)"] = last.groupby(keys, dropna=False)["train_entropy"].mean()
    return table.reset_index()


def figure(long: pd.DataFrame):
    """Per variant (rows of panels): the mean entropy of the policy's choice by epoch, and at the last epoch each
    routed block's share sampled onto the fine-tuned copy in training beside the share its argmax sends on val."""
    variants = sorted(long["variant"].unique())
    fig, axes = plt.subplots(len(variants), 2, figsize=(12, 2.8 * len(variants)), squeeze=False)
    for (left, right), name in zip(axes, variants):
        runs = long[long["variant"] == name]
        # one line per run: a seed trains several rows of a dataset, and lines by seed would join them
        entropy = runs.groupby(["dataset_label", "digest", "epoch"], as_index=False)["train_entropy"].mean()
        sns.lineplot(data=entropy, x="epoch", y="train_entropy", hue="dataset_label", units="digest",
                     estimator=None, ax=left)
        left.set(ylim=(0, 1.05), ylabel="entropy (bits)", title=f"{name}: the policy's uncertainty in training")
        last = last_epoch(runs)
        shares = last.melt(id_vars=["block", "dataset_label"], value_vars=["train_usage", "usage"],
                           var_name="measure", value_name="share").replace({"measure": MEASURES})
        sns.pointplot(data=shares.assign(share_pct=shares["share"] * 100), x="block", y="share_pct", hue="measure",
                      linestyle="none", dodge=0.3, errorbar=("pi", 100), ax=right)
        right.set(ylim=(-5, 105), ylabel="through the fine-tuned copy (%)",
                  title="last epoch, per routed block (all rows)")
    fig.tight_layout()
    return fig


def write(fig, folder: Path) -> list[Path]:
    """routing.png and routing.pdf into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    save_fig(fig, folder, "routing")
    plt.close(fig)
    return [folder / "routing.png", folder / "routing.pdf"]
