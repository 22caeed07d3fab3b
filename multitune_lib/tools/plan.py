"""`plan`: a profile's runs, their image passes and the minutes they would take at the speed measured here, before
anything trains. A method's speed is what its finished runs in the store measured (their median epoch), or else a
few steps of its own training step and evaluation (`bench.ours`) at the profile's backbone, input size and batch
size, timed now; runs the store holds finished cost nothing."""
from __future__ import annotations

import heapq
import sys

import pandas as pd

from .. import data, env
from ..core.config import BATCH_SIZE, RunConfig
from ..core.registry import METHODS
from ..study import Study, ablation, amf, contribution
from . import bench

REFERENCE = "finetune"  # the step a device's speed is given for: one ResNet-26 (or Lite0) fine-tuning step
GPUS = (1, 8, 64)


def images(study: Study, cfg: RunConfig, split: str) -> int:
    """How many images a run trains (its few-shot draw) or validates on (the whole split, or with the released
    code's draw its first N files per class), from the annotations."""
    n = cfg.images_per_class if split == "train" or cfg.draw == "first_n" else None
    ann = data.annotations(study.data_root, cfg.dataset, split)
    return len(data.select(ann, n, cfg.classes, cfg.seed, draw=cfg.draw))


def eta_sweep(study: Study) -> pd.DataFrame:
    """Notebook 02's eta sweep, where the profile has a grid: MultiTune on its first dataset's whole-dataset row."""
    p, rows = study.profile, []
    dataset = next(iter(p.datasets))
    for eta in p.eta_grid:
        for seed in study.seeds:
            cfg = study.run_config("multitune", dataset, p.full_row, seed, eta=eta)
            rows.append({"method": "multitune", "seed": seed, "config": cfg.resolved(), "digest": cfg.digest()})
    return pd.DataFrame(rows, columns=["method", "seed", "config", "digest"]).assign(
        dataset=dataset, images_per_class=p.full_row)


# The methods whose notebooks train runs beyond their main ones: AMF's K = 3 sweep (08), contribution's criteria (10)
SWEEPS = {"amf": amf.queue, "contribution": contribution.queue}


def method_sweeps(study: Study) -> pd.DataFrame:
    """The runs of the profile's methods' own sweeps (`SWEEPS`): every queued run that sets more than the profile."""
    rows = []
    for method, queue in SWEEPS.items():
        for dataset, n, seed, settings in queue(study) if method in study.methods else []:
            if settings:
                cfg = study.run_config(method, dataset, n, seed, **settings)
                rows.append({"method": method, "dataset": dataset, "images_per_class": n, "seed": seed,
                             "config": cfg.resolved(), "digest": cfg.digest()})
    return pd.DataFrame(rows, columns=["method", "dataset", "images_per_class", "seed", "config", "digest"])


def runs_to_plan(study: Study) -> pd.DataFrame:
    """Every run the notebooks train, each once: the profile's (Table 3), then those of the eta sweep (02), of the
    ablation (06) and of the methods' own sweeps (08, 10) that are not among them."""
    dataset, images_per_class = study.profile.ablation_row()
    extra = ablation.configs(study, dataset, images_per_class).assign(dataset=dataset,
                                                                      images_per_class=images_per_class)
    parts = [eta_sweep(study).assign(part="eta sweep"), extra.assign(part="ablation"),
             method_sweeps(study).assign(part="method sweeps")]
    parts = [x.assign(done=x["digest"].map(lambda d: study.store.finished(d) is not None)) for x in parts]
    runs = pd.concat([study.planned().assign(part="profile"), *parts], ignore_index=True)
    return runs.drop_duplicates("digest").reset_index(drop=True)


def measured(study: Study) -> dict[str, tuple[float, float]]:
    """method -> (train, evaluation) images/s over the finished main runs in the store: the real workload. The
    median epoch, so that an epoch paused (a suspended job) or shared with other work does not set the pace."""
    runs = study.runs()
    h = study.history()
    if runs.empty or "val_images" not in h:
        return {}
    h = h[h["main"]].merge(runs[["digest", "train_images"]], on="digest")
    h = h.assign(train=h["train_images"] / h["train_seconds"],
                 evaluate=h["val_images"] / (h["seconds"] - h["train_seconds"]))
    return {method: (g["train"].median(), g["evaluate"].median()) for method, g in h.groupby("method")}


def speeds(study: Study, methods, device, steps: int, precision: str, batch: int,
           known: dict | None = None) -> dict[str, tuple[float, float]]:
    """method -> (train, evaluation) images/s: measured by the store's finished runs where it has some (`known`,
    default `measured`), else timed now on `device` at the profile's settings (a busy machine times slow)."""
    known = measured(study) if known is None else known
    return {m: known.get(m) or timed(m, device, batch, steps, precision, study.profile) for m in methods}


def beyond_epochs(method: str, cfg: RunConfig, train: int, known: dict) -> tuple[int, int]:
    """The image passes `plan` adds to a run's epochs (`Method.extra_work`): a search's proxies always; work inside
    the epochs that `bench` leaves out (`extra_in_epochs`) only where the speed was timed, since a speed measured on
    the method's runs (`known`) holds it already."""
    m = METHODS.get(method)
    if m.extra_work is None or (m.extra_in_epochs and method in known):
        return 0, 0
    return m.extra_work(cfg, train)


def timed(method: str, device, batch: int, steps: int, precision: str, p) -> tuple[float, float]:
    """`bench.ours` at the profile's settings, said first on stderr: a slow CPU takes minutes over it."""
    print(f"timing {method} on {device}: the store has no finished run of it to read its speed from",
          file=sys.stderr, flush=True)
    return bench.ours(method, device, batch, steps, precision, False, p.backbone, p.input_size)


def plan(study: Study, device=None, steps: int = 3, precision: str = "auto", batch: int | None = None,
         with_ablation: bool = True, gpu_speed: float | None = None, selection: dict | None = None) -> pd.DataFrame:
    """One row per run (the profile's, and notebooks 02's eta sweep and 06's ablation unless `with_ablation` is
    False; with `selection`, from `Study.selection`, only the profile's runs it selects): images, epochs,
    validations, image passes and estimated minutes (0 where finished); speeds measured at `batch` (default: the
    config's batch size). With `gpu_speed`, also `gpu_minutes` (see `on_gpu`)."""
    device = env.pick_device(device)
    if selection is not None:
        runs = study.planned(**selection).assign(part="selected")
    else:
        runs = runs_to_plan(study) if with_ablation else study.planned().assign(part="profile")
    counts = [(images(study, r.config, "train"), images(study, r.config, "val"))
              for r in runs.itertuples()]  # first, so that missing data fails before the timing
    methods = {*runs["method"], *([REFERENCE] if gpu_speed else [])}
    known = measured(study)
    speed = speeds(study, sorted(methods), device, steps, precision, batch or BATCH_SIZE, known)
    rows = []
    for r, (train, val) in zip(runs.itertuples(), counts):
        cfg: RunConfig = r.config
        evals, whole = len(cfg.validated()), len(cfg.validated_on_whole())
        validated = (evals - whole) * min(cfg.curve_val_images or val, val) + whole * val
        tps, eps = speed[r.method]
        more_train, more_eval = beyond_epochs(r.method, cfg, train, known)
        minutes = ((cfg.epochs * train + more_train) / tps + (validated + more_eval) / eps) / 60
        rows.append({"part": r.part, "digest": r.digest, "method": r.method, "dataset": r.dataset, "images_per_class": r.images_per_class,
                     "seed": r.seed, "train_images": train, "epochs": cfg.epochs, "validations": evals,
                     "image_passes": cfg.epochs * train + validated + more_train + more_eval, "minutes": minutes, "done": r.done,
                     "minutes_left": 0.0 if r.done else minutes})
    df = pd.DataFrame(rows).astype({"images_per_class": "Int64"})
    return on_gpu(df, speed, gpu_speed) if gpu_speed else df


def on_gpu(df: pd.DataFrame, speed: dict[str, tuple[float, float]], gpu_speed: float) -> pd.DataFrame:
    """`gpu_minutes`: each run's minutes here scaled to a device where a fine-tuning step (the reference) runs at
    `gpu_speed` images/s, the methods keeping the cost ratios measured here. Ratios of small kernels on a GPU are not
    those of a CPU: an estimate to plan with, not a measurement."""
    return df.assign(gpu_minutes=df["minutes"] * speed[REFERENCE][0] / gpu_speed)


def wall_minutes(minutes: pd.Series, gpus: int) -> float:
    """Minutes the runs take spread over `gpus` devices, each run on one, longest first onto the least loaded device
    (LPT): never less than the longest run."""
    load = [0.0] * gpus
    for m in sorted(minutes, reverse=True):
        heapq.heapreplace(load, load[0] + m)
    return max(load)


def cost_table(df: pd.DataFrame, gpus=GPUS) -> pd.DataFrame:
    """Runs, GPU minutes in all and wall-clock minutes on 1, 8 and 64 devices, per part of the plan."""
    return pd.DataFrame([{"part": part, "runs": len(g), "gpu_minutes": g["gpu_minutes"].sum(),
                          **{f"wall_minutes_{n}_gpus": wall_minutes(g["gpu_minutes"], n) for n in gpus}}
                         for part, g in [("all", df), *df.groupby("part", sort=False)]])


def main(profile: str, device=None, steps: int = 3, precision: str = "auto", gpu_speed: float | None = None,
         gpus=GPUS, datasets=None, rows=None, methods=None, **study_args) -> pd.DataFrame:
    """Print the plan of the profile's runs, or of the datasets, rows and methods named (checked against it)."""
    study = Study(profile, device=device or "auto", **study_args)
    chosen = study.selection(datasets, rows, methods) if datasets or rows or methods else None
    df = plan(study, device, steps, precision, gpu_speed=gpu_speed, selection=chosen)
    p = study.profile
    print(f"plan of the {p.name} profile on {env.device_name(env.pick_device(device))} (speeds: the store's "
          f"finished runs where it has them, else timed now): {p.backbone}, input "
          f"{bench.size(p.input_size)}, {p.epochs} epochs, validated every {p.eval_every}, seeds {list(study.seeds)}")
    by = df.groupby(["part", "dataset", "images_per_class", "method"], dropna=False, sort=False)
    print(by.agg(runs=("seed", "size"), done=("done", "sum"), train_images=("train_images", "first"),
                 image_passes=("image_passes", "sum"), minutes=("minutes", "sum")).round(1).to_string())
    print(f"total: {len(df)} runs, {int(df['done'].sum())} finished; {df['image_passes'].sum():,} image passes; "
          f"{df['minutes'].sum() / 60:.1f} hours in all, {df['minutes_left'].sum() / 60:.1f} hours left")
    if gpu_speed:
        print(f"on GPUs where a {REFERENCE} step runs at {gpu_speed:,.0f} images/s (the methods' cost ratios as "
              f"measured here; one run per GPU at a time, longest first):")
        print(cost_table(df, gpus).round(1).to_string(index=False))
    return df
