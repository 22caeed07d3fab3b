"""Selective joint fine-tuning in the study: its runs on every row of a profile (Aircraft's largest few-shot row
first), paired by seed against fine-tuning (its own baseline), SpotTune and MultiTune; how much of the pool each
round drew on and how many hard target images it found; and, for a few target images, the source images they borrow
from."""
from __future__ import annotations

import dataclasses
import functools

import matplotlib.pyplot as plt
import pandas as pd
import torch

from .. import data
from ..core.fit import load_splits
from ..methods import selective_joint as sj
from .study import Study
from .tables import contrasts

AGAINST = [("selective_joint", "finetune"), ("selective_joint", "spottune"), ("selective_joint", "multitune")]


def queue(study: Study) -> list[tuple[str, int | None, int]]:
    """What to train, in order: the first dataset's largest few-shot row over every seed, then every other row
    seed by seed; (dataset, images per class, seed)."""
    return study.queue([study.profile.first_row()])


def run(study: Study) -> pd.DataFrame:
    """Train what the store lacks (`queue`); returns the main runs' metrics."""
    for dataset, n, seed in queue(study):
        study.run("selective_joint", dataset, n, seed)
    return study.run_all(["selective_joint"], study.profile.rows())


def against(study: Study) -> pd.DataFrame:
    """Selective joint fine-tuning minus each method it answers to, per row at the final epoch, paired by seed."""
    return contrasts(study, AGAINST)


def rounds(study: Study) -> pd.DataFrame:
    """Per main run and round: distinct source images and classes drawn in the round (read at its last epoch), the
    share of the pool they are, and the hard target images found at its start (wrong, uncertain)."""
    h = study.history()
    if h.empty or "sources_used" not in h:
        return pd.DataFrame()
    h = h[(h["method"] == "selective_joint") & h["main"]].dropna(subset=["sources_used"])
    runs = study.runs().set_index("digest")
    out = []
    for digest, g in h.groupby("digest", sort=False):
        cfg = study.config("selective_joint", g["dataset"].iloc[0], None).resolved()
        starts = sj.round_starts(dataclasses.replace(cfg, epochs=int(runs.at[digest, "epochs"])))
        size = pool_size(study, cfg)
        for r, start in enumerate(starts):
            end = starts[r + 1] - 1 if r + 1 < len(starts) else int(g["epoch"].max())
            first, last = g[g["epoch"] == start], g[g["epoch"] == end]
            if last.empty:
                continue
            out.append({"dataset_label": g["dataset_label"].iloc[0], "images_per_class": g["images_per_class"].iloc[0],
                        "seed": g["seed"].iloc[0], "round": r + 1, "epochs": f"{start}-{end}",
                        "sources_used": int(last["sources_used"].iloc[0]),
                        "source_classes_used": int(last["source_classes_used"].iloc[0]),
                        "pool_images": size,
                        "hard_wrong": int(first["hard_wrong"].iloc[0]), "hard_unsure": int(first["hard_unsure"].iloc[0])})
    return pd.DataFrame(out)


def pool_size(study: Study, cfg) -> int:
    """The images of a run's source pool, from the annotations."""
    ann = data.annotations(study.data_root, sj.pool_name(cfg), "train")
    return len(data.select(ann, None, cfg.pool_classes))


def borrowed(study: Study, dataset: str, n: int | None, seed: int, show: int = 4, k: int = 8):
    """For the first `show` target train images of a run's draw: each image and its `k` nearest pool images, as
    the run retrieved them (the retrieval recomputed from the cached descriptors). None without a pool."""
    cfg = study.config("selective_joint", dataset, n, seed).resolved()
    if sj.pool_name(cfg) is None:
        return None
    train, _ = load_splits(cfg, study.data_root)
    more = sj.more_data(cfg, functools.partial(data.load, study.data_root))
    train = data.subset(train, torch.arange(min(show, len(train))))
    # k neighbours only; k0 1 as the config refuses a list shorter than k0
    near = sj.retrieve(dataclasses.replace(cfg, neighbours=k, k0=1), train, more["edges_on"], more["pool"])
    return train, more["pool"], near


def borrowed_figure(train, pool, near):
    """A row per target image: the image (framed), then its nearest pool images, nearest first."""
    rows, k = near.shape
    fig, axes = plt.subplots(rows, k + 1, figsize=(6.9, 6.9 / (k + 1) * rows + 0.3), squeeze=False)
    for i, row in enumerate(axes):
        images = [train.images[i], *pool.images[near[i]]]
        for j, (ax, img) in enumerate(zip(row, images)):
            ax.imshow(img.permute(1, 2, 0).cpu().numpy())
            ax.set_xticks([]), ax.set_yticks([])
            ax.spines[:].set(visible=j == 0, linewidth=2, color="tab:cyan")
    axes[0, 0].set_title("target", fontsize=8)
    axes[0, 1].set_title("nearest source images", fontsize=8, loc="left")
    fig.tight_layout()
    return fig
