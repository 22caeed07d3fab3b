"""Fig. 2 and accuracy against images per class, from the results store alone, drawn for a page: 6.9 in wide, no
text under 7 pt, each method in its registered colour with a marker and a line style of its own (greyscale still
tells them apart), one legend below the panels, and the caption returned beside the figure rather than drawn in it.
`save_fig` writes every figure of the study."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from ..core.method import compared_methods
from ..core.registry import METHODS
from ..store import files
from ..store.results import ResultsStore
from .stats import mean_ci
from .study import Study, label
from .tables import plural, row_key

PAGE_WIDTH = 6.9  # inches: the full width of a two-column page
FONT = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
        "legend.fontsize": 7, "figure.labelsize": 8}
# TrueType (Type 42) fonts in every PDF: publishers refuse Type 3 fonts, and their text cannot be searched
PDF_FONTS = {"pdf.fonttype": 42, "ps.fonttype": 42}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", "h")
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (10, 3)), (0, (3, 1, 1, 1, 1, 1, 1, 1)),
              (0, (1, 3)), (0, (8, 2, 2, 2)))
# methods set apart sideways so that no bar hides another: a share of the space between two rows (DODGE), of the
# epoch axis (CURVE_DODGE)
DODGE, CURVE_DODGE = 0.08, 0.05


def palette(methods: list[str] | None = None) -> dict[str, str]:
    """Label -> colour of `methods` (default: those Fig. 2 compares), in registration order (legends follow it)."""
    chosen = [m for m in METHODS.items.values() if m.name in methods] if methods else compared_methods()
    return {m.label: m.colour for m in chosen}


def method_style(name: str) -> dict:
    """A method's colour (from its registration), marker and line style, the same in every figure: the compared
    methods take the plainest, the others follow in registration order."""
    compared = [m.name for m in compared_methods()]
    i = (compared + [n for n in METHODS if n not in compared]).index(name)
    return {"color": METHODS.get(name).colour, "marker": MARKERS[i % len(MARKERS)],
            "linestyle": LINESTYLES[i % len(LINESTYLES)]}


def legend(fig, names: list[str]) -> None:
    """The figure's one legend, below its panels."""
    handles = [Line2D([], [], lw=1, markersize=4, label=label(n), **method_style(n)) for n in names]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize=7,
               handlelength=3)


def row_name(images_per_class) -> str:
    return "whole dataset" if pd.isna(images_per_class) else f"{int(images_per_class)} per class"


def missing(study: Study, data: pd.DataFrame, what: str) -> str:
    """A sentence naming each (dataset, row) of the profile that `data` has no run of, and why: the caption's, as
    a figure draws no empty panel or point."""
    p, have = study.profile, set(zip(data["dataset"], data["images_per_class"].map(row_key)))
    absent = [f"{p.label(d)}, {row_name(n)} ({'no runs yet' if p.has_row(d, n) else 'not in the profile'})"
              for d in p.datasets for n in p.rows() if (d, row_key(n)) not in have]
    return f" No {what} for {'; '.join(absent)}." if absent else ""


def over_seeds(data: pd.DataFrame) -> str:
    n = data.groupby(["method", "dataset", "images_per_class"], dropna=False)["seed"].nunique()
    low, high = int(n.min()), int(n.max())
    return plural(low, "seed") if low == high else f"{low} to {high} seeds"


def page_axes(n_rows: int, n_cols: int, height: float):
    """A page-wide figure and its grid of axes, text sized for print."""
    fig = plt.figure(figsize=(PAGE_WIDTH, height), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for ax in axes.flat:
        ax.tick_params(labelsize=7)
    return fig, axes


def whole_split(h: pd.DataFrame) -> pd.Series:
    """True where an epoch was validated on the whole val split: as many images as its run's last validation."""
    if "val_images" not in h:  # runs from before curves could be validated on a sample saw the whole split
        return pd.Series(True, index=h.index)
    last = h.sort_values("epoch").groupby("digest")["val_images"].transform("last")
    return h["val_images"].isna() | h["val_images"].eq(last)


def fig2(study: Study):
    """Fig. 2 as the paper draws it: validation accuracy (%) of SpotTune and MultiTune against epoch, a panel per
    dataset (rows of panels) and images per class (columns), only those the store has runs of. Where every run was
    validated after its last epoch only, against images per class instead (`accuracy_by_row` of the two).
    Returns (figure, caption): the caption says which points saw which val images and names the missing panels."""
    compared, h = [m.name for m in compared_methods()], study.history()
    h = h[h["method"].isin(compared) & h["main"]].dropna(subset=["val_acc"])
    h = h.assign(val_acc_pct=h["val_acc"] * 100, whole=whole_split(h))
    if h.empty:
        return by_row(study, compared)
    if h.groupby("digest").size().max() == 1:
        fig, caption = by_row(study, compared)
        return fig, (f"Fig. 2 ({study.profile.name} profile): every run was validated after its last epoch only, so "
                     f"accuracy is drawn against images per class rather than epoch. {caption}")
    with plt.rc_context(FONT):
        fig, panels = fig2_panels(study, h)
        for (dataset, n), ax in panels.items():
            curve_panel(ax, h[(h["dataset"] == dataset) & (h["images_per_class"].map(row_key) == row_key(n))],
                        study.profile.epochs)
        legend(fig, [n for n in compared if n in set(h["method"])])
    return fig, fig2_caption(study, h)


def fig2_panels(study: Study, h: pd.DataFrame):
    """The figure and its axes by (dataset, row): a row of panels per dataset, a column per images per class; a
    grid cell whose dataset lacks that row is left blank, not drawn as an empty panel."""
    p, have = study.profile, set(zip(h["dataset"], h["images_per_class"].map(row_key)))
    datasets = [d for d in p.datasets if any(d == hd for hd, _ in have)]
    rows = [n for n in p.rows() if any(row_key(n) == hn for _, hn in have)]
    fig, axes = page_axes(len(datasets), len(rows), 0.6 + 1.45 * len(datasets))
    panels = {}
    for i, dataset in enumerate(datasets):
        named = False  # the first panel of a row names its dataset
        for j, n in enumerate(rows):
            if (dataset, row_key(n)) not in have:
                axes[i, j].remove()
                continue
            ax = panels[(dataset, n)] = axes[i, j]
            ax.set_title(row_name(n))
            if not named:
                ax.set_ylabel(f"{p.label(dataset)}\naccuracy (%)")
                named = True
    for (dataset, n), ax in panels.items():  # the lowest panel of each column says what its x axis is
        if not any(k[1] == n and datasets.index(k[0]) > datasets.index(dataset) for k in panels):
            ax.set_xlabel("epoch")
    return fig, panels


def curve_panel(ax, d: pd.DataFrame, epochs: int) -> None:
    """One panel of Fig. 2: per method, the mean over seeds at each validated epoch (open markers: the val sample;
    filled: the whole split), the 95% t-interval as a bar at the last epoch."""
    names = [m.name for m in compared_methods() if m.name in set(d["method"])]
    for k, name in enumerate(names):
        m, style = d[d["method"] == name], method_style(name)
        g = m.groupby("epoch").agg(acc=("val_acc_pct", "mean"), whole=("whole", "all"))
        x = g.index.to_numpy() + (k - (len(names) - 1) / 2) * CURVE_DODGE * epochs  # the last bars apart
        ax.plot(x, g["acc"], color=style["color"], linestyle=style["linestyle"], lw=1)
        for whole, face in ((False, "white"), (True, style["color"])):
            on = (g["whole"] == whole).to_numpy()
            ax.plot(x[on], g["acc"][on], linestyle="none", marker=style["marker"], markersize=3.5,
                    markeredgecolor=style["color"], markerfacecolor=face, markevery=max(1, on.sum() // 12))
        last = mean_ci(m.loc[m["epoch"] == m["epoch"].max(), "val_acc_pct"])
        ax.errorbar(x[-1], last.mean, yerr=last.half_width, fmt="none", ecolor=style["color"], elinewidth=0.8,
                    capsize=2)
    ax.set_xlim(0, epochs + 1)
    ticks = MaxNLocator(4, steps=[1, 2, 5, 10], integer=True).tick_values(0, epochs)
    ax.set_xticks([t for t in ticks if t <= epochs])
    ax.set_ylim(0, min(ax.get_ylim()[1], 100))  # a wide interval can pass 100%: the axis stops where accuracy does


def every(n: int) -> str:
    return "epoch" if n == 1 else f"{n} epochs"


def fig2_caption(study: Study, h: pd.DataFrame) -> str:
    p = study.profile
    sample = h.loc[~h["whole"]].get("val_images", pd.Series(dtype=float))
    whole = sorted(int(e) for e in h.loc[h["whole"], "epoch"].unique())
    text = (f"Fig. 2 ({p.name} profile): validation accuracy (%) of SpotTune and MultiTune against epoch, a panel per "
            f"dataset and images per class; each line the mean over {over_seeds(h)}. ")
    if len(sample):
        text += (f"Open markers: a fixed sample of {int(sample.max()):,} val images (the profile's curve_val_images), "
                 f"validated every {every(p.eval_every)}; filled markers: the whole val split "
                 f"(epoch{'s' * (len(whole) > 1)} {', '.join(map(str, whole))})")
    else:
        text += f"Every point is the whole val split, validated every {every(p.eval_every)} and after the last"
    return (text + "; the bar at the last epoch: the 95% Student-t interval of the mean over seeds. Methods are set "
            "a little apart sideways." + missing(study, h, "panel"))


def accuracy_by_row(study: Study):
    """Final-epoch validation accuracy (%) against images per class, every method of the profile, a panel per
    dataset: the mean over seeds with its 95% t-interval as bars. Returns (figure, caption)."""
    return by_row(study, study.methods)


def by_row(study: Study, methods: list[str]):
    """`accuracy_by_row` of `methods` (legend in registration order)."""
    runs = study.runs()
    runs = runs[runs["main"] & runs["method"].isin(methods)].dropna(subset=["final_val_acc"])
    runs = runs.assign(acc=runs["final_val_acc"] * 100)
    datasets = [d for d in study.profile.datasets if (runs["dataset"] == d).any()]
    names = [n for n in METHODS if (runs["method"] == n).any()]
    if not datasets:
        return plt.figure(figsize=(PAGE_WIDTH, 1)), f"No finished run of {', '.join(map(label, methods))} yet."
    with plt.rc_context(FONT):
        fig, axes = page_axes(1, len(datasets), 2.8)
        for ax, dataset in zip(axes[0], datasets):
            by_row_panel(ax, runs[runs["dataset"] == dataset], names)
            ax.set_title(study.profile.label(dataset))
            ax.set_xlabel("images per class")
        axes[0, 0].set_ylabel("validation accuracy (%)")
        legend(fig, names)
    whole = " (all: the whole train split)" if runs["images_per_class"].isna().any() else ""
    caption = (f"Final-epoch validation accuracy (%) on the whole val split against images per class{whole}, "
               f"{study.profile.name} profile; each point the mean over {over_seeds(runs)}, its bar the 95% "
               "Student-t interval of the mean. Methods are set a little apart sideways so that no bar hides another.")
    return fig, caption + missing(study, runs, "point")


def by_row_panel(ax, runs: pd.DataFrame, names: list[str]) -> None:
    """One dataset: x the rows from fewest images per class to the whole dataset, a line of points per method."""
    rows = sorted(runs["images_per_class"].unique(), key=row_key, reverse=True)
    position = {row_key(n): i for i, n in enumerate(rows)}
    for k, name in enumerate(names):
        m = runs[runs["method"] == name]
        points = sorted((position[row_key(n)], mean_ci(g["acc"])) for n, g in
                        m.groupby("images_per_class", dropna=False))
        if not points:
            continue
        x = [i + (k - (len(names) - 1) / 2) * DODGE for i, _ in points]
        ax.errorbar(x, [c.mean for _, c in points], yerr=[c.half_width for _, c in points], markersize=3.5, lw=1,
                    elinewidth=0.8, capsize=2, **method_style(name))
    ax.set_xticks(range(len(rows)), ["all" if pd.isna(n) else str(int(n)) for n in rows])
    ax.set_ylim(0, min(ax.get_ylim()[1], 100))


def save_fig(fig, folder: Path, name: str = "fig2", **savefig) -> None:
    """`name`.png and `name`.pdf into `folder`, each written atomically, the PDF's fonts TrueType."""
    # no creation date in the PDF, no software version in the PNG: the same store redraws byte for byte
    for ext, metadata in (("png", {"Software": None}), ("pdf", {"CreationDate": None})):
        with plt.rc_context(PDF_FONTS), files.atomic_path(folder / f"{name}.{ext}") as tmp:
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
