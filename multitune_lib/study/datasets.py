"""The data section (notebook 00): the profile's datasets as annotated, how many images each class holds, how wide
the images are, and what that says in a few sentences."""
from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from .. import data
from .study import Study


def annotations(study: Study) -> dict[tuple[str, str], pd.DataFrame]:
    """(dataset, split) -> one row per image, with its label, width and height."""
    return {(d, s): data.annotations(study.data_root, d, s) for d in study.profile.datasets for s in ("train", "val")}


def per_class(ann: dict) -> pd.DataFrame:
    """One row per dataset, split and class: how many images it holds."""
    return pd.concat([a.groupby("label").size().rename("images").reset_index().assign(dataset=d, split=s)
                      for (d, s), a in ann.items()], ignore_index=True)


def per_class_figure(counts: pd.DataFrame):
    """How many classes hold each number of images, per dataset (rows) and split (columns): bars one image wide
    and an axis a few images either side of the counts, so that 33 and 34 images per class read as such."""
    grid = sns.displot(counts, x="images", row="dataset", col="split", discrete=True, shrink=0.8, height=2.2,
                       aspect=1.8, facet_kws={"sharex": False, "sharey": False})
    for (dataset, split), ax in grid.axes_dict.items():
        n = counts[(counts["dataset"] == dataset) & (counts["split"] == split)]["images"]
        ax.set_xlim(n.min() - 3, n.max() + 3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    grid.set_titles("{row_name}, {col_name}")
    grid.set_axis_labels("images per class", "classes")
    return grid.figure


def sizes(ann: dict) -> pd.DataFrame:
    return pd.concat([a.assign(dataset=d, split=s) for (d, s), a in ann.items()], ignore_index=True)


def width_figure(sized: pd.DataFrame):
    """Image widths per dataset and split, one step per pixel on a log axis: the bulk at one or two widths and the
    few unusual ones both show (a dataset of one width is one step)."""
    grid = sns.displot(sized, x="width", hue="split", col="dataset", discrete=True, element="step", height=3,
                       aspect=1.6, facet_kws={"sharex": False, "sharey": False})
    for dataset, ax in grid.axes_dict.items():
        w = sized[sized["dataset"] == dataset]["width"]
        ax.set_xlim(w.min() - 3, w.max() + 3)
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.7)  # a class of one image still shows
    grid.set_titles("{col_name}")
    grid.set_axis_labels("image width (px)", "images (log scale)")
    return grid.figure
