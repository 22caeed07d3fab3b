"""`pretrain`: a source model trained from random initialisation on a Decathlon dataset or class subset, saved with
its metadata for `--source`. The offline profile starts from CIFAR-100 classes 1-50, so none of its target classes
was seen in pretraining; users with the Decathlon's imagenet12 pretrain on that the same way."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from .. import paths
from ..core.config import RunConfig, class_spec
from ..core.fit import fit
from ..data import eval_side
from ..errors import ConfigError
from ..store import files
from ..store.checkpoint import load_source, save_source
from ..store.results import ResultsStore

# Where pretraining departs from RunConfig's defaults; lr and weight decay are the `scratch` method's.
DEFAULTS = dict(dataset="cifar100", classes="1-50", epochs=60)
# The settings a source model is trained with, as `pretrain` options.
FIELDS = ("dataset", "classes", "backbone", "epochs", "batch_size", "milestones", "lr", "weight_decay", "crop",
          "eval_every", "seed")


def pretrain_config(**settings) -> RunConfig:
    """Training from scratch with the pretraining defaults; lr x0.1 at half and three quarters of the epochs
    unless `milestones` says otherwise."""
    s = {**DEFAULTS, **settings}
    if s.get("milestones") is None:
        s["milestones"] = (s["epochs"] // 2, s["epochs"] * 3 // 4)
    return RunConfig(method="scratch", **s).resolved()


def write_card(out: Path, meta: dict) -> Path:
    """The metadata beside the checkpoint as JSON, for people and for diffs (the checkpoint's own copy is the truth)."""
    card = Path(out).with_suffix(".json")
    files.write_text(card, json.dumps(meta, indent=1) + "\n")
    return card


def pretrain(cfg: RunConfig, *, out: str | Path | None = None, note: str = "", force: bool = False, data_root=None,
             results: str | Path | None = None, device: str = "auto", precision: str = "auto") -> dict:
    """Train `cfg` (see `pretrain_config`) and write its weights to `out` in fp16 with their metadata; returns the
    metadata. An `out` made by the same run is left alone; one made by another run is replaced only with `force`."""
    out = Path(out or paths.default_source())
    if out.exists():
        meta = load_source(out)[1]
        if meta.get("run_digest") == cfg.digest():
            print(f"{out} already holds run {cfg.digest()}: not recomputed")
            return meta
        if not force:
            raise ConfigError(f"{out} holds another source model (run {meta.get('run_digest')}, "
                              f"{meta.get('epochs')} epochs); pass --force to replace it or --out to write elsewhere")
    store = ResultsStore(results or paths.project_root() / "runs" / "pretrain")
    row = fit(cfg, data_root=data_root, results=store.root, device=device, precision=precision, keep_weights=True,
              tags={"purpose": "pretrain"})
    meta = metadata(row, pd.read_csv(store.run_dir(row["digest"]) / "history.csv"), note)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_source(out, store.weights(row["digest"]), meta, half=True)
    write_card(out, meta)
    m = row["metrics"]
    print(f"source model: {out} ({out.stat().st_size / 2**20:.1f} MiB), {cfg.dataset} classes {meta['classes']}, "
          f"final val acc {m['final_val_acc']:.4f} on {m['val_images']} images")
    return meta


def metadata(row: dict, history: pd.DataFrame, note: str) -> dict:
    """What a source model says of itself: data, schedule, accuracy, device and the run that made it."""
    cfg, m, e = RunConfig.from_dict(row["config"]), row["metrics"], row["env"]
    return {
        "origin": "multitune pretrain",
        "dataset": cfg.dataset, "classes": class_spec(cfg.classes), "num_classes": m["num_classes"],
        "train_images": m["train_images"], "val_images": m["val_images"],
        "epochs": cfg.epochs, "crop": cfg.crop, "eval_size": eval_side(cfg.crop), "seed": cfg.seed,
        "schedule": {k: row["config"][k] for k in ("lr", "milestones", "gamma", "momentum", "weight_decay",
                                                     "batch_size")},
        "final_val_acc": m["final_val_acc"], "best_val_acc": m["best_val_acc"],
        "train_minutes": m["train_minutes"], "precision": m["precision"],
        "device": e["device"], "device_name": e["device_name"], "torch": e["torch"], "git_commit": e["git_commit"],
        "run_digest": row["digest"], "note": note,
        "history": history[["epoch", "train_loss", "val_acc"]].astype(object).where(history.notna(), None)
        .to_dict("records"),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
