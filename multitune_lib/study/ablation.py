"""The fidelity ablation: from the paper's protocol, one difference of the authors' released code at a time, then all
of them at once (protocol released), for MultiTune and SpotTune on one row of a profile, over its seeds. What each
difference does to MultiTune minus SpotTune says whether it carries the paper's reported gain, reverses it, or does
not matter. The differences are read from `../shared/paper/README.md`; the README's "Paper and released code" lists
them with the sentence of the paper each default follows."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from ..core.config import RunConfig
from ..core.registry import METHODS
from ..store import files
from .figures import save_fig
from .stats import holm, mean_ci, paired_p, t_interval
from .study import Study, label
from .tables import markdown

PAPER, RELEASED = "paper protocol", "released code (all at once)"
# Each difference as the config fields it sets to the released code's values, where a method's code has them.
DIFFERENCES = {
    "L2-SP: alpha term 0, SGD weight decay": ("l2sp_scope", "weight_decay"),
    "augmentation": ("augment",),
    "shared trunk": ("trunk",),
    "setting B's lr lost": ("lr_b",),
    "batch size 120": ("batch_size",),
    "first N files of train and val": ("draw",),
    "lr steps at the first milestone only": ("lr_steps",),
    "policy sampled at evaluation": ("sample_eval",),
}
ORDER = [PAPER, *DIFFERENCES, RELEASED]
METHODS_COMPARED = ("multitune", "spottune")


def settings(method: str, dataset: str, difference: str) -> dict:
    """The config fields departing from the paper's protocol for one difference: {} where the method's released code
    does not differ on it (its paper-protocol run stands in, with the same digest)."""
    if difference == RELEASED:
        return {"protocol": "released"}
    released = METHODS.get(method).released
    fields = [f for f in DIFFERENCES.get(difference, ()) if f in released]
    code = RunConfig(method=method, dataset=dataset, protocol="released").resolved()
    return {f: getattr(code, f) for f in fields}


def configs(study: Study, dataset: str, images_per_class: int | None) -> pd.DataFrame:
    """Every (difference, method, seed) of the ablation with its config and digest, seed by seed."""
    rows = []
    for seed in study.seeds:
        for difference in ORDER:
            for method in METHODS_COMPARED:
                s = settings(method, dataset, difference)
                fields = study.profile.ablation_settings.get(method, {}) | s
                cfg = study.run_config(method, dataset, images_per_class, seed, **fields)
                rows.append({"difference": difference, "method": method, "seed": seed, "settings": fields,
                             "config": cfg.resolved(), "digest": cfg.digest(), "same_as_paper": not s})
    return pd.DataFrame(rows)


def kept(study: Study) -> str:
    """A sentence naming the settings the ablation keeps where the profile's own runs have moved on (empty where
    it keeps none)."""
    said = [f"{label(m)} with " + ", ".join(f"{k} {v}" for k, v in fields.items())
            for m, fields in study.profile.ablation_settings.items()]
    if not said:
        return ""
    return (f" It keeps {'; '.join(said)}: its runs trained before the profile settled on its own setting, and a "
            "difference between the paper and the released code is measured the same way under either.")


def run(study: Study, dataset: str, images_per_class: int | None) -> pd.DataFrame:
    """Train what the store lacks (a difference the method's code does not have reuses its paper run) and return
    one row per (difference, method, seed) with its final and best validation accuracy."""
    plan = configs(study, dataset, images_per_class)
    for r in plan.drop_duplicates("digest").itertuples():
        study.run(r.method, dataset, images_per_class, r.seed, **r.settings)
    return results(study, plan)


def results(study: Study, plan: pd.DataFrame) -> pd.DataFrame:
    """`plan` with the finished runs' accuracies (%; missing where a run has not finished)."""
    done = {d: study.store.finished(d) for d in plan["digest"].unique()}
    acc = {d: (r["metrics"]["final_val_acc"] * 100, r["metrics"]["best_val_acc"] * 100) if r else (math.nan,) * 2
           for d, r in done.items()}
    return plan.assign(final_pct=plan["digest"].map(lambda d: acc[d][0]),
                       best_pct=plan["digest"].map(lambda d: acc[d][1]), method_label=plan["method"].map(label))


def summary(res: pd.DataFrame, measure: str = "final_pct") -> pd.DataFrame:
    """Per difference: each method's mean and 95% half-width, MultiTune minus SpotTune paired by seed, and the change
    of that gap from the paper protocol's (paired by seed) with its t-test p-value, Holm-adjusted over every
    difference tested, and a sentence saying what it means."""
    every = pd.MultiIndex.from_product([ORDER, sorted(res["seed"].unique())], names=["difference", "seed"])
    wide = res.pivot_table(index=["difference", "seed"], columns="method", values=measure, dropna=False)
    wide = wide.reindex(index=every, columns=list(METHODS_COMPARED))
    gap = (wide["multitune"] - wide["spottune"]).rename("gap")
    change = (gap - gap.xs(PAPER, level="difference")).rename("change")
    out, moves = [], []
    for difference in ORDER:
        m, s, g, c = (mean_ci(x.xs(difference, level="difference")) for x in
                      (wide["multitune"], wide["spottune"], gap, change))
        p = math.nan if difference == PAPER else paired_p(change.xs(difference, level="difference"))
        out.append({"difference": difference, "MultiTune_pct": m.mean, "MultiTune_ci95": m.half_width,
                    "SpotTune_pct": s.mean, "SpotTune_ci95": s.half_width, "gap_pct": g.mean, "gap_ci95": g.half_width,
                    "change_pct": c.mean, "change_ci95": c.half_width, "change_p": p, "seeds": g.n})
        moves.append((g, c))
    table = pd.DataFrame(out)
    table["change_p_holm"] = holm(table["change_p"])
    family = int(table["change_p"].notna().sum())
    table["reads"] = [reading(d, g, c, res, (p, family)) for d, (g, c), p in
                      zip(ORDER, moves, table["change_p_holm"])]
    return table


def reading(difference: str, gap, change, res: pd.DataFrame, holm_p=(math.nan, 0)) -> str:
    """One plain sentence: does this difference carry the paper's reported gain, reverse it, or not matter? A move
    beyond its own interval that Holm's adjustment over the `family` of differences tested leaves above 0.05 is
    said to be no more than chance could give."""
    if difference == PAPER:
        return "not run yet" if gap.n == 0 else f"the paper's protocol: MultiTune minus SpotTune {fmt(gap)}"
    rows = res[res["difference"] == difference]
    if len(rows) and rows["same_as_paper"].all():
        return "neither method's released code differs here: the paper-protocol runs"
    if change.n == 0 or math.isnan(change.mean):
        return "not run yet"
    if change.n < 2:
        return f"moves MultiTune minus SpotTune by {change.mean:+.2f} points; one seed: no interval yet"
    lo, hi = change.mean - change.half_width, change.mean + change.half_width
    if lo <= 0 <= hi:
        return f"does not matter here: the gap moves by {fmt(change)}, an interval that holds 0"
    reverses = gap.mean * (gap.mean - change.mean) < 0
    side = "MultiTune" if change.mean > 0 else "SpotTune"
    what = "reverses the comparison" if reverses else ("carries part of the paper's gain" if side == "MultiTune"
                                                       else "works against the paper's gain")
    p, family = holm_p
    chance = (f"; but across the {family} differences tested, Holm's adjusted p is {p:.2f}: no more than chance "
              "could give" if p >= 0.05 else "")
    return f"{what}: it favours {side} by {fmt(change)}{chance}"


def fmt(m) -> str:
    return f"{m.mean:+.2f} points" + ("" if math.isnan(m.half_width) else f" (± {m.half_width:.2f})")


def figure(res: pd.DataFrame, measure: str = "final_pct"):
    """Per difference, MultiTune minus SpotTune (left) and how far it moves from the paper protocol's gap in the same
    seed (right, what the readings judge): per-seed dots, mean and 95% t-interval."""
    wide = res.pivot_table(index=["difference", "seed"], columns="method", values=measure)
    wide = wide.reindex(columns=list(METHODS_COMPARED)).reset_index()  # a method with no finished run yet
    wide = wide.assign(gap=wide["multitune"] - wide["spottune"]).dropna(subset=["gap"])
    paper = wide[wide["difference"] == PAPER].set_index("seed")["gap"]
    wide = wide.assign(change=wide["gap"] - wide["seed"].map(paper))
    fig, axes = plt.subplots(1, 2, sharey=True, figsize=(12, 0.45 * len(ORDER) + 1.6))
    titles = {"gap": "MultiTune minus SpotTune", "change": "its move from the paper protocol's gap, paired by seed"}
    for ax, (column, title) in zip(axes, titles.items()):
        ax.axvline(0, color="grey", lw=0.8)
        points = wide.dropna(subset=[column])
        if not points.empty:
            sns.pointplot(data=points, y="difference", x=column, order=ORDER, errorbar=t_interval,
                          linestyle="none", capsize=0.2, color="tab:red", ax=ax)
            sns.stripplot(data=points, y="difference", x=column, order=ORDER, color="grey", size=3,
                          jitter=False, ax=ax)  # no random jitter: the committed figure regenerates identically
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("points")
        ax.set_ylabel("")
    fig.supxlabel("final-epoch validation accuracy; mean and 95% t-interval over seeds, dots: seeds", fontsize=9)
    fig.tight_layout()
    return fig


def write(table: pd.DataFrame, fig, folder: Path) -> list[Path]:
    """ablation.csv, ablation.md and ablation.png (and .pdf, without a creation date) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    files.write_text(folder / "ablation.csv", table.to_csv(index=False))
    files.write_text(folder / "ablation.md", markdown(table))
    save_fig(fig, folder, "ablation")
    return [folder / f"ablation.{e}" for e in ("csv", "md", "png", "pdf")]
