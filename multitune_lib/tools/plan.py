"""`plan`: a profile's runs, their image passes and the minutes they would take at the speed measured here, before
anything trains. A method's speed is what its finished runs in the store measured, or else a few steps of its own
training step and evaluation (`bench.ours`) at the profile's backbone, input size and batch size, timed now; runs
the store holds finished cost nothing."""
from __future__ import annotations

import pandas as pd

from .. import data, env
from ..core.config import BATCH_SIZE, RunConfig
from ..study import Study, ablation
from . import bench


def images(study: Study, cfg: RunConfig, split: str) -> int:
    """How many images a run trains (its few-shot draw) or validates on (the whole split, or with the released
    code's draw its first N files per class), from the annotations."""
    n = cfg.images_per_class if split == "train" or cfg.draw == "first_n" else None
    ann = data.annotations(study.data_root, cfg.dataset, split)
    return len(data.select(ann, n, cfg.classes, cfg.seed, draw=cfg.draw))


def runs_to_plan(study: Study) -> pd.DataFrame:
    """The profile's runs, then the ablation's (notebook 06) that are not among them, each once."""
    dataset, images_per_class = study.profile.ablation_row()
    extra = ablation.configs(study, dataset, images_per_class)
    extra = extra.assign(dataset=dataset, images_per_class=images_per_class,
                         done=extra["digest"].map(lambda d: study.store.finished(d) is not None))
    runs = pd.concat([study.planned().assign(part="profile"), extra.assign(part="ablation")], ignore_index=True)
    return runs.drop_duplicates("digest").reset_index(drop=True)


def measured(study: Study) -> dict[str, tuple[float, float]]:
    """method -> (train, evaluation) images/s over the finished main runs in the store: the real workload."""
    runs = study.runs()
    h = study.history()
    if runs.empty or "val_images" not in h:
        return {}
    h = h[h["main"]].merge(runs[["digest", "train_images"]], on="digest")
    out = {}
    for method, g in h.groupby("method"):
        val = g.dropna(subset=["val_images"])
        out[method] = (g["train_images"].sum() / g["train_seconds"].sum(),
                       val["val_images"].sum() / (val["seconds"] - val["train_seconds"]).sum())
    return out


def speeds(study: Study, methods, device, steps: int, precision: str, batch: int) -> dict[str, tuple[float, float]]:
    """method -> (train, evaluation) images/s: measured by the store's finished runs where it has some, else timed
    now on `device` at the profile's settings (a busy machine times slow)."""
    p, known = study.profile, measured(study)
    return {m: known.get(m) or bench.ours(m, device, batch, steps, precision, False, p.backbone, p.input_size)
            for m in methods}


def plan(study: Study, device=None, steps: int = 3, precision: str = "auto", batch: int | None = None,
         with_ablation: bool = True) -> pd.DataFrame:
    """One row per run (the profile's, and notebook 06's ablation unless `with_ablation` is False): images, epochs,
    validations, image passes and estimated minutes (0 where finished); speeds measured at `batch` (default: the
    config's batch size)."""
    device = env.pick_device(device)
    runs = runs_to_plan(study) if with_ablation else study.planned().assign(part="profile")
    counts = [(images(study, r.config, "train"), images(study, r.config, "val"))
              for r in runs.itertuples()]  # first, so that missing data fails before the timing
    speed = speeds(study, runs["method"].unique(), device, steps, precision, batch or BATCH_SIZE)
    rows = []
    for r, (train, val) in zip(runs.itertuples(), counts):
        cfg: RunConfig = r.config
        evals = cfg.epochs // cfg.eval_every + (cfg.epochs % cfg.eval_every != 0)
        validated = (evals - 1) * min(cfg.curve_val_images or val, val) + val  # the last sees the whole split
        tps, eps = speed[r.method]
        minutes = (cfg.epochs * train / tps + validated / eps) / 60
        rows.append({"part": r.part, "digest": r.digest, "method": r.method, "dataset": r.dataset, "images_per_class": r.images_per_class,
                     "seed": r.seed, "train_images": train, "epochs": cfg.epochs, "validations": evals,
                     "image_passes": cfg.epochs * train + validated, "minutes": minutes, "done": r.done,
                     "minutes_left": 0.0 if r.done else minutes})
    return pd.DataFrame(rows).astype({"images_per_class": "Int64"})


def main(profile: str, device=None, steps: int = 3, precision: str = "auto", **study_args) -> pd.DataFrame:
    study = Study(profile, device=device or "auto", **study_args)
    df = plan(study, device, steps, precision)
    p = study.profile
    print(f"plan of the {p.name} profile on {env.device_name(env.pick_device(device))} (speeds: the store's "
          f"finished runs where it has them, else timed now): {p.backbone}, input "
          f"{bench.size(p.input_size)}, {p.epochs} epochs, validated every {p.eval_every}, seeds {list(study.seeds)}")
    by = df.groupby(["part", "dataset", "images_per_class", "method"], dropna=False, sort=False)
    print(by.agg(runs=("seed", "size"), done=("done", "sum"), train_images=("train_images", "first"),
                 image_passes=("image_passes", "sum"), minutes=("minutes", "sum")).round(1).to_string())
    print(f"total: {len(df)} runs, {int(df['done'].sum())} finished; {df['image_passes'].sum():,} image passes; "
          f"{df['minutes'].sum() / 60:.1f} hours in all, {df['minutes_left'].sum() / 60:.1f} hours left")
    return df
