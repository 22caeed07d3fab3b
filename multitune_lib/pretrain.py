"""`pretrain`: a source model trained from random initialisation on a Decathlon dataset or class subset, saved with
its metadata for `--source`. The offline profile starts from CIFAR-100 classes 1-50, so none of its target classes
was seen in pretraining; users with the Decathlon's imagenet12 pretrain on that the same way."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from . import atomic, paths, train
from .checkpoint import load_source, save_source
from .config import RunConfig
from .data import eval_side
from .errors import ConfigError
from .results import ResultsStore

def class_spec(classes) -> str:
    """(1, 2, ..., 50) -> '1-50'; other subsets as a comma list."""
    if classes is None:
        return "all"
    c = sorted(classes)
    return f"{c[0]}-{c[-1]}" if c == list(range(c[0], c[-1] + 1)) else ",".join(map(str, c))


def write_card(out: Path, meta: dict) -> Path:
    """The metadata beside the checkpoint as JSON, for people and for diffs (the checkpoint's own copy is the truth)."""
    card = Path(out).with_suffix(".json")
    atomic.write_text(card, json.dumps(meta, indent=1) + "\n")
    return card


def pretrain(dataset: str = "cifar100", classes=tuple(range(1, 51)), *, epochs: int = 60, milestones=None,
             lr: float = 0.1, weight_decay: float = 5e-4, crop: int = 64, seed: int = 0, eval_every: int = 1,
             out: str | Path | None = None, note: str = "", force: bool = False, data_root=None,
             results: str | Path | None = None, device: str = "auto", precision: str = "auto") -> dict:
    """Train ResNet-26 from scratch (SGD momentum 0.9, random crop and flip, lr x0.1 at the milestones; default
    half and three quarters of the epochs) and write it to `out` in fp16 with its metadata; returns the metadata.
    An `out` made by the same run is left alone; one made by another run is replaced only with `force`."""
    out = Path(out or paths.default_source())
    cfg = RunConfig(method="scratch", dataset=dataset, classes=classes, seed=seed, epochs=epochs, lr=lr,
                    milestones=tuple(milestones) if milestones else (epochs // 2, epochs * 3 // 4),
                    weight_decay=weight_decay, crop=crop, eval_every=eval_every).resolved()
    if out.exists():
        meta = load_source(out)[1]
        if meta.get("run_digest") == cfg.digest():
            print(f"{out} already holds run {cfg.digest()}: not recomputed")
            return meta
        if not force:
            raise ConfigError(f"{out} holds another source model (run {meta.get('run_digest')}, "
                              f"{meta.get('epochs')} epochs); pass --force to replace it or --out to write elsewhere")
    store = ResultsStore(results or paths.project_root() / "runs" / "pretrain")
    row = train.run(cfg, data_root=data_root, results=store.root, device=device, precision=precision,
                    keep_weights=True, tags={"purpose": "pretrain"})
    history = pd.read_csv(store.run_dir(row["digest"]) / "history.csv")
    m, e = row["metrics"], row["env"]
    meta = {
        "origin": "multitune pretrain",
        "dataset": dataset, "classes": class_spec(cfg.classes), "num_classes": m["num_classes"],
        "train_images": m["train_images"], "val_images": m["val_images"],
        "epochs": epochs, "crop": crop, "eval_size": eval_side(crop), "seed": seed,
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
    out.parent.mkdir(parents=True, exist_ok=True)
    save_source(out, store.weights(row["digest"]), meta, half=True)
    write_card(out, meta)
    print(f"source model: {out} ({out.stat().st_size / 2**20:.1f} MiB), {dataset} classes {meta['classes']}, "
          f"final val acc {m['final_val_acc']:.4f} on {m['val_images']} images")
    return meta
