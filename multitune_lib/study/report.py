"""Table 3 and Fig. 2 from the results store alone, ours beside the paper's (always labelled as the paper's)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from scipy import stats

from .. import paths
from ..core.method import compared_methods
from ..core.registry import METHODS
from ..store import files
from ..store.results import ResultsStore
from . import profiles
from .study import Study, label


def palette(methods: list[str] | None = None) -> dict[str, str]:
    """Label -> colour of `methods` (default: those Fig. 2 compares), in registration order (legends follow it)."""
    chosen = [m for m in METHODS.items.values() if m.name in methods] if methods else compared_methods()
    return {m.label: m.colour for m in chosen}


class MeanCI(NamedTuple):
    mean: float
    sd: float
    half_width: float  # of the 95% Student-t interval of the mean
    n: int


def mean_ci(values) -> MeanCI:
    """Mean over seeds, its sd and the half-width of its 95% Student-t interval, t(0.975, n - 1) x sd / sqrt(n);
    missing values are left out, and fewer than two values give NaN sd and half-width. Every interval in Table 3,
    the verdict and Fig. 2 comes from here: a paired comparison is this of the per-seed differences."""
    v = pd.Series(values, dtype=float).dropna()
    n = len(v)
    if n < 2:  # one seed has no spread to make an interval from
        return MeanCI(float(v.mean()) if n else math.nan, math.nan, math.nan, n)
    sd = float(v.std())
    return MeanCI(float(v.mean()), sd, float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)), n)


def ci95(values) -> float:
    """`mean_ci`'s half-width alone, for pandas aggregations."""
    return mean_ci(values).half_width


def t_interval(values) -> tuple[float, float]:
    """`mean_ci` as seaborn's `errorbar=` wants it: the interval's (low, high)."""
    m = mean_ci(values)
    return m.mean - m.half_width, m.mean + m.half_width


def paired_p(values) -> float:
    """Two-sided p-value of Student's t-test that the mean of per-seed differences is 0 (NaN under two values);
    from `mean_ci`, so a difference the same in every seed gives 0 rather than scipy's precision warning."""
    m = mean_ci(values)
    if m.n < 2:
        return math.nan
    if m.sd == 0:
        return 1.0 if m.mean == 0 else 0.0
    return float(2 * stats.t.sf(abs(m.mean) * math.sqrt(m.n) / m.sd, m.n - 1))


def holm(p_values) -> pd.Series:
    """Holm's step-down adjustment of a family of p-values (missing ones left out of the family and missing):
    the k-th smallest is multiplied by (m - k + 1), then made non-decreasing and capped at 1."""
    p = pd.Series(p_values, dtype=float)
    ranked = p.dropna().sort_values()
    factor = pd.Series(range(len(ranked), 0, -1), index=ranked.index, dtype=float)
    return (ranked * factor).cummax().clip(upper=1.0).reindex(p.index)


def paper_table3() -> pd.DataFrame:
    """The paper's Table 3; its whole-dataset rows ("all") as missing images per class, as in our configs."""
    paper = pd.read_csv(paths.data_dir() / "paper" / "table3.csv", dtype={"images_per_class": str})
    return paper.assign(images_per_class=pd.to_numeric(paper["images_per_class"].replace("all", None))
                        .astype("Int64"))


def row_key(images_per_class) -> float:
    """Sort key for the paper's row order: the whole dataset (missing), then 20, 15, 10, 5."""
    return -math.inf if pd.isna(images_per_class) else -int(images_per_class)


def shown(t: pd.DataFrame) -> pd.DataFrame:
    """A table as it is written and shown: the whole-dataset rows read "all"."""
    n = t["images_per_class"]
    return t.assign(images_per_class=n.astype(object).where(n.notna(), "all"))


def _names(names: pd.Series) -> str:
    # seeds may have run on different machines or precisions: name them all rather than the first
    return ", ".join(sorted(set(names.dropna())))


# Table 3's two measures: the run metric each reads. The paper reports the best of its 110 epochs.
MEASURES = {"final": "final_val_acc", "best": "best_val_acc"}


def seed_stats(measure: str) -> dict:
    """Named aggregations of one measure (in %) over seeds: mean, sd and 95% t half-width."""
    return {f"ours_{measure}_pct": (measure, "mean"), f"ours_{measure}_sd_pct": (measure, "std"),
            f"ours_{measure}_ci95_pct": (measure, ci95)}


def table3(study: Study) -> pd.DataFrame:
    """Validation accuracy (%) at the final and at the best epoch, each with its mean, sd and 95% t half-width over
    seeds, and total training minutes, per method, dataset and images per class; with the paper's numbers (best
    epoch) and our best epoch's difference from them."""
    runs = study.runs()
    runs = runs[runs["method"].isin(study.methods) & runs["main"]]
    ours = (runs.assign(**{m: runs[metric] * 100 for m, metric in MEASURES.items()})
                .groupby(["dataset", "dataset_label", "images_per_class", "method_label"], as_index=False,
                         dropna=False)
                .agg(**seed_stats("final"), **seed_stats("best"),
                     ours_minutes=("train_minutes", "mean"), seeds=("seed", "nunique"), epochs=("epochs", "max"),
                     device=("env.device_name", _names), precision=("precision", _names)))
    paper = paper_table3().rename(columns={"method": "method_label", "val_accuracy_pct": "paper_best_pct",
                                           "total_minutes": "paper_minutes"})
    t = ours.merge(paper, on=["dataset", "images_per_class", "method_label"], how="left")
    # A difference means something only where our data and source are the paper's; best epoch against best epoch.
    same = t["dataset"].map(lambda d: study.profile.paper_comparable and study.profile.classes(d) is None)
    t["diff_best_vs_paper_pct"] = (t["ours_best_pct"] - t["paper_best_pct"]).where(same)
    t["row_order"] = t["images_per_class"].map(row_key)
    t = t.sort_values(["method_label", "dataset", "row_order"]).drop(columns="row_order").reset_index(drop=True)
    t.insert(0, "profile", study.profile.name)
    return t.rename(columns={"method_label": "method", "dataset_label": "data"})


def _verdict_order(column: pd.Series) -> pd.Series:
    # the paper's row order, and the final epoch before the best
    order = {"images_per_class": row_key, "measure": list(MEASURES).index}.get(column.name)
    return column.map(order) if order else column


def verdict(study: Study, better: str = "multitune", than: str = "spottune") -> pd.DataFrame:
    """Per dataset, row and measure (final epoch, best epoch): `better` minus `than` in validation accuracy
    (points), paired by seed (the same seed draws the same few-shot images), the mean difference with its 95%
    t-interval (`mean_ci` of the per-seed differences), and whether the interval lies above or below 0."""
    runs = study.runs()
    runs = runs[runs["main"] & runs["method"].isin([better, than])]
    runs = runs.rename(columns={metric: m for m, metric in MEASURES.items()})
    keys = ["dataset", "dataset_label", "images_per_class", "measure"]
    long = runs.melt(id_vars=[*keys[:3], "seed", "method"], value_vars=list(MEASURES), var_name="measure",
                     value_name="acc")
    wide = long.pivot_table(index=[*keys, "seed"], columns="method", values="acc", dropna=False)
    if wide.empty or not {better, than} <= set(wide.columns):
        return pd.DataFrame(columns=["data", "images_per_class", "measure", "seeds", "diff_pct", "ci95_pct",
                                     "verdict"])
    d = ((wide[better] - wide[than]) * 100).dropna().rename("diff").reset_index()
    out = d.groupby(keys, as_index=False, dropna=False).agg(seeds=("diff", "count"), diff_pct=("diff", "mean"),
                                                            ci95_pct=("diff", ci95))
    lo, hi = out["diff_pct"] - out["ci95_pct"], out["diff_pct"] + out["ci95_pct"]
    names = label(better), label(than)
    out["verdict"] = ["one seed: no interval" if n < 2 else f"{names[0]} better" if a > 0
                      else f"{names[1]} better" if b < 0 else "within the interval"
                      for n, a, b in zip(out["seeds"], lo, hi)]
    out = out.sort_values(keys, key=_verdict_order).reset_index(drop=True)
    return out.drop(columns="dataset").rename(columns={"dataset_label": "data"})


# each method against what it is built on: MultiTune joins two L2-SP networks, SpotTune routes a fine-tuned one
WHY = [("multitune", "l2sp"), ("spottune", "finetune"), ("l2sp", "finetune")]


def why(study: Study) -> pd.DataFrame:
    """Where MultiTune's lead over SpotTune comes from, at the final epoch, paired by seed as in `verdict`: does
    joining two networks add to the L2-SP both train with (MultiTune - L2-SP), does routing add to fine-tuning
    (SpotTune - fine-tuning), and what L2-SP adds to fine-tuning."""
    return contrasts(study, WHY)


def contrasts(study: Study, pairs) -> pd.DataFrame:
    """`verdict` at the final epoch for each (method, method) of `pairs`, one table with a `contrast` column."""
    parts = [(f"{label(a)} - {label(b)}", verdict(study, a, b)) for a, b in pairs]
    parts = [v[v["measure"] == "final"].assign(contrast=name) for name, v in parts if not v.empty]
    columns = ["data", "images_per_class", "contrast", "seeds", "diff_pct", "ci95_pct", "verdict"]
    if not parts:
        return pd.DataFrame(columns=columns)
    out = pd.concat(parts, ignore_index=True)[columns]
    return out.sort_values(["data", "images_per_class"], key=_verdict_order, kind="stable").reset_index(drop=True)


def markdown(df: pd.DataFrame, floatfmt: str = "{:.2f}") -> str:
    def cell(v):
        if isinstance(v, float):
            return "" if pd.isna(v) else floatfmt.format(v)
        return str(v)
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


TABLE3_COLUMNS = ["data", "images_per_class", "method", "ours_final_pct", "ours_final_sd_pct", "ours_final_ci95_pct",
                  "ours_best_pct", "ours_best_sd_pct", "ours_best_ci95_pct", "paper_best_pct",
                  "diff_best_vs_paper_pct", "ours_minutes", "paper_minutes", "seeds", "epochs", "device", "precision"]


def write_table3(t: pd.DataFrame, folder: Path, profile: profiles.Profile, v: pd.DataFrame | None = None,
                 w: pd.DataFrame | None = None) -> None:
    """table3.csv and table3.md; with `v` (from `verdict`) also verdict.csv and its section in table3.md, and with
    a `w` (from `why`) that holds a row, why.csv and its section."""
    t = shown(t)
    files.write_text(folder / "table3.csv", t.to_csv(index=False))
    head = (f"# Table 3 ({profile.name} profile)\n\n{profile.about}\n\nOurs: validation accuracy (%) at the final "
            "epoch (ours_final_*) and at the best epoch (ours_best_*, the best among the epochs validated on the "
            "whole val split: where only the last one was, it is the final), each the mean over seeds, its standard "
            "deviation and the half-width of its 95% Student-t interval over seeds (blank for one seed); total "
            "training minutes (train + validation) on our device. paper_*: the paper's Table 3 (GTX 1060), not ours; "
            "its accuracy is the best of its 110 epochs, so diff_best_vs_paper_pct compares our best epoch with it "
            "(blank where our data or source are not the paper's).\n\n")
    text = head + markdown(t[TABLE3_COLUMNS])
    if v is not None:
        files.write_text(folder / "verdict.csv", shown(v).to_csv(index=False))
        text += ("\n## Does MultiTune beat SpotTune?\n\nMultiTune minus SpotTune in validation accuracy (points) at "
                 "the final and at the best epoch, paired by seed (a seed draws the same few-shot images for both): "
                 "the mean of the per-seed differences and the half-width of its 95% Student-t interval over seeds; "
                 "a row counts only where the interval excludes 0.\n\n" + markdown(shown(v)))
    if w is not None and not w.empty:
        files.write_text(folder / "why.csv", shown(w).to_csv(index=False))
        text += ("\n## Why?\n\nEach method against what it is built on, at the final epoch, paired by seed as "
                 "above: MultiTune joins two networks that train with L2-SP, SpotTune routes each image through a "
                 "fine-tuned network or its frozen source. Where MultiTune - L2-SP holds 0, joining adds nothing to "
                 "the regulariser; where SpotTune - fine-tuning lies below 0, routing costs accuracy. SpotTune trains "
                 "without L2-SP, so a row whose four methods share their seeds splits the gap above exactly: "
                 "MultiTune - SpotTune = (MultiTune - L2-SP) + (L2-SP - fine-tuning) - (SpotTune - fine-tuning).\n\n"
                 + markdown(shown(w)))
    files.write_text(folder / "table3.md", text)


def fig2(study: Study):
    """Four panels as in the paper: (a) full aircraft, (b) smaller aircraft, (c) full cifar100, (d) smaller cifar100
    (two per dataset of the profile).
    Validation accuracy against epoch, SpotTune blue and MultiTune red; few-shot rows told apart by line style.
    Where every run was validated at its last epoch only, the epoch axis says nothing and its points would hide one
    another, so each panel shows accuracy against images per class instead. Points are means over seeds, bars and
    bands their 95% t-interval (`t_interval`), not the sd: the question is whether the means differ."""
    h = study.history()
    h = h[h["method"].isin([m.name for m in compared_methods()]) & h["main"]].dropna(subset=["val_acc"])
    h = h.assign(val_acc_pct=h["val_acc"] * 100)
    evals = h.groupby("digest").size().max() if len(h) else 0
    datasets = list(study.profile.datasets)[:2]
    fig, axes = plt.subplots(len(datasets), 2, figsize=(11, 4 * len(datasets)), sharex=evals != 1, squeeze=False)
    for i, dataset in enumerate(datasets):
        for j, smaller in enumerate((False, True)):
            ax = axes.flat[2 * i + j]
            ax.set_title(f"({'abcd'[2 * i + j]}) {'smaller ' if smaller else ''}{study.profile.label(dataset)}")
            absent = not (smaller or study.profile.has_row(dataset, study.profile.full_row))
            panel(ax, h[(h["dataset"] == dataset) & (h["full_row"] != smaller)], study.profile, smaller, evals, absent)
    what = "images per class" if evals == 1 else "epoch"
    fig.suptitle(f"Fig. 2 ({study.profile.name} profile): validation accuracy against {what}, "
                 "mean and 95% t-interval over seeds")
    fig.tight_layout()
    return fig


def panel(ax, d: pd.DataFrame, profile: profiles.Profile, smaller: bool, evals: int, absent: bool = False) -> None:
    """One panel of Fig. 2: `evals` is the most validations any run made (1: against images per class); `absent`:
    the profile has no such rows."""
    final_only = evals == 1
    if not final_only:
        ax.set_xlim(0, profile.epochs + 0.5)  # room for a marker on the last epoch
    if d.empty:
        ax.text(0.5, 0.5, "no whole-dataset rows in this profile" if absent else "no runs yet", ha="center",
                transform=ax.transAxes)
        if final_only:  # its own categorical axis would show 0..1 ticks
            ax.set_xticks([])
        return
    # the names seaborn prints in legends and on axes
    d = d.drop(columns="method").rename(columns={"method_label": "method", "images_per_class": "images per class"})
    colours = palette()  # and their order: every panel's legend lists the methods alike
    if final_only:
        sns.pointplot(data=d, x="images per class", y="val_acc_pct", hue="method", palette=colours,
                      hue_order=list(colours), order=sorted(d["images per class"].unique(), key=row_key),
                      errorbar=t_interval, dodge=0.3, linestyle="none", capsize=0.1, ax=ax)
        ax.set_xlabel(f"images per class (validated after epoch {int(d['epoch'].max())} only)")
    else:
        sns.lineplot(data=d, x="epoch", y="val_acc_pct", hue="method", palette=colours, hue_order=list(colours),
                     errorbar=t_interval, ax=ax, marker="o" if evals < 20 else None,
                     **(row_styles(d["images per class"], profile) if smaller else {}))
    ax.set_ylabel("validation accuracy (%)")
    ax.set_ylim(0, min(ax.get_ylim()[1], 100))  # two seeds' interval can pass 100%: the axis stops where accuracy does
    ax.legend(fontsize=8, title=None, handlelength=4)  # long enough to tell the rows' dashes apart


# the profile's few-shot rows in the paper's order: the largest solid, then dashed, dotted, dash-dot, dash-dot-dot
ROW_DASHES = ["", (5, 2), (1, 1.5), (6, 2, 1, 2), (3, 1, 1, 1, 1, 1)]


def row_styles(rows: pd.Series, profile: profiles.Profile) -> dict:
    """lineplot's style arguments for the few-shot rows present: each row keeps one dash pattern in every panel
    and at every stage of a store, where seaborn's default would hand them out by which rows happen to be there."""
    present = set(rows)
    order = [r for r in profile.few_shot_rows if r in present]
    dashes = [ROW_DASHES[profile.few_shot_rows.index(r) % len(ROW_DASHES)] for r in order]
    return {"style": rows.name, "style_order": order, "dashes": dashes}


def save_fig(fig, folder: Path, name: str = "fig2", **savefig) -> None:
    """`name`.png and `name`.pdf into `folder`, each written atomically."""
    # no creation date in the PDF: the same store redraws byte for byte, so a rerun leaves git clean
    for ext, metadata in (("png", {}), ("pdf", {"CreationDate": None})):
        with files.atomic_path(folder / f"{name}.{ext}") as tmp:
            fig.savefig(tmp, format=ext, dpi=150, metadata=metadata, **savefig)


def learning_curves(results: Path) -> pd.DataFrame:
    """Validation accuracy per epoch of every finished run in a store, beside the settings the runs differ in:
    the probe that chose the CPU profile's input size and learning rate (results/lite0-curves)."""
    store = ResultsStore(results)
    runs = store.runs()
    cols = ["digest", "method", "dataset", "images_per_class", "input_size", "lr", "epochs"]
    if runs.empty:
        return pd.DataFrame(columns=[*cols, "epoch", "val_acc", "seconds", "input"])
    h = store.history().drop(columns=["epochs"], errors="ignore").merge(runs[cols], on="digest")
    size = h["input_size"].astype("Int64").astype(object).where(h["input_size"].notna(), 64)
    return h.assign(input=size.map(lambda s: f"{s} px"), val_acc_pct=h["val_acc"] * 100)


def methods_table(t: pd.DataFrame) -> pd.DataFrame:
    """Table 3 as one row per dataset and row, one column per method: final-epoch accuracy, 'mean ± 95% t
    half-width' (%, over seeds)."""
    cell = t.apply(lambda r: f"{r.ours_final_pct:.1f} ± {r.ours_final_ci95_pct:.1f}"
                   if pd.notna(r.ours_final_ci95_pct) else f"{r.ours_final_pct:.1f}", axis=1)
    order = [m.label for m in METHODS.items.values()]
    # dropna=False keeps the whole-dataset rows (a missing images_per_class), but pairs every dataset with every
    # row: drop the pairs with no run
    wide = t.assign(cell=cell).pivot_table(index=["data", "images_per_class"], columns="method", values="cell",
                                           aggfunc="first", dropna=False, sort=False).dropna(how="all")
    wide = wide[[m for m in order if m in wide.columns]].reset_index().rename_axis(columns=None)
    wide["row_order"] = wide["images_per_class"].map(row_key)
    return shown(wide.sort_values(["data", "row_order"]).drop(columns="row_order").reset_index(drop=True))


def write_methods(t: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """methods.md and methods.csv: `methods_table` of Table 3, as the README's results show it."""
    wide = methods_table(t)
    files.write_text(folder / "methods.csv", wide.to_csv(index=False))
    files.write_text(folder / "methods.md", markdown(wide))
    return wide


def block_usage(study: Study) -> pd.DataFrame:
    """SpotTune's share of images routed through the fine-tuned copy of each block at the last validation, per
    dataset and row, averaged over seeds: where fine-tuning was chosen over the source's block."""
    h = study.history()
    h = h[(h["method"] == "spottune") & h["main"]].dropna(subset=["val_acc"])
    usage = [c for c in h.columns if c.startswith("usage.")]
    if h.empty or not usage:
        return pd.DataFrame(columns=["data", "images_per_class", "block", "fine_tuned_share"])
    last = h[h["epoch"] == h.groupby("digest")["epoch"].transform("max")]
    long = last.melt(id_vars=["dataset_label", "images_per_class"], value_vars=usage, var_name="block",
                     value_name="fine_tuned_share").dropna(subset=["fine_tuned_share"])
    long["block"] = long["block"].str.removeprefix("usage.").astype(int) + 1
    return (long.groupby(["dataset_label", "images_per_class", "block"], dropna=False, as_index=False)
            ["fine_tuned_share"].mean().rename(columns={"dataset_label": "data"}))
