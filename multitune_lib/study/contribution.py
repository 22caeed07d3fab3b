"""Parameter contribution in the study: its runs on every row of a profile (the largest few-shot rows first),
paired by seed against fine-tuning (its own baseline), SpotTune and MultiTune; its cost (search and final training)
beside its accuracy; a one-row ablation of the ranking criterion; and what the search chose, read from each run's
record of its candidates."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch

from ..core.backbone import create_backbone
from ..core.config import CRITERIA
from ..core.registry import METHODS
from ..store import files
from ..store.checkpoint import load_source
from .stats import mean_ci, paired_p
from .study import Study
from .tables import contrasts, markdown, row_key

AGAINST = [("contribution", "finetune"), ("contribution", "spottune"), ("contribution", "multitune")]
DEFAULT = METHODS.get("contribution").defaults["criterion"]  # the criterion of the main runs


def ablation_row(study: Study) -> tuple[str, int | None]:
    """The criterion ablation's row: the profile's first dataset at its largest few-shot row (imagenet-cpu:
    Aircraft 20)."""
    return study.profile.first_row()


def queue(study: Study) -> list[tuple[str, int | None, int, dict]]:
    """What to train, in order: each dataset's largest few-shot row over every seed, the criterion ablation, then
    the other rows seed by seed; (dataset, images per class, seed, settings)."""
    first = [study.profile.first_row(d) for d in study.profile.datasets]
    main = [(d, n, seed, {}) for d, n, seed in study.queue(first)]
    dataset, n = ablation_row(study)
    criteria = [(dataset, n, seed, {"criterion": c}) for c in CRITERIA if c != DEFAULT for seed in study.seeds]
    return main[:len(first) * len(study.seeds)] + criteria + main[len(first) * len(study.seeds):]


def run(study: Study) -> pd.DataFrame:
    """Train what the store lacks (`queue`); returns the main runs' metrics."""
    for dataset, n, seed, settings in queue(study):
        study.run("contribution", dataset, n, seed, **settings)
    return study.run_all(["contribution"], study.profile.rows())


def against(study: Study) -> pd.DataFrame:
    """Parameter contribution minus each method it answers to, per row at the final epoch, paired by seed."""
    return contrasts(study, AGAINST)


def records(study: Study) -> pd.DataFrame:
    """One row per finished main run and per criterion-ablation run: its row, seed, criterion, accuracy, searched
    ratios, trained share, search score and minutes (search, final training)."""
    runs = study.runs()
    if runs.empty or "searched_ratios" not in runs:
        return pd.DataFrame()
    runs = runs[(runs["method"] == "contribution") & runs["searched_ratios"].notna()]
    # the final run's own setup (the taylor criterion's scoring) counts with its training
    final = runs["train_minutes"] + (runs["setup_minutes"].fillna(0) if "setup_minutes" in runs else 0)
    return runs.assign(final_pct=runs["final_val_acc"] * 100, train_minutes_final=final,
                       total_minutes=final + runs["search_minutes"])


def cost(study: Study, rec: pd.DataFrame) -> pd.DataFrame:
    """Per row (main runs of `records`): accuracy, the share of weights trained, the search's and the final
    training's minutes, and the whole run's minutes against fine-tuning's on the same rows and seeds."""
    runs = study.runs()
    if rec.empty:
        return pd.DataFrame()
    rec = rec[rec["main"]]
    keys = ["dataset", "images_per_class", "seed"]
    ft = runs[runs["main"] & (runs["method"] == "finetune")][[*keys, "train_minutes"]]
    # a merge, not a join: the whole-dataset row's missing images_per_class must match itself
    rec = rec.merge(ft.rename(columns={"train_minutes": "finetune_minutes"}), on=keys, how="left")
    out = rec.groupby(["dataset_label", "images_per_class"], dropna=False, sort=False).agg(
        seeds=("seed", "size"), acc_pct=("final_pct", "mean"), trained_share=("trained_share", "mean"),
        search_minutes=("search_minutes", "mean"), final_minutes=("train_minutes_final", "mean"),
        total_minutes=("total_minutes", "mean"), finetune_minutes=("finetune_minutes", "mean"))
    out = out.assign(times_finetune=out["total_minutes"] / out["finetune_minutes"]).reset_index()
    return out.sort_values(["dataset_label", "images_per_class"], key=lambda c: c.map(row_key) if
                           c.name == "images_per_class" else c, kind="stable").reset_index(drop=True)


def criteria(study: Study) -> pd.DataFrame:
    """On the ablation row: each criterion's final accuracy over the seeds, and paired by seed its difference from
    the released code's rule (signed value) with the 95% interval and p."""
    dataset, n = ablation_row(study)
    acc = {c: study.final_pct("contribution", dataset, n, **({} if c == DEFAULT else {"criterion": c}))
           for c in CRITERIA}
    rows = []
    for c in CRITERIA:
        diff = acc[c] - acc[DEFAULT]
        m, a = mean_ci(diff), mean_ci(acc[c])
        rows.append({"data": study.profile.label(dataset), "images_per_class": n, "criterion": c, "acc_pct": a.mean,
                     "acc_ci95": a.half_width, "vs_signed_value_pct": m.mean, "vs_signed_value_ci95": m.half_width,
                     "p": paired_p(diff), "seeds": a.n})
    return pd.DataFrame(rows)


def searched(rec: pd.DataFrame) -> pd.DataFrame:
    """Long form of every main run's searched ratios (of `records`): one row per run and conv layer."""
    if rec.empty:
        return pd.DataFrame(columns=["dataset_label", "images_per_class", "seed", "layer", "ratio"])
    rec = rec[rec["main"]]
    out = [{"dataset_label": r.dataset_label, "images_per_class": r.images_per_class, "seed": r.seed, "layer": i,
            "ratio": float(x)} for r in rec.itertuples() for i, x in enumerate(r.searched_ratios.split())]
    return pd.DataFrame(out)


def candidates(study: Study, rec: pd.DataFrame) -> pd.DataFrame:
    """Every candidate each main run's search scored (of `records`): iteration, trained share, held-out score (%)."""
    rows = []
    for r in rec[rec["main"]].itertuples() if not rec.empty else []:
        run = study.store.finished(r.digest)
        for i, c in enumerate(run.get("search", {}).get("candidates", [])):
            rows.append({"digest": r.digest, "dataset_label": r.dataset_label, "images_per_class": r.images_per_class,
                         "seed": r.seed, "candidate": i, "iteration": c["iteration"],
                         "trained_share": c["trained_share"], "score_pct": c["score"] * 100})
    return pd.DataFrame(rows)


def source_scores(study: Study) -> pd.DataFrame:
    """Per conv layer of the source network, quantiles of its weights' signed value (the default criterion: what
    it ranks) and of their magnitude; empty without a source."""
    if study.source is None or not study.source.exists():
        return pd.DataFrame()
    with torch.random.fork_rng():
        net = create_backbone(study.profile.backbone, 1)
    net.load_source(load_source(study.source)[0])
    params = dict(net.named_parameters())
    q = torch.tensor([0.05, 0.25, 0.5, 0.75, 0.95])
    rows = []
    for i, layer in enumerate(net.conv_layers()):
        w = params[layer[0]].detach().flatten().float()
        for name, score in (("signed_value", w), ("magnitude", w.abs())):
            rows.append({"layer": i, "criterion": name, "weights": w.numel(),
                         **dict(zip(["q05", "q25", "q50", "q75", "q95"], score.quantile(q).tolist()))})
    return pd.DataFrame(rows)


def scores_figure(scores: pd.DataFrame):
    """Each conv layer's spread of scores: the middle half as a bar, 5-95% as a line, the median as a dot."""
    fig, axes = plt.subplots(1, 2, figsize=(6.9, 2.6), sharex=True)
    for ax, (name, s) in zip(axes, scores.groupby("criterion", sort=False)):
        ax.vlines(s["layer"], s["q05"], s["q95"], color="0.6", linewidth=0.8)
        ax.vlines(s["layer"], s["q25"], s["q75"], color="tab:olive", linewidth=3)
        ax.plot(s["layer"], s["q50"], "k.", markersize=3)
        ax.set(xlabel="conv layer (network order)", ylabel=f"{name.replace('_', ' ')} of the source weights")
    fig.tight_layout()
    return fig


def ratios_figure(long: pd.DataFrame):
    """The searched ratio per conv layer, per row (mean over seeds, the seeds' spread as a band), a panel per
    dataset."""
    long = long.assign(row=long["images_per_class"].astype("string").fillna("all"))
    grid = sns.relplot(data=long, x="layer", y="ratio", hue="row", col="dataset_label", kind="line",
                       errorbar=("pi", 100), height=2.6, aspect=1.3)
    grid.set(ylim=(0, 1))
    grid.set_titles("{col_name}")
    grid.set_axis_labels("conv layer (network order)", "share fine-tuned")
    return grid.figure


def share_figure(cands: pd.DataFrame, rec: pd.DataFrame):
    """Left: every candidate's held-out score against the share of weights it trains (the search's view). Right:
    each main run's final val accuracy against the share its searched ratios train."""
    fig, axes = plt.subplots(1, 2, figsize=(6.9, 2.8))
    row = cands["images_per_class"].astype("string").fillna("all")
    sns.scatterplot(data=cands.assign(row=row), x="trained_share", y="score_pct", hue="row", style="dataset_label",
                    s=12, ax=axes[0], legend=False)
    axes[0].set(xlabel="share of weights fine-tuned", ylabel="held-out score of the proxy (%)")
    main = rec[rec["main"]].assign(row=rec["images_per_class"].astype("string").fillna("all"))
    sns.scatterplot(data=main, x="trained_share", y="final_pct", hue="row", style="dataset_label", ax=axes[1])
    axes[1].set(xlabel="share of weights fine-tuned", ylabel="final val accuracy (%)")
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    return fig


def progress_figure(cands: pd.DataFrame):
    """The search's progress: the best held-out score found by the end of each iteration, a line per run."""
    best = cands.sort_values(["digest", "candidate"])
    best = best.assign(best_pct=best.groupby("digest")["score_pct"].cummax())
    last = best.groupby(["digest", "iteration"], as_index=False).last()
    last = last.assign(row=last["images_per_class"].astype("string").fillna("all"))
    grid = sns.relplot(data=last, x="iteration", y="best_pct", hue="row", units="digest", estimator=None,
                       col="dataset_label", kind="line", marker="o", height=2.6, aspect=1.3)
    grid.set_titles("{col_name}")
    grid.set_axis_labels("search iteration", "best held-out score so far (%)")
    return grid.figure


def write(table: pd.DataFrame, folder: Path, name: str = "contribution") -> list[Path]:
    """`name`.csv and `name`.md into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    files.write_text(folder / f"{name}.csv", table.to_csv(index=False))
    files.write_text(folder / f"{name}.md", markdown(table))
    return [folder / f"{name}.csv", folder / f"{name}.md"]
