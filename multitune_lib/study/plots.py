"""The notebooks' figures beside Fig. 2: accuracy per epoch, the share of images SpotTune's policy sends through
each block's fine-tuned copy, and MultiTune's eta sweep. Percent on every axis, each method in its
registered colour (Fig. 2's), intervals from `stats.t_interval`: no bootstrap, so a rerun draws them byte for
byte."""
from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from ..store.results import last_epoch
from .figures import method_style
from .stats import t_interval
from .study import label
from .tables import row_key


def colour(method: str) -> str:
    return method_style(method)["color"]


def up_to_100(grid) -> None:
    """Percent axes from 0, stopping at 100 where an interval over few seeds would pass it."""
    for ax in grid.axes.flat:
        ax.set_ylim(0, min(ax.get_ylim()[1], 100))


def curves(h: pd.DataFrame, method: str):
    """Validation accuracy (%) of `method`'s runs in the history `h` at each validated epoch, a panel per
    dataset: the mean over seeds and its 95% t-interval as a band."""
    d = h[h["method"] == method].dropna(subset=["val_acc"])
    grid = sns.relplot(data=d.assign(val_acc_pct=d["val_acc"] * 100), x="epoch", y="val_acc_pct", col="dataset_label",
                       kind="line", marker="o", errorbar=t_interval, color=colour(method), height=3, aspect=1.4)
    grid.set_titles("{col_name}")
    grid.set_axis_labels("epoch", "validation accuracy (%)")
    up_to_100(grid)
    for ax in grid.axes.flat:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    grid.figure.suptitle(f"{label(method)}: mean over seeds and 95% t-interval", y=1.03)
    return grid.figure


def last_usage(h: pd.DataFrame) -> pd.DataFrame:
    """Per SpotTune run of the history `h` and routed block (1-based), the share (%) of validation images its
    policy's argmax sent through the block's fine-tuned copy at the run's last validation."""
    h = h.dropna(subset=["val_acc"])
    cols = [c for c in h.columns if c.startswith("usage.")]
    if h.empty or not cols:
        return pd.DataFrame(columns=["digest", "dataset_label", "images_per_class", "seed", "block", "share",
                                     "share_pct"])
    last = last_epoch(h)
    long = last.melt(id_vars=["digest", "dataset_label", "images_per_class", "seed"], value_vars=cols,
                     var_name="block", value_name="share").dropna(subset=["share"])
    return long.assign(block=long["block"].str.removeprefix("usage.").astype(int) + 1, share_pct=long["share"] * 100)


def block_shares(usage: pd.DataFrame):
    """`last_usage` as bars, a panel per dataset: the mean over seeds and its 95% t-interval."""
    grid = sns.catplot(data=usage, x="block", y="share_pct", col="dataset_label", kind="bar", errorbar=t_interval,
                       color=colour("spottune"), height=3, aspect=1.6)
    grid.set(ylim=(0, 100))
    grid.set_titles("{col_name}")
    grid.set_axis_labels("block", "through the fine-tuned copy (%)")
    return grid.figure


def eta_sweep(sweep: pd.DataFrame, title: str):
    """MultiTune's final accuracy (%) against eta: the mean over seeds and its 95% t-interval."""
    ax = sns.lineplot(data=sweep, x="eta", y="final_val_acc_pct", marker="o", errorbar=t_interval,
                      color=colour("multitune"))
    ax.set(xlabel="eta (1: network A alone, 0: network B alone)", ylabel="final validation accuracy (%)", title=title)
    ax.set_ylim(0, min(ax.get_ylim()[1], 100))
    return ax.figure


def row_label(images_per_class) -> str:
    return "whole dataset" if pd.isna(images_per_class) else f"{int(images_per_class)} per class"


def rows_in_order(rows: pd.Series) -> list[str]:
    """The rows present as `row_label` names them, in the paper's order: the whole dataset, then fewer images."""
    return [row_label(n) for n in sorted(rows.unique(), key=row_key)]


def curves_by_row(h: pd.DataFrame, methods: list[str]):
    """Validation accuracy (%) per validated epoch of `methods`, a panel per dataset (rows) and images per class
    (columns), each method in its colour: the mean over seeds and its 95% t-interval as a band."""
    h = h.assign(val_acc_pct=h["val_acc"] * 100, row=h["images_per_class"].map(row_label))
    names = [label(m) for m in methods if (h["method"] == m).any()]
    grid = sns.relplot(data=h, x="epoch", y="val_acc_pct", hue="method_label", hue_order=names,
                       palette={label(m): colour(m) for m in methods}, col="row",
                       col_order=rows_in_order(h["images_per_class"]), row="dataset_label", kind="line",
                       errorbar=t_interval, height=2.4, aspect=1.15)
    grid.set_titles("{row_name}, {col_name}")
    grid.set_axis_labels("epoch", "validation accuracy (%)")
    grid.set(ylim=(0, 100))
    grid.legend.set_title("method")
    for (data, row), ax in grid.axes_dict.items():
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_visible(((h["dataset_label"] == data) & (h["row"] == row)).any())  # a row the dataset lacks
    return grid.figure


def usage_by_row(usage: pd.DataFrame):
    """`last_usage` per dataset (panels) and images per class (shades of SpotTune's colour): the mean over seeds
    (no interval: over a few seeds a share's spans most of the axis and hides the bars)."""
    usage = usage.assign(row=usage["images_per_class"].map(row_label))
    order = rows_in_order(usage["images_per_class"])
    shades = sns.light_palette(colour("spottune"), n_colors=len(order) + 1, reverse=True)[:len(order)]
    grid = sns.catplot(data=usage, x="block", y="share_pct", hue="row", hue_order=order, palette=shades,
                       col="dataset_label", kind="bar", errorbar=None, height=3, aspect=1.8)
    grid.set(ylim=(0, 100))
    grid.set_titles("{col_name}")
    grid.set_axis_labels("block", "through the fine-tuned copy (%)")
    grid.legend.set_title("images per class")
    return grid.figure
