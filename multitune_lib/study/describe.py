"""What a notebook's section ran with, in Markdown, said from the profile and the results store: the network,
data, schedule and validation its introduction speaks of in general terms, each method's settings, the precision
the runs trained in, and what the section would train."""
from __future__ import annotations

from collections import Counter
from typing import Callable

import pandas as pd

from .. import paths
from ..core.backbone import block_count, policy_width, residual_units
from ..core.config import class_spec
from ..core.registry import METHODS
from ..data import CROP, SIZE
from .study import Study

BACKBONES = {"resnet26": "ResNet-26", "efficientnet_lite0": "EfficientNet-Lite0"}


def setup(study: Study, methods=(), plan: Callable[[Study], object] | None = None) -> str:
    """The profile, its settings and each of `methods`' own; with `plan` (a section's training, `plan(study)`),
    how much of it the store holds and what would train."""
    p = study.profile
    resized = f", resized on the device to {p.input_size} px (whole images by the same factor)" if p.input_size else ""
    lines = [f"**The {p.name} profile.** {p.about}", "", f"- network: {network(study)}", f"- data: {data(study)}",
             f"- images: training crops of {CROP} px from the {SIZE} px images, whole images at evaluation{resized}",
             f"- training: {p.epochs} epochs, SGD with momentum 0.9, seed{'s' * (len(study.seeds) > 1)} "
             f"{words(study.seeds)}",
             f"- validation: {validation(study)}"]
    lines += [f"- {METHODS.get(m).label}: {settings(study, m)}" for m in methods]
    if plan is not None:
        lines += ["", pending(study, plan)]
    return "\n".join(lines)


def network(study: Study) -> str:
    name = study.profile.backbone
    blocks, residual = block_count(name), len(residual_units(name))
    shape = f"{blocks} blocks, all residual" if blocks == residual else \
        f"{blocks} blocks, {residual} of them with an identity path"
    start = f"from the source checkpoint {study.source.name}" if study.source else \
        "from a source checkpoint (none given yet)" if study.profile.needs_source else "from random initialisation"
    return f"{BACKBONES.get(name, name)} ({shape}), {start}"


def data(study: Study) -> str:
    """Each dataset with its classes and rows: the whole train split where the profile has that row, then the
    few-shot rows, in images per class."""
    p, said = study.profile, []
    for d in p.datasets:
        whole = p.has_row(d, p.full_row) and p.has_full_rows
        rows = [str(n) for n in p.few_shot_rows]
        if whole and p.full_row is not None:
            rows.insert(0, f"{p.full_row} (its whole-dataset row)")
        rows = [f"{words(rows)} images per class"] if rows else []
        rows = (["the whole train split"] if whole and p.full_row is None else []) + rows
        spec = class_spec(p.classes(d))
        classes = "" if p.classes(d) is None or spec in p.label(d) else f" (classes {spec})"
        said.append(f"{p.label(d)}{classes}: {' and '.join(rows)}")
    return "; ".join(said) + "; validated on the whole val split of the same classes"


def validation(study: Study) -> str:
    p = study.profile
    if p.eval_every >= p.epochs:
        return "after the last epoch only, on the whole val split"
    every = "every epoch" if p.eval_every == 1 else f"every {p.eval_every} epochs"
    steps = "the last epoch at each lr (the method's milestones) and " if p.whole_val == "milestones" else ""
    if not p.curve_val_images:
        return f"{every} on the whole val split" + (", and the last epoch at each lr" if steps else "")
    return f"{every} on a fixed sample of {p.curve_val_images:,} val images; {steps}the last epoch on the whole val " \
           "split"


def settings(study: Study, method: str) -> str:
    """A method's learning rates, schedule, weight decay, L2-SP and own settings, resolved as the profile's runs
    are (a setting that differs between datasets is given per dataset)."""
    cfgs = {d: study.config(method, d, None, 0).resolved() for d in study.profile.datasets}
    cfg = next(iter(cfgs.values()))
    own = METHODS.get(method).defaults
    said = [f"lr {cfg.lr:g}"]
    said += [f"lr {cfg.lr_last:g} on setting B's re-initialised block"] if "lr_last" in own else []
    said += [f"policy lr {cfg.policy_lr:g}"] if "policy_lr" in own else []
    said.append(schedule(cfg))
    decay = {study.profile.label(d): c.weight_decay for d, c in cfgs.items()}
    said.append("weight decay " + (number(cfg.weight_decay) if len(set(decay.values())) == 1 else
                                   ", ".join(f"{number(v)} on {d}" for d, v in decay.items())))
    if cfg.alpha or cfg.beta:
        said.append(f"L2-SP alpha {cfg.alpha:g}, beta {cfg.beta:g}")
    return ", ".join(said + own_settings(cfg, own))


def own_settings(cfg, own: dict) -> list[str]:
    """What one method alone reads: MultiTune's eta, SpotTune's routing and AMF's networks and weighting."""
    said = [f"eta {cfg.eta:g}"] if cfg.method == "multitune" else []
    if "route" in own:
        routed = block_count(cfg.backbone) if cfg.route == "all" else len(residual_units(cfg.backbone))
        said.append(f"the policy routes {routed} blocks" + ("" if cfg.route == "all" else " (those with an identity "
                                                           "path; the others fine-tuned)"))
    if "policy_width" in own:
        width = cfg.policy_width or policy_width(cfg.backbone)
        said.append("SpotTune's own policy width" if width == 1 else f"a policy at {width:g} of SpotTune's width")
    if cfg.amf_settings:
        said.append(f"networks {' + '.join(cfg.amf_settings)}, {cfg.weighting} weighting of their {cfg.fusion}")
    return said


def schedule(cfg) -> str:
    """The lr steps, or a constant lr where every milestone lies beyond the last epoch (a short profile)."""
    steps = [m for m in cfg.milestones or () if m < cfg.epochs]
    if not steps:
        beyond = f" (milestones {words(cfg.milestones)} lie beyond its {cfg.epochs} epochs)" if cfg.milestones else ""
        return "a constant lr" + beyond
    return f"lr x{cfg.gamma:g} at epochs {words(steps)}"


def number(value: float) -> str:
    """0.0005 -> '5e-4', 0.01 -> '0.01', 0 -> '0'."""
    return f"{value:.0e}".replace("e-0", "e-") if 0 < value < 1e-3 else f"{value:g}"


def words(numbers) -> str:
    """(8, 12) -> '8 and 12'; (40, 60, 80) -> '40, 60 and 80'."""
    items = [str(n) for n in numbers]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def pending(study: Study, plan: Callable[[Study], object]) -> str:
    """How many of the runs `plan` asks for the store holds, in which precision they trained, and what it lacks
    per method: what runs now with `train`, or stays out without it. `plan` runs on a read-only copy."""
    dry = study.read_only()
    plan(dry)
    log = set(dry.log)  # a run asked for twice (a queue, then a table) is one run
    found = [d for o, _, d in log if o == "found"]
    held = f"The results store ({paths.relative(study.results)}) holds {len(found)} of this section's " \
           f"{len(log)} runs" + (f" ({precision(study, found)})" if found else "")
    if not (lacking := dry.lacking()):
        return held + ": nothing trains."
    if study.train:
        return held + f". It lacks {lacking}: they train now, a progress line each (`train = False` would read " \
                      "the store only)."
    return held + f". It lacks {lacking}: with `train = False` they are left out of what follows."


def precision(study: Study, digests) -> str:
    """The precisions the finished runs `digests` trained in, with how many runs each ("float32: 55 runs")."""
    counts = Counter(study.store.finished(d)["metrics"].get("precision", "unrecorded") for d in dict.fromkeys(digests))
    return "; ".join(f"{p}: {n} run{'s' * (n != 1)}" for p, n in sorted(counts.items()))


def runs_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs as `Study.run_all` returns them, as a reader wants them: each method, row and seed with its final and
    best validation accuracy (%), minutes and precision."""
    columns = ["method", "dataset", "images per class", "seed", "final (%)", "best (%)", "minutes", "precision"]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    n = runs["images_per_class"]
    out = pd.DataFrame({"method": runs["method_label"], "dataset": runs["dataset"],
                        "images per class": n.astype(object).where(n.notna(), "all"), "seed": runs["seed"],
                        "final (%)": runs["final_val_acc"] * 100, "best (%)": runs["best_val_acc"] * 100,
                        "minutes": runs["train_minutes"], "precision": runs.get("precision")})
    return out[columns].round(1).reset_index(drop=True)
