"""Table 3 from the results store alone, ours beside the paper's (always labelled as the paper's), the verdict
(MultiTune minus SpotTune, paired by seed), the contrasts that say why, and every method side by side.

The CSVs keep full precision for machines. The markdown, and the frames the `printed_*` functions return for the
notebooks, are what a person reads: the paper's row order, accuracy to one decimal (the narrowest 95% intervals
over seeds are a few tenths of a point), whole minutes, and no column that would say the same in every row (the
caption says it once)."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .. import paths
from ..core.method import compared_methods
from ..core.registry import METHODS
from ..store import files
from ..store.results import last_epoch
from . import profiles
from .stats import ci95, holm, paired_p
from .study import Study, label


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
    epoch) and our best epoch's difference from them. Full precision: `printed_table3` rounds it for reading."""
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


ROW = ["dataset", "dataset_label", "images_per_class"]
VERDICT_COLUMNS = ["data", "images_per_class", "measure", "seeds", "diff_pct", "ci95_pct", "p", "p_holm", "ahead",
                   "verdict"]


def _verdict_order(column: pd.Series) -> pd.Series:
    # the paper's row order, and the final epoch before the best
    order = {"images_per_class": row_key, "measure": list(MEASURES).index}.get(column.name)
    return column.map(order) if order else column


def differences(study: Study, better: str, than: str) -> pd.DataFrame:
    """Per dataset, row, measure and seed: `better` minus `than` in validation accuracy (points), from the main
    runs; a seed pairs the two (it draws the same few-shot images for both)."""
    runs = study.runs()
    runs = runs[runs["main"] & runs["method"].isin([better, than])]
    runs = runs.rename(columns={metric: m for m, metric in MEASURES.items()})
    long = runs.melt(id_vars=[*ROW, "seed", "method"], value_vars=list(MEASURES), var_name="measure",
                     value_name="acc")
    wide = long.pivot_table(index=[*ROW, "measure", "seed"], columns="method", values="acc", dropna=False)
    if wide.empty or not {better, than} <= set(wide.columns):
        return pd.DataFrame(columns=[*ROW, "measure", "seed", "diff"])
    return ((wide[better] - wide[than]) * 100).dropna().rename("diff").reset_index()


def verdict(study: Study, better: str = "multitune", than: str = "spottune") -> pd.DataFrame:
    """Per dataset and row: `better` minus `than` in validation accuracy (points) at the final epoch, paired by seed:
    the mean difference with its 95% t-interval (`mean_ci` of the per-seed differences) and whether that interval
    lies above or below 0, the paired t-test's p-value and its Holm adjustment over the rows (each row one test of
    the family), and in how many seeds `better` is ahead. A best-epoch row follows only where its numbers are not
    the final epoch's (Holm's family: the best-epoch rows)."""
    d = differences(study, better, than)
    if d.empty:
        return pd.DataFrame(columns=VERDICT_COLUMNS)
    out = d.groupby([*ROW, "measure"], as_index=False, dropna=False).agg(
        seeds=("diff", "count"), diff_pct=("diff", "mean"), ci95_pct=("diff", ci95), p=("diff", paired_p),
        ahead=("diff", lambda x: int((x > 0).sum())))
    out = out[~_repeats_final(out)].copy()
    out["p_holm"] = out.groupby("measure")["p"].transform(holm)
    names = label(better), label(than)
    out["verdict"] = [reading(n, m, h, names) for n, m, h in zip(out["seeds"], out["diff_pct"], out["ci95_pct"])]
    out = out.sort_values([*ROW, "measure"], key=_verdict_order).reset_index(drop=True)
    return out.rename(columns={"dataset_label": "data"})[VERDICT_COLUMNS]


def _repeats_final(out: pd.DataFrame) -> pd.Series:
    """True for a best-epoch row whose numbers are its final-epoch row's: the best epoch was the final one."""
    final = out.loc[out["measure"] == "final", [*ROW, "diff_pct", "ci95_pct"]]
    both = out.merge(final, on=ROW, how="left", suffixes=("", "_final"))  # keeps `out`'s order
    same = (both["diff_pct"] == both["diff_pct_final"]) & (
        (both["ci95_pct"] == both["ci95_pct_final"]) | (both["ci95_pct"].isna() & both["ci95_pct_final"].isna()))
    return pd.Series((both["measure"] == "best").to_numpy() & same.to_numpy(), index=out.index)


def reading(seeds: int, diff: float, half: float, names: tuple[str, str]) -> str:
    """Which method the row's own 95% interval favours, if it excludes 0."""
    if seeds < 2:
        return "one seed: no interval"
    if diff - half > 0:
        return f"{names[0]} better"
    return f"{names[1]} better" if diff + half < 0 else "within the interval"


# each method against what it is built on: MultiTune joins two L2-SP networks, SpotTune routes a fine-tuned one
WHY = [("multitune", "l2sp"), ("spottune", "finetune"), ("l2sp", "finetune")]


def why(study: Study) -> pd.DataFrame:
    """Where MultiTune's lead over SpotTune comes from, at the final epoch, paired by seed as in `verdict`: does
    joining two networks add to the L2-SP both train with (MultiTune - L2-SP), does routing add to fine-tuning
    (SpotTune - fine-tuning), and what L2-SP adds to fine-tuning."""
    return contrasts(study, WHY)


def contrasts(study: Study, pairs) -> pd.DataFrame:
    """`verdict` at the final epoch for each (method, method) of `pairs`, one table with a `contrast` column; Holm's
    family is each contrast's rows."""
    parts = [(f"{label(a)} - {label(b)}", verdict(study, a, b)) for a, b in pairs]
    parts = [v[v["measure"] == "final"].assign(contrast=name) for name, v in parts if not v.empty]
    columns = ["data", "images_per_class", "contrast", *VERDICT_COLUMNS[3:]]
    if not parts:
        return pd.DataFrame(columns=columns)
    out = pd.concat(parts, ignore_index=True)[columns]
    return out.sort_values(["data", "images_per_class"], key=_verdict_order, kind="stable").reset_index(drop=True)


def markdown(df: pd.DataFrame, floatfmt: str = "{:.2f}") -> str:
    def cell(v):
        if isinstance(v, float):
            return "" if pd.isna(v) else floatfmt.format(v)
        return str(v)
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def pm(mean: float, half: float, signed: bool = False) -> str:
    """'mean ± 95% half-width' to one decimal; the mean alone where one seed gives no interval, blank without runs."""
    if pd.isna(mean):
        return ""
    text = f"{mean:+.1f}" if signed else f"{mean:.1f}"
    return text if pd.isna(half) else f"{text} ± {half:.1f}"


def minutes(m: float) -> str:
    """Whole minutes: seeds of one row differ by more than a minute in time on a shared machine."""
    return "" if pd.isna(m) else "< 1" if m < 1 else f"{m:.0f}"


def paper_number(v: float) -> str:
    """A number of the paper's Table 3 as the paper prints it: two decimals."""
    return "" if pd.isna(v) else f"{v:.2f}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def p_value(p: float) -> str:
    return "" if pd.isna(p) else "< 0.001" if p < 0.001 else f"{p:.2g}"


ROW_INDEX = ["data", "images per class"]


def _rows(t: pd.DataFrame) -> pd.MultiIndex:
    """(data, images per class as shown) of every row of `t`, in the paper's order."""
    r = t[["dataset", "data", "images_per_class"]].drop_duplicates()
    r = shown(r.assign(order=r["images_per_class"].map(row_key)).sort_values(["dataset", "order"]))
    return pd.MultiIndex.from_frame(r[["data", "images_per_class"]], names=ROW_INDEX)


def _method_columns(r: pd.DataFrame, method: str) -> dict:
    """One compared method's columns of the printed Table 3, from its rows of `table3` indexed like the table."""
    best = r["ours_best_pct"].notna() & r["ours_best_pct"].ne(r["ours_final_pct"])
    return {f"{method} %": [pm(a, h) for a, h in zip(r["ours_final_pct"], r["ours_final_ci95_pct"])],
            f"{method} best %": [pm(a, h) if b else "" for a, h, b in
                                 zip(r["ours_best_pct"], r["ours_best_ci95_pct"], best)],
            f"{method} paper %": r["paper_best_pct"].map(paper_number).tolist(),
            f"{method} best - paper": [pm(d, math.nan, signed=True) for d in r["diff_best_vs_paper_pct"]],
            f"{method} min": r["ours_minutes"].map(minutes).tolist(),
            f"{method} paper min": r["paper_minutes"].map(paper_number).tolist(),
            f"{method} seeds": r["seeds"].map(lambda n: "" if pd.isna(n) else str(int(n))).tolist()}


def printed_table3(t: pd.DataFrame) -> pd.DataFrame:
    """Table 3 as a person reads it: a row per dataset and images per class in the paper's order, SpotTune and
    MultiTune side by side, each with our final-epoch accuracy (mean ± 95% half-width over seeds, %) and minutes
    beside the paper's. A best-epoch column only where some row's best epoch is not its final one, our best minus
    the paper's only where they compare, seeds only where rows differ in them: `table3_caption` says the rest."""
    compared = [m.label for m in compared_methods() if m.label in set(t["method"])]
    t = t[t["method"].isin(compared)]
    rows = _rows(t)
    columns = {}
    for method in compared:
        r = shown(t[t["method"] == method]).set_index(["data", "images_per_class"])
        columns |= _method_columns(r.rename_axis(ROW_INDEX).reindex(rows), method)
    wide = _without_blank_columns(pd.DataFrame(columns, index=rows))
    return wide[[c for c in wide.columns if not (c.endswith(" seeds") and _constant(t, "seeds"))]]


def _constant(t: pd.DataFrame, column: str) -> bool:
    return t[column].nunique(dropna=False) <= 1


def _without_blank_columns(frame: pd.DataFrame) -> pd.DataFrame:
    # a column blank in every row (no paper numbers for these rows, no p-value for one seed) says nothing
    return frame[[c for c in frame.columns if frame[c].ne("").any()]]


def _is_compared(t: pd.DataFrame) -> pd.Series:
    """The rows of Table 3's own methods (SpotTune, MultiTune); the rest are the profile's other methods."""
    return t["method"].isin([m.label for m in compared_methods()])


def printed_others(t: pd.DataFrame) -> pd.DataFrame:
    """The profile's methods besides SpotTune and MultiTune (fine-tuning, L2-SP, ...), one column each:
    final-epoch accuracy, mean ± 95% half-width over seeds (%); empty where the profile has none."""
    others = t[~_is_compared(t)]
    if others.empty:
        return pd.DataFrame(index=pd.MultiIndex.from_tuples([], names=ROW_INDEX))
    wide = methods_table(others).rename(columns={"images_per_class": ROW_INDEX[1]})
    return wide.set_index(ROW_INDEX)


def _union(values: pd.Series) -> str:
    # device and precision cells already list every seed's, joined: the table's is the union of theirs
    return ", ".join(sorted({part for v in values.dropna() for part in str(v).split(", ")})) or "unknown"


def _seeds(t: pd.DataFrame, varying: str) -> str:
    """'3 seeds' where every row has as many, else `varying`."""
    return plural(int(t["seeds"].iloc[0]), "seed") if _constant(t, "seeds") else varying


def others_caption(t: pd.DataFrame) -> str:
    """The caption of `printed_others`: its seeds, devices and precisions are its own, not Table 3's."""
    others = t[~_is_compared(t)]
    seeds = _seeds(others, f"{int(others['seeds'].min())} to {int(others['seeds'].max())} seeds (one seed: no ±)")
    return ("Our final-epoch validation accuracy (%) of the profile's other methods, mean ± the half-width of its "
            f"95% Student-t interval over {seeds}, on {_union(others['device'])}, precision "
            f"{_union(others['precision'])}.")


def table3_caption(t: pd.DataFrame) -> str:
    """What `printed_table3` says once instead of in a column: the epoch, the seeds, device and precision, what
    its paper columns are, and whether the best epoch departs from the final."""
    if t.empty:
        return "No finished run of this profile in the store yet."
    compared = t[_is_compared(t)]  # the printed table's columns
    shown = t if compared.empty else compared
    epochs = ", ".join(str(int(e)) for e in sorted(shown["epochs"].dropna().unique()))
    text = (f"Our validation accuracy (%) at the final epoch ({epochs}), mean ± the half-width of its 95% Student-t "
            f"interval over {_seeds(shown, 'seeds (the seeds columns)')}, and training minutes (training and "
            f"validation, mean over seeds) on {_union(shown['device'])}, precision {_union(shown['precision'])}.")
    if t["paper_best_pct"].notna().any():
        text += (" Columns marked paper are the paper's Table 3 (a GTX 1060, the best of its 110 epochs), not ours, "
                 "as the paper prints them.")
    if t["diff_best_vs_paper_pct"].notna().any():
        text += " Best - paper: our best epoch's accuracy minus the paper's, where our data and source are its own."
    if compared["ours_best_pct"].ne(compared["ours_final_pct"]).any():
        return text + (" Best: our best epoch among those validated on the whole val split, where it is not the "
                       "final one.")
    return text + " Our best epoch among those validated on the whole val split is the final one in every row."


def printed_differences(v: pd.DataFrame) -> pd.DataFrame:
    """A `verdict` or `contrasts` table as a person reads it: the difference as 'mean ± 95% half-width' (points),
    p-values to two figures, the seeds the first method is ahead in; the epoch only where a best-epoch row is there,
    and no column blank in every row (`differences_caption` says what they are)."""
    s = shown(v)
    out = pd.DataFrame({"data": s["data"], ROW_INDEX[1]: s["images_per_class"]})
    if "contrast" in s:
        out["contrast"] = s["contrast"]
    if "measure" in s and s["measure"].eq("best").any():
        out["epoch"] = s["measure"]
    out["difference (points)"] = [pm(d, h, signed=True) for d, h in zip(s["diff_pct"], s["ci95_pct"])]
    out["p"], out["Holm p"] = s["p"].map(p_value), s["p_holm"].map(p_value)
    out["ahead in"] = [f"{int(a)} of {plural(int(n), 'seed')}" for a, n in zip(s["ahead"], s["seeds"])]
    out["verdict"] = s["verdict"]
    return _without_blank_columns(out.set_index(ROW_INDEX))


def differences_caption(v: pd.DataFrame, what: str) -> str:
    """The caption of a `printed_differences` table of `what` (e.g. "MultiTune minus SpotTune")."""
    seeds = f"over {plural(int(v['seeds'].iloc[0]), 'seed')}" if len(v) and _constant(v, "seeds") else "over seeds"
    best = (" A best-epoch row follows its final-epoch row where the two differ." if "measure" in v and
            v["measure"].eq("best").any() else "")
    return (f"{what} in validation accuracy (points) at the final epoch, paired by seed (a seed draws the same "
            f"few-shot images for every method) {seeds}: the mean of the per-seed differences ± the half-width of "
            "its 95% Student-t interval; p, the paired t-test's two-sided p-value, and Holm p, that p adjusted by "
            "Holm's method for the rows tested (each row one test); ahead in, the seeds in which the first method "
            "scores higher. The verdict reads a row's own interval: where Holm p is 0.05 or more, the rows taken "
            f"together do not confirm it.{best}")


TABLE3_HEAD = "# Table 3 ({name} profile)\n\n{about}\n\n"
WHY_TEXT = ("Each method against what it is built on, paired by seed as above: MultiTune joins two networks that "
            "train with L2-SP, SpotTune routes each image through a fine-tuned network or its frozen source. Where "
            "MultiTune - L2-SP holds 0, joining adds nothing to the regulariser; where SpotTune - fine-tuning lies "
            "below 0, routing costs accuracy. SpotTune trains without L2-SP, so a row whose four methods share their "
            "seeds splits the gap above exactly: MultiTune - SpotTune = (MultiTune - L2-SP) + (L2-SP - fine-tuning) "
            "- (SpotTune - fine-tuning). ")


def _md(frame: pd.DataFrame) -> str:
    return markdown(frame.reset_index())


def write_table3(t: pd.DataFrame, folder: Path, profile: profiles.Profile, v: pd.DataFrame | None = None,
                 w: pd.DataFrame | None = None) -> None:
    """table3.csv (full precision) and table3.md (as `printed_table3`, with the other methods after it); with `v`
    (from `verdict`) also verdict.csv and its section, and with a `w` (from `why`) that holds a row, why.csv and
    its section."""
    files.write_text(folder / "table3.csv", shown(t).to_csv(index=False))
    text = TABLE3_HEAD.format(name=profile.name, about=profile.about) + table3_caption(t) + "\n\n"
    text += _md(printed_table3(t))
    others = printed_others(t)
    if not others.empty:
        text += "\n## The other methods\n\n" + others_caption(t) + "\n\n" + _md(others)
    if v is not None:
        files.write_text(folder / "verdict.csv", shown(v).to_csv(index=False))
        text += ("\n## Does MultiTune beat SpotTune?\n\n" + differences_caption(v, "MultiTune minus SpotTune")
                 + "\n\n" + _md(printed_differences(v)))
    if w is not None and not w.empty:
        files.write_text(folder / "why.csv", shown(w).to_csv(index=False))
        text += ("\n## Why?\n\n" + WHY_TEXT + differences_caption(w, "Each contrast") + "\n\n"
                 + _md(printed_differences(w)))
    files.write_text(folder / "table3.md", text)


def methods_table(t: pd.DataFrame) -> pd.DataFrame:
    """Table 3 as one row per dataset and row, one column per method: final-epoch accuracy, 'mean ± 95% t
    half-width' (%, over seeds)."""
    cell = [pm(m, h) for m, h in zip(t["ours_final_pct"], t["ours_final_ci95_pct"])]
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
    last = last_epoch(h)
    long = last.melt(id_vars=["dataset_label", "images_per_class"], value_vars=usage, var_name="block",
                     value_name="fine_tuned_share").dropna(subset=["fine_tuned_share"])
    long["block"] = long["block"].str.removeprefix("usage.").astype(int) + 1
    return (long.groupby(["dataset_label", "images_per_class", "block"], dropna=False, as_index=False)
            ["fine_tuned_share"].mean().rename(columns={"dataset_label": "data"}))
