"""15 epochs against the paper's 110. The `imagenet-cpu` profile trains every method for 15 epochs on one schedule
(lr x0.1 after epochs 8 and 12); the `imagenet` profile trains the same network, data and seeds for the paper's 110
epochs, each method on its own schedule. A CPU affords 110 epochs on the 5-images-per-class rows (500 training
images x 110 epochs a run), so those are the rows paired here: each method's final and best accuracy under both
schedules (the change paired by seed: a seed draws the same images in both profiles), MultiTune - SpotTune and the
"why" contrasts under each, and both schedules' curves on one axis."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator

from ..store import files
from . import describe
from .figures import FONT, method_style, over_seeds, page_axes, save_fig, whole_split
from .stats import holm, mean_ci
from .study import Study, label
from .tables import WHY, markdown, pm, row_key, shown, verdict

SHORT, LONG = "imagenet-cpu", "imagenet"  # one network, data and seeds: 15 epochs, and the paper's 110
METHODS = ("finetune", "l2sp", "feature", "spottune", "multitune")  # the five the question asks about; AMF aside
ROWS = (5,)  # images per class of the rows a CPU trains at 110 epochs
PAIRS = [("multitune", "spottune"), *WHY]
NOT_YET = "not yet trained"
TABLE = ["dataset", "data", "images_per_class", "method", "epochs", "final_pct", "final_ci95", "best_pct",
         "best_ci95", "best_epochs", "seeds", "change_pct", "change_ci95", "change_seeds"]
DIFFERENCES = ["data", "images_per_class", "contrast", "epochs", "measure", "seeds", "diff_pct", "ci95_pct", "p",
               "p_holm", "ahead", "verdict"]
TICKS = (2, 5, 15, 40, 110)


def pair(study: Study) -> tuple[Study, Study] | None:
    """(the 15-epoch study, the 110-epoch study), one of them `study` and the other reading its own store only,
    with the same data, source, device and seeds; None for a profile outside the pair."""
    name = study.profile.name
    if name not in (SHORT, LONG):
        return None
    other = Study(LONG if name == SHORT else SHORT, study.data_root, study.source, study.device, study.seeds,
                  train=False)
    return (study, other) if name == SHORT else (other, study)


def run(study: Study) -> pd.DataFrame:
    """`study`'s compared runs, as `Study.run_all` returns them: what the store lacks trains on the 110-epoch side
    only (the 15-epoch runs are imagenet-cpu's own, read here); none outside the pair."""
    if study.profile.name not in (SHORT, LONG):
        return study.run_all([], [])
    side = study if study.profile.name == LONG else study.read_only()
    runs = side.run_all(list(METHODS), list(ROWS))
    if side is not study:
        study.log += side.log  # the notebook's tally counts what was read
    return runs


def setup(study: Study) -> str:
    """The notebook's setup: `describe.setup` of its profile, and how much of the twin's side its store holds."""
    twins = pair(study)
    if twins is None:
        return describe.setup(study) + (f"\n\nThe {study.profile.name} profile has no twin under another schedule: "
                                        f"this section pairs {SHORT} (15 epochs) with {LONG} (110 epochs) and has "
                                        "nothing to compare here.")
    other = twins[0] if study is twins[1] else twins[1]
    dry = other.read_only()
    run(dry)
    log = set(dry.log)  # as `describe.pending` counts: a run asked for twice is one run
    found = [d for o, _, d in log if o == "found"]
    held = f" ({describe.precision(other, found)})" if found else ""
    text = describe.setup(study, METHODS, plan=run) + (
        f"\n\nIts twin, the {other.profile.name} profile: {other.profile.epochs} epochs, validated "
        f"{describe.validation(other)}; its store holds {len(found)} of the {len(log)} runs compared{held}.")
    if study.profile.name == SHORT:
        text += f" The {LONG} side trains only where this notebook runs on the {LONG} profile."
    return text


def runs(twins) -> pd.DataFrame:
    """Every compared main run of both schedules: its row, method, seed, epochs, final and best (%), best epoch."""
    parts = []
    for study in twins or ():
        r = study.runs()
        r = r[r["main"] & r["method"].isin(METHODS) & r["images_per_class"].isin(ROWS)]
        best_epoch = r.get("best_epoch", pd.Series(float("nan"), index=r.index))  # absent from an empty store
        parts.append(pd.DataFrame({
            "dataset": r["dataset"], "images_per_class": r["images_per_class"], "method": r["method"],
            "seed": r["seed"], "epochs": study.profile.epochs, "final": r["final_val_acc"] * 100,
            "best": r["best_val_acc"] * 100, "best_epoch": best_epoch}))
    parts = [p for p in parts if not p.empty]
    columns = ["dataset", "images_per_class", "method", "seed", "epochs", "final", "best", "best_epoch"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def table(twins) -> pd.DataFrame:
    """Per compared row, method and schedule: final and best accuracy (%), each a mean with its 95% half-width over
    seeds, the best epochs, the seeds, and at 110 epochs the change from 15 at the final epoch, paired by seed; a
    schedule with no run yet keeps its row, with no seeds."""
    if twins is None:
        return pd.DataFrame(columns=TABLE)
    r, out = runs(twins), []
    for dataset in twins[0].profile.datasets:
        for n in ROWS:
            for method in METHODS:
                cell = r[(r["dataset"] == dataset) & (r["images_per_class"] == n) & (r["method"] == method)]
                first = cell[cell["epochs"] == twins[0].profile.epochs].set_index("seed")["final"]
                out += [entry(twins[0], dataset, n, method, cell), entry(twins[1], dataset, n, method, cell, first)]
    return pd.DataFrame(out, columns=TABLE)


def entry(study: Study, dataset: str, n: int, method: str, cell: pd.DataFrame, first: pd.Series | None = None
          ) -> dict:
    """One row of `table`: `study`'s runs among `cell`'s, and their change from `first` (the 15-epoch finals by
    seed) where it is given."""
    mine = cell[cell["epochs"] == study.profile.epochs]
    final, best = mean_ci(mine["final"]), mean_ci(mine["best"])
    change = mean_ci([] if first is None else (mine.set_index("seed")["final"] - first).dropna())
    epochs = ", ".join(str(int(e)) for e in sorted(mine["best_epoch"].dropna().unique()))
    return {"dataset": dataset, "data": study.profile.label(dataset), "images_per_class": n, "method": method,
            "epochs": study.profile.epochs, "final_pct": final.mean, "final_ci95": final.half_width,
            "best_pct": best.mean, "best_ci95": best.half_width, "best_epochs": epochs, "seeds": final.n,
            "change_pct": change.mean, "change_ci95": change.half_width, "change_seeds": change.n}


def printed(t: pd.DataFrame) -> pd.DataFrame:
    """`table` as a person reads it: accuracy as 'mean ± 95% half-width' (%), the change from 15 epochs in points,
    and 'not yet trained' where a schedule has no run."""
    s, ran = shown(t), t["seeds"] > 0
    return pd.DataFrame({
        "data": s["data"], "images per class": s["images_per_class"], "method": t["method"].map(label),
        "epochs": t["epochs"],
        "final %": [pm(a, h) if r else NOT_YET for a, h, r in zip(t["final_pct"], t["final_ci95"], ran)],
        "best %": [pm(a, h) for a, h in zip(t["best_pct"], t["best_ci95"])], "best epoch": t["best_epochs"],
        "seeds": t["seeds"],
        "final change from 15 epochs (points)": [pm(d, h, signed=True) for d, h in zip(t["change_pct"],
                                                                                      t["change_ci95"])]})


def differences(twins) -> pd.DataFrame:
    """MultiTune - SpotTune (the final epoch and, where it differs, the best) and the "why" contrasts (the final
    epoch) under each schedule on the compared rows, paired by seed as `tables.verdict` pairs them; Holm's family:
    a contrast's compared rows under one schedule."""
    parts = []
    for study in twins or ():
        for better, than in PAIRS:
            v = verdict(study, better, than)
            best_too = (better, than) == PAIRS[0]
            keep = v["images_per_class"].isin(ROWS) & (v["measure"].eq("final") | best_too)
            v = v[keep].assign(contrast=f"{label(better)} - {label(than)}", epochs=study.profile.epochs)
            if not v.empty:
                parts.append(v.assign(p_holm=v.groupby("measure")["p"].transform(holm)))
    return pd.concat(parts, ignore_index=True)[DIFFERENCES] if parts else pd.DataFrame(columns=DIFFERENCES)


def printed_differences(d: pd.DataFrame, twins) -> pd.DataFrame:
    """`differences` with a column per schedule: the difference ± its 95% half-width (points) and its verdict;
    'as the final epoch' where the best epoch was the final one, 'not yet trained' where a schedule has no pair."""
    columns = [f"{s.profile.epochs} epochs" for s in twins or ()]
    keys = ["data", "images_per_class", "contrast", "measure"]
    if d.empty:
        return pd.DataFrame(columns=["data", "images per class", "contrast", "epoch", *columns])
    order = {f"{label(a)} - {label(b)}": i for i, (a, b) in enumerate(PAIRS)}
    s = shown(d.assign(row=d["images_per_class"].map(row_key), order=d["contrast"].map(order),
                       best=d["measure"].eq("best")).sort_values(["data", "row", "order", "best"]))
    s = s.assign(schedule=s["epochs"].map(lambda e: f"{e} epochs"),
                 cell=[f"{pm(m, h, signed=True)} ({v})" for m, h, v in zip(s["diff_pct"], s["ci95_pct"], s["verdict"])])
    wide = s.pivot_table(index=keys, columns="schedule", values="cell", aggfunc="first", sort=False)
    wide = wide.reindex(columns=columns).astype(object)
    finals = wide.xs("final", level="measure").notna()
    for key in wide.index:  # verdict leaves out a best-epoch row that repeats its final one
        for c in columns:
            if pd.isna(wide.at[key, c]):
                same = key[3] == "best" and finals.at[key[:3], c]
                wide.at[key, c] = "as the final epoch" if same else NOT_YET
    out = wide.reset_index().rename(columns={"images_per_class": "images per class", "measure": "epoch"})
    return out.rename_axis(columns=None)


def curves(twins) -> pd.DataFrame:
    """Per validated epoch of every compared main run of both schedules: accuracy (%), the schedule's epochs, and
    whether the whole val split was validated (else a fixed sample)."""
    parts = []
    for study in twins or ():
        h = study.history()
        h = h[h["main"] & h["method"].isin(METHODS) & h["images_per_class"].isin(ROWS)].dropna(subset=["val_acc"])
        parts.append(h.assign(epochs=study.profile.epochs, acc=h["val_acc"] * 100, whole=whole_split(h)))
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["method", "epochs", "acc"])


def figure(twins):
    """Validation accuracy (%) against epoch on a log axis, a panel per compared row (rows of panels) and method
    (columns), both schedules in each: the mean over seeds with its 95% t-interval as a band. Returns (figure,
    caption), the figure None where neither schedule has a run (no empty panel is drawn)."""
    h = curves(twins)
    if h.empty:
        return None, ("No twin under another schedule: nothing to draw." if twins is None else
                      "No run of either schedule on the compared rows yet: nothing to draw.")
    rows = [(d, n) for d in twins[0].profile.datasets for n in ROWS
            if ((h["dataset"] == d) & (h["images_per_class"] == n)).any()]
    with plt.rc_context(FONT):
        fig, axes = page_axes(len(rows), len(METHODS), 0.8 + 1.5 * len(rows))
        for i, (dataset, n) in enumerate(rows):
            for j, method in enumerate(METHODS):
                d = h[(h["dataset"] == dataset) & (h["images_per_class"] == n) & (h["method"] == method)]
                if d.empty:
                    axes[i, j].remove()
                    continue
                panel(axes[i, j], d, method, twins[0].profile.epochs)
                axes[i, j].set_title(label(method) if i == 0 else "")
                axes[i, j].set_xlabel("epoch (log scale)" if i == len(rows) - 1 else "")
            axes[i, 0].set_ylabel(f"{twins[0].profile.label(dataset)}, {n} per class\naccuracy (%)")
        same_scale(fig, axes)
        fig.legend(handles=[Line2D([], [], lw=1, markersize=3, label=f"{s.profile.epochs} epochs ({s.profile.name})",
                                   **schedule_style(s.profile.epochs, twins[0].profile.epochs, "0.2"))
                            for s in twins], loc="outside lower center", ncol=2, frameon=False)
    return fig, caption(twins, h)


def same_scale(fig, axes) -> None:
    """One accuracy scale along each row of panels, so that the methods compare by eye."""
    for row in axes:
        drawn = [ax for ax in row if ax in fig.axes]
        top = min(max(ax.get_ylim()[1] for ax in drawn), 100)
        for ax in drawn:
            ax.set_ylim(0, top)


def schedule_style(epochs: int, short: int, colour: str) -> dict:
    """The short schedule grey, dashed, squares; the long one in the method's colour, solid, circles."""
    if epochs == short:
        return {"color": "0.5", "linestyle": "--", "marker": "s"}
    return {"color": colour, "linestyle": "-", "marker": "o"}


def panel(ax, d: pd.DataFrame, method: str, short: int) -> None:
    """One method on one row: per schedule the mean over seeds at each validated epoch, its 95% t-interval as a
    band, open markers where a val sample was validated and filled ones for the whole split."""
    for epochs, g in d.groupby("epochs"):
        style = schedule_style(epochs, short, method_style(method)["color"])
        stats = [(e, mean_ci(x["acc"]), bool(x["whole"].all())) for e, x in g.groupby("epoch")]
        x = [e for e, _, _ in stats]
        mean = pd.Series([m.mean for _, m, _ in stats])
        half = pd.Series([m.half_width for _, m, _ in stats]).fillna(0)
        ax.plot(x, mean, color=style["color"], linestyle=style["linestyle"], lw=1)
        ax.fill_between(x, mean - half, mean + half, color=style["color"], alpha=0.15, lw=0)
        for whole, face in ((False, "white"), (True, style["color"])):
            on = [w == whole for _, _, w in stats]
            ax.plot([e for e, o in zip(x, on) if o], mean[on], linestyle="none", marker=style["marker"],
                    markersize=3, markeredgecolor=style["color"], markerfacecolor=face)
    ax.set_xscale("log")
    ax.set_xlim(TICKS[0] * 0.85, TICKS[-1] * 1.15)  # the whole 110 epochs, whichever schedules have runs
    ax.set_xticks(TICKS, [str(t) for t in TICKS])
    ax.xaxis.set_minor_locator(NullLocator())


def seeds_per_schedule(h: pd.DataFrame) -> str:
    """How many seeds each schedule's lines average ("3 seeds at 15 epochs and 1 seed at 110 epochs"): the long
    side fills seed by seed, so one count for both would overstate it."""
    return " and ".join(f"{over_seeds(part)} at {epochs} epochs" for epochs, part in h.groupby("epochs"))


def caption(twins, h: pd.DataFrame) -> str:
    """What the schedules figure draws: each side's schedules, seeds and validations, and what is missing."""
    said = [f"{s.profile.name}'s {s.profile.epochs} epochs ({lr_schedules(s)})" for s in twins]
    sample = h.loc[~h["whole"].astype(bool), "val_images"] if "val_images" in h else pd.Series(dtype=float)
    text = (f"Validation accuracy (%) against epoch (log scale) on the {ROWS[0]}-images-per-class rows, a panel per "
            f"method: {said[0]}, grey and dashed, against {said[1]}, solid in the method's colour. Each line is the "
            f"mean over {seeds_per_schedule(h)}, its band the 95% Student-t interval of the mean; filled markers the "
            "whole val split")
    text += f", open ones a fixed sample of {int(sample.max()):,} val images." if len(sample) else "."
    if not (h["epochs"] == twins[1].profile.epochs).any():
        text += (f" The {twins[1].profile.epochs}-epoch runs are {NOT_YET}: only the {twins[0].profile.epochs}-epoch "
                 "curves are drawn.")
    return text


def lr_schedules(study: Study) -> str:
    """'lr x0.1 at epochs 8 and 12 for every method', or each schedule with the methods that follow it."""
    by: dict[str, list[str]] = {}
    for m in METHODS:
        cfg = study.config(m, next(iter(study.profile.datasets)), ROWS[0]).resolved()
        by.setdefault(describe.schedule(cfg), []).append(label(m))
    if len(by) == 1:
        return f"{next(iter(by))} for every method"
    return "; ".join(f"{schedule} for {describe.words(names)}" for schedule, names in by.items())


HEAD = "# 15 against 110 epochs ({short} and {long} profiles)\n\n"


def write(t: pd.DataFrame, d: pd.DataFrame, fig, figure_caption: str, twins, folder: Path) -> list[Path]:
    """schedules.csv (`table`, full precision), schedules_differences.csv (`differences`), schedules.md (both as
    printed, with their captions) and, with a figure, schedules.png and .pdf into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    files.write_text(folder / "schedules.csv", shown(t).to_csv(index=False))
    files.write_text(folder / "schedules_differences.csv", shown(d).to_csv(index=False))
    text = HEAD.format(short=twins[0].profile.name, long=twins[1].profile.name) + __doc__.split("\n\n")[0] + "\n\n"
    text += (TABLE_CAPTION + "\n\n" + markdown(printed(t)) + "\n## MultiTune - SpotTune, and why, "
             "under each schedule\n\n" + DIFFERENCES_CAPTION + "\n\n" + markdown(printed_differences(d, twins)))
    wrote = [folder / f"schedules{e}" for e in (".csv", "_differences.csv", ".md")]
    if fig is not None:
        text += f"\n## The curves\n\n![schedules](schedules.png)\n\n{figure_caption}\n"
        save_fig(fig, folder, "schedules")
        wrote += [folder / "schedules.png", folder / "schedules.pdf"]
    files.write_text(folder / "schedules.md", text)
    return wrote


TABLE_CAPTION = ("Validation accuracy (%) at the final and at the best epoch, the mean over seeds ± the half-width of "
                 "its 95% Student-t interval; best epoch: each seed's best among the epochs validated on the whole "
                 "val split; the change from 15 epochs: the 110-epoch final minus the 15-epoch final, paired by "
                 "seed, in points.")
DIFFERENCES_CAPTION = ("Each contrast in validation accuracy (points), paired by seed (a seed draws the same images "
                       "for every method), under each schedule: the mean of the per-seed differences ± the half-width "
                       "of its 95% Student-t interval, and the verdict its own interval reads; MultiTune - SpotTune at "
                       "the final epoch and, where it differs, the best (schedules_differences.csv adds the paired "
                       "t-test's p and its Holm adjustment over the compared rows). The paired gap splits exactly: "
                       "MultiTune - SpotTune = (MultiTune - L2-SP) + (L2-SP - fine-tuning) - (SpotTune - "
                       "fine-tuning).")
