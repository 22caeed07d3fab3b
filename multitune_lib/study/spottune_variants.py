"""SpotTune on a backbone that is not its ResNet: which blocks to route and how wide a policy, measured.

SpotTune routes the residual units of a ResNet-26 and fine-tunes its stem, final BN and classifier. On
EfficientNet-Lite0 a faithful port has a choice: route all 17 units (blocks without an identity path and the 1x1 head
conv among them, `route all`) or only the 9 with one (`route residual`), and give the policy SpotTune's width or a
quarter of it (the share of compute it costs beside ResNet-26). Each variant trains on the comparison rows over the
profile's seeds and is compared, paired by seed, with the quarter-width all-routing runs and with fine-tuning.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from ..store import files
from .conclusions import row_name
from .figures import method_style, save_fig
from .stats import mean_ci, paired_p, t_interval
from .study import Study
from .tables import markdown, row_key, shown

ALL = "route all, quarter-width policy"
RESIDUAL = "route residual"
# Each variant as the SpotTune config fields it sets; ALL is what the imagenet-cpu profile trained first.
VARIANTS = {
    ALL: {"route": "all"},
    RESIDUAL: {"route": "residual"},
    "route all, full-width policy": {"route": "all", "policy_width": 1.0},
}
# The two routing scopes at the quarter width, compared on every row of the profile, not only the comparison rows
SCOPES = {v: VARIANTS[v] for v in (ALL, RESIDUAL)}
FINETUNE = "fine-tuning"


def rows(study: Study) -> list[tuple[str, int | None]]:
    """The comparison rows, (dataset, images per class): each dataset's largest few-shot row (imagenet-cpu: 20)."""
    p = study.profile
    return [p.first_row(d) for d in p.datasets]


def configs(study: Study, where: list[tuple] | None = None, variants: dict = VARIANTS) -> pd.DataFrame:
    """Every (variant, dataset, row, seed) with its digest, and fine-tuning's main run beside each row and seed;
    `where` the rows (default: the comparison rows)."""
    out = []
    for seed in study.seeds:
        for dataset, n in where or rows(study):
            out.append(entry(study, FINETUNE, "finetune", dataset, n, seed, {}))
            for variant, settings in variants.items():
                out.append(entry(study, variant, "spottune", dataset, n, seed, settings))
    return pd.DataFrame(out).astype({"images_per_class": "Int64"})  # the whole row stays missing, not a float


def scopes(study: Study) -> pd.DataFrame:
    """The two routing scopes and fine-tuning on every row and seed, read from the store (the study trains the
    profile's own SpotTune on every row; the other scope is there where the profile trained it before)."""
    return results(study, configs(study, study.profile.every_row(), SCOPES))


def entry(study: Study, variant: str, method: str, dataset: str, n: int | None, seed: int, settings: dict) -> dict:
    cfg = study.run_config(method, dataset, n, seed, **settings)
    return {"variant": variant, "method": method, "dataset": dataset, "images_per_class": n, "seed": seed,
            "settings": settings, "digest": cfg.digest()}


def queue(study: Study) -> list[tuple]:
    """What to train, in order: each variant on the comparison rows over every seed, so that a variant's paired
    comparison is whole before the next one starts."""
    return [(v, d, n, seed) for v in VARIANTS for seed in study.seeds for d, n in rows(study)]


def run(study: Study) -> pd.DataFrame:
    """Train what the comparison lacks (fine-tuning, then `queue`) and return `configs` with the accuracies."""
    for seed in study.seeds:
        for dataset, n in rows(study):
            study.run("finetune", dataset, n, seed)
    for variant, dataset, n, seed in queue(study):
        study.run("spottune", dataset, n, seed, **VARIANTS[variant])
    return results(study, configs(study))


def results(study: Study, plan: pd.DataFrame) -> pd.DataFrame:
    """`plan` with each finished run's final and best validation accuracy (%), minutes and precision."""
    metrics = {d: (study.store.finished(d) or {}).get("metrics", {}) for d in plan["digest"].unique()}

    def column(key, scale=1.0):
        return plan["digest"].map(lambda d: metrics[d][key] * scale if key in metrics[d] else math.nan)
    return plan.assign(final_pct=column("final_val_acc", 100), best_pct=column("best_val_acc", 100),
                       minutes=column("train_minutes"),
                       precision=plan["digest"].map(lambda d: metrics[d].get("precision")))


def comparison(res: pd.DataFrame, measure: str = "final_pct") -> pd.DataFrame:
    """Per row and SpotTune variant: its mean with 95% interval, and paired by seed its difference from the
    all-routing quarter-width runs and from fine-tuning, each with its interval and t-test p-value."""
    out = []
    for (dataset, n), rows in res.groupby(["dataset", "images_per_class"], sort=False, dropna=False):
        wide = rows.pivot_table(index="seed", columns="variant", values=measure, dropna=False)
        for variant in VARIANTS:
            if variant not in wide:
                continue
            acc = mean_ci(wide[variant])
            row = {"dataset": dataset, "images_per_class": n, "variant": variant, "acc_pct": acc.mean,
                   "acc_ci95": acc.half_width, "seeds": acc.n}
            for name, base in (("vs_all", ALL), ("vs_finetune", FINETUNE)):
                d = wide[variant] - wide[base] if base in wide and base != variant else pd.Series(dtype=float)
                m = mean_ci(d)
                row |= {f"{name}_pct": m.mean, f"{name}_ci95": m.half_width, f"{name}_p": paired_p(d)}
            out.append(row)
    table = pd.DataFrame(out)
    return table.sort_values(["dataset", "images_per_class"], key=lambda c: c.map(row_key) if
                             c.name == "images_per_class" else c, kind="stable").reset_index(drop=True)


def reading(table: pd.DataFrame) -> list[str]:
    """One sentence per row and new variant: what it does against the all-routing runs and against fine-tuning."""
    said = []
    for r in table[table["variant"] != ALL].itertuples():
        if r.seeds == 0:
            said.append(f"{r.dataset} {row_name(r.images_per_class)}: {r.variant} not run yet")
            continue
        said.append(f"{r.dataset} {row_name(r.images_per_class)}: {r.variant} {r.acc_pct:.1f}% "
                    f"({r.seeds} seed{'s' if r.seeds > 1 else ''}); minus {ALL} "
                    f"{verdict(r.vs_all_pct, r.vs_all_ci95)}; minus fine-tuning "
                    f"{verdict(r.vs_finetune_pct, r.vs_finetune_ci95)}")
    return said


def verdict(mean: float, half: float) -> str:
    if math.isnan(mean):
        return "not run yet"
    if math.isnan(half):
        return f"{mean:+.2f} points (one seed: no interval yet)"
    side = "within the interval" if mean - half <= 0 <= mean + half else ("higher" if mean > 0 else "lower")
    return f"{mean:+.2f} ± {half:.2f} points ({side})"


def figure(res: pd.DataFrame, measure: str = "final_pct", variants: dict = VARIANTS, wrap: int | None = None):
    """Per row, each variant's and fine-tuning's accuracy: per-seed dots, mean and 95% t-interval, in SpotTune's and
    fine-tuning's colours; `wrap` facets a line."""
    rows = res.dropna(subset=[measure]).assign(
        row=lambda d: d["dataset"] + ", " + d["images_per_class"].map(row_name))
    order = [FINETUNE, *variants]
    colours = {v: method_style("finetune" if v == FINETUNE else "spottune")["color"] for v in order}
    grid = sns.FacetGrid(rows, col="row", col_wrap=wrap, sharex=False, height=2.6, aspect=1.9)
    grid.map_dataframe(sns.pointplot, y="variant", x=measure, order=order, hue="variant", hue_order=order,
                       palette=colours, legend=False, errorbar=t_interval, linestyle="none", capsize=0.2)
    grid.map_dataframe(sns.stripplot, y="variant", x=measure, order=order, color="grey", size=3, jitter=False)
    grid.set_titles("{col_name}")
    grid.set_axis_labels("final-epoch validation accuracy (%)", "")
    grid.figure.suptitle("mean and 95% t-interval over seeds; dots: seeds", fontsize=9, y=1.02)
    return grid.figure


def write(table: pd.DataFrame, res: pd.DataFrame, fig, folder: Path, name: str = "spottune_variants") -> list[Path]:
    """<name>.csv and .md (the comparison), <name>_runs.csv (every variant, row and seed) and <name>.png and .pdf
    into `folder`; `name` spottune_scopes for the comparison of `scopes`."""
    folder.mkdir(parents=True, exist_ok=True)
    files.write_text(folder / f"{name}.csv", shown(table).to_csv(index=False))
    files.write_text(folder / f"{name}.md", markdown(shown(table)))
    runs = shown(res.drop(columns=["settings"])).sort_values(["dataset", "variant", "seed"], kind="stable")
    files.write_text(folder / f"{name}_runs.csv", runs.to_csv(index=False))
    save_fig(fig, folder, name, bbox_inches="tight")
    plt.close(fig)
    return [folder / f"{name}{e}" for e in (".csv", ".md", "_runs.csv", ".png", ".pdf")]
