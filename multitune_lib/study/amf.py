"""AMF in the study: its runs on every row of a profile, paired by seed against MultiTune (the same two settings
with one fixed eta), SpotTune (per-image routing), fine-tuning (AMF's own claim) and L2-SP (one network under the
same penalty, as "why" asks of MultiTune: does joining networks add anything); a sweep with a third network
(plain fine-tuning) on one row; and what its policy learned, from the per-epoch record of its weights."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch

from ..core.fit import load_splits
from ..store import files
from ..store.results import last_epoch, read_history
from .stats import mean_ci, paired_p
from .study import Study, label
from .tables import contrasts, markdown, row_key

AGAINST = [("amf", "multitune"), ("amf", "spottune"), ("amf", "finetune"), ("amf", "l2sp")]
THREE = ("A", "B", "finetune")  # the sweep: MultiTune's two settings and plain fine-tuning


def sweep_row(study: Study) -> tuple[str, int | None]:
    """The row of the K = 3 sweep: the profile's first dataset at its largest few-shot row."""
    return study.profile.first_row()


def queue(study: Study) -> list[tuple[str, int | None, int, dict]]:
    """What to train, in order: each dataset's largest few-shot row over every seed (the headline comparisons),
    the other rows seed by seed, then the K = 3 sweep; (dataset, images per class, seed, settings)."""
    first = [study.profile.first_row(d) for d in study.profile.datasets]
    dataset, n = sweep_row(study)
    return [(d, m, seed, {}) for d, m, seed in study.queue(first)] + [
        (dataset, n, seed, {"amf_settings": THREE}) for seed in study.seeds]


def run(study: Study) -> pd.DataFrame:
    """Train what the store lacks (`queue`); returns the main runs' metrics."""
    for dataset, n, seed, settings in queue(study):
        study.run("amf", dataset, n, seed, **settings)
    return study.run_all(["amf"], study.profile.rows())


def against(study: Study) -> pd.DataFrame:
    """AMF minus each method it answers to, per row at the final epoch, paired by seed with 95% intervals."""
    return contrasts(study, AGAINST)


def sweep(study: Study) -> pd.DataFrame:
    """On the sweep row, AMF with three networks minus AMF with two (what the third network adds), MultiTune (the
    one-eta join of A and B) and fine-tuning (the third network's recipe alone), paired by seed (final epoch,
    points); a row per contrast, AMF with two networks first."""
    dataset, n = sweep_row(study)
    three = study.final_pct("amf", dataset, n, amf_settings=THREE)
    rows = []
    for method in ("amf", "multitune", "finetune"):
        other = study.final_pct(method, dataset, n)
        diff = three - other
        m = mean_ci(diff)
        rows.append({"data": study.profile.label(dataset), "images_per_class": n,
                     "contrast": f"AMF (K = 3) - {'AMF (K = 2)' if method == 'amf' else label(method)}",
                     "K=3_pct": mean_ci(three).mean, "other_pct": mean_ci(other).mean, "diff_pct": m.mean,
                     "ci95_pct": m.half_width, "p": paired_p(diff), "seeds": m.n})
    return pd.DataFrame(rows)


def sweep_policy(study: Study) -> pd.DataFrame:
    """On the sweep row, each K = 3 run's policy at its last validated epoch: per seed and network (named by its
    setting), the mean weight over the val images, its spread and the share of images weighted most to it."""
    dataset, n = sweep_row(study)
    rows = []
    for seed in study.seeds:
        cfg = study.run_config("amf", dataset, n, seed, amf_settings=THREE)
        if study.store.finished(cfg.digest()) is None:
            continue
        last = read_history(study.store.run_dir(cfg.digest()) / "history.csv").dropna(subset=["val_acc"]).iloc[-1]
        rows += [{"seed": seed, "network": name, "weight": last[f"weight.{k}"], "weight_sd": last[f"weight_sd.{k}"],
                  "share": last[f"share.{k}"]} for k, name in enumerate(THREE)]
    return pd.DataFrame(rows, columns=["seed", "network", "weight", "weight_sd", "share"])


def policy(study: Study) -> pd.DataFrame:
    """Per main AMF run and validated epoch, each network's mean weight, its spread over images, and its share."""
    h = study.history()
    h = h[(h["method"] == "amf") & h["main"]].dropna(subset=["val_acc"])
    cols = [c for c in h.columns if c.split(".")[0] in ("weight", "weight_sd", "share") and c[-1].isdigit()]
    if h.empty or not cols:
        return pd.DataFrame(columns=["digest", "dataset_label", "images_per_class", "seed", "epoch", "network",
                                     "weight", "weight_sd", "share"])
    long = h.melt(id_vars=["digest", "dataset_label", "images_per_class", "seed", "epoch"], value_vars=cols)
    long[["measure", "network"]] = long["variable"].str.split(".", expand=True)
    index = ["digest", "dataset_label", "images_per_class", "seed", "epoch", "network", "measure"]
    # unstack, not pivot_table: its grouping would drop the whole-dataset row, whose images_per_class is missing
    return long.set_index(index)["value"].unstack("measure").reset_index().rename_axis(columns=None)


def policy_figure(long: pd.DataFrame):
    """Network A's mean weight per epoch (B's is one minus it with two networks), a line per row (colour) and seed
    (dash), with the spread of the weight over images as a band of the line's colour: seeds are drawn apart since
    the policy's start, not the data, can decide what it learns."""
    a = long[long["network"] == "0"].sort_values("images_per_class", key=lambda n: n.map(row_key))
    a = a.assign(row=a["images_per_class"].astype("string").fillna("all"))
    rows = a["row"].unique()  # the paper's row order: all, 20, 15, 10, 5
    palette = dict(zip(rows, sns.color_palette(n_colors=len(rows))))
    grid = sns.relplot(data=a, x="epoch", y="weight", hue="row", style="seed", palette=palette, col="dataset_label",
                       kind="line", height=3, aspect=1.4)
    for (data, row, _), r in a.groupby(["dataset_label", "row", "seed"]):
        grid.axes_dict[data].fill_between(r["epoch"], r["weight"] - r["weight_sd"], r["weight"] + r["weight_sd"],
                                          color=palette[row], alpha=0.08)
    grid.set(ylim=(0, 1))
    grid.set_titles("{col_name}")
    grid.set_axis_labels("epoch", "weight of network A (setting A)")
    return grid.figure


def most_split_seed(long: pd.DataFrame, label: str, n: int | None, default: int) -> int:
    """The seed of the row's run whose policy weights vary most over images at its last epoch (network A's spread;
    `policy`'s frame), where the images it weights most to each network say the most; `default` without runs."""
    per_class = long["images_per_class"].astype("Int64")
    on_row = per_class.isna() if n is None else per_class.eq(n).fillna(False)
    row = long[on_row & (long["dataset_label"] == label) & (long["network"] == "0")]
    if row.empty:
        return default
    last = last_epoch(row)
    return int(last.loc[last["weight_sd"].idxmax(), "seed"])


def top_images(study: Study, dataset: str, n: int | None, seed: int) -> dict[str, torch.Tensor]:
    """Per network (named by its setting), the val images the policy weighted most to it at the run's last
    validation, on the whole val split, largest weight first; empty where the store lacks the run or its record."""
    cfg = study.run_config("amf", dataset, n, seed)
    run = study.store.finished(cfg.digest())
    if run is None:
        return {}
    h = read_history(study.store.run_dir(cfg.digest()) / "history.csv")  # this run's alone, in epoch order
    if "top.0" not in h or h["val_images"].iloc[-1] != run["metrics"]["val_images"]:
        return {}
    val = load_splits(cfg, study.data_root)[1]
    return {name: val.images[[int(i) for i in str(h[f"top.{k}"].iloc[-1]).split()]]
            for k, name in enumerate(cfg.resolved().amf_settings)}


def top_figure(top: dict[str, torch.Tensor]):
    """A row of images per network: those its policy weights most, largest weight first."""
    width = max(len(images) for images in top.values())
    fig, axes = plt.subplots(len(top), width, figsize=(6.9, 6.9 / width * len(top) + 0.2), squeeze=False)
    for row, (name, images) in zip(axes, top.items()):
        for j, ax in enumerate(row):
            if j < len(images):
                ax.imshow(images[j].permute(1, 2, 0).cpu().numpy())
            ax.set_xticks([]), ax.set_yticks([])
            ax.spines[:].set_visible(False)
        row[0].set_ylabel(f"setting {name}", fontsize=8)
    fig.tight_layout()
    return fig


def write(table: pd.DataFrame, folder: Path) -> list[Path]:
    """amf.csv and amf.md (AMF against each method, per row) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    files.write_text(folder / "amf.csv", table.to_csv(index=False))
    files.write_text(folder / "amf.md", markdown(table))
    return [folder / "amf.csv", folder / "amf.md"]
