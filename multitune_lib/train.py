"""One configuration, trained and evaluated: the dataset sits on the device, augmentation runs there, bf16 autocast,
channels_last, fused SGD on CUDA. A checkpoint after every epoch makes an interrupted run resume; a finished run
is found by its config hash and returned from the store, never recomputed."""
from __future__ import annotations

import dataclasses
import os
import time
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import data, env, methods, paths
from .checkpoint import load_backbone, load_source
from .install import sha256
from .config import RunConfig
from .errors import ConfigError
from .models import resnet26
from .results import ResultsStore

EVAL_BATCH = 500


def with_source(cfg: RunConfig, source: str | Path | None) -> RunConfig:
    """Put the source checkpoint's digest into the config, so the hash tells sources apart by content."""
    if source is None:
        return cfg
    if not Path(source).exists():
        load_source(source)  # raises the clear error
    sha = sha256(Path(source))
    if cfg.source_sha256 not in (None, sha):
        raise ConfigError(f"source {source} has sha256 {sha}, but the config names {cfg.source_sha256}")
    return dataclasses.replace(cfg, source_sha256=sha)


def precision_for(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype: bf16 on CUDA and on CPUs with native bf16, fp32 (None) otherwise or when asked."""
    if precision == "fp32":
        return None
    if precision == "bf16" or device.type == "cuda" or env.cpu_has_bf16():
        return torch.bfloat16
    if precision == "auto":
        return None
    raise ConfigError(f"precision must be auto, bf16 or fp32, got {precision!r}")


def quiet() -> bool:
    return bool(os.environ.get("CI"))


@torch.no_grad()
def evaluate(model, split: data.Split, norm: data.Normalise, autocast) -> float:
    """Top-1 accuracy on the full 72 x 72 images."""
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=split.labels.device)
    for i in range(0, len(split), EVAL_BATCH):
        with autocast():
            out = model(norm(split.images[i:i + EVAL_BATCH]))
        correct += (out.argmax(1) == split.labels[i:i + EVAL_BATCH]).sum()
    return correct.item() / max(len(split), 1)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rng_state(device, gen) -> dict:
    return {"cpu": torch.get_rng_state(), "data": gen.get_state(),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def set_rng_state(device, gen, state) -> None:
    torch.set_rng_state(state["cpu"])
    gen.set_state(state["data"])
    if device.type == "cuda" and state["cuda"] is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


def run(cfg: RunConfig, *, data_root: str | Path | None = None, results: str | Path = "results",
        source: str | Path | None = None, device: str | None = None, precision: str = "auto",
        compile: bool = False, keep_weights: bool = False, cache: str | Path | None = None,
        image_source: data.ImageSource | None = None, tags: dict | None = None,
        on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train one configuration (or return it from the store) and return its result row."""
    device = env.pick_device(device)
    cfg = with_source(cfg, source).resolved()
    digest = cfg.digest()
    store = ResultsStore(results)
    done = store.finished(digest)
    if done is not None:
        print(f"{cfg.method} {cfg.dataset} shots={cfg.shots} seed={cfg.seed}: finished run {digest} "
              f"found in {store.root}, not recomputed")
        return done

    if cfg.method == "scratch" and source is not None:
        raise ConfigError("method scratch trains from random initialisation: drop the source checkpoint")
    root = data_root or paths.default_data_root()
    train = data.load(root, cfg.dataset, "train", cfg.shots, cfg.classes, cfg.seed, cache, image_source)
    val = data.load(root, cfg.dataset, "val", None, cfg.classes, cfg.seed, cache, image_source)
    norm = data.Normalise(*data.normalisation(cfg.dataset, train), device)
    train, val = train.to(device).for_crop(cfg.crop), val.to(device).for_crop(cfg.crop)

    torch.manual_seed(cfg.seed)
    state = load_source(source)[0] if source is not None else None

    def make_backbone():
        net = resnet26(train.num_classes)
        if state is not None:
            load_backbone(net, state)
        return net

    built, reg = methods.build(cfg, make_backbone, train.num_classes, device)
    model = built.model
    step_model = torch.compile(model) if compile else model
    opt = torch.optim.SGD(built.groups, lr=cfg.lr, momentum=cfg.momentum, fused=device.type == "cuda")
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(cfg.milestones), cfg.gamma)
    gen = torch.Generator(device).manual_seed(cfg.seed)
    dtype = precision_for(device, precision)

    def autocast():
        return torch.autocast(device.type, dtype=dtype) if dtype else nullcontext()

    history: list[dict] = []
    ck = store.load_checkpoint(digest)
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        if reg is not None:
            reg.load_state_dict(ck["l2sp"])
        set_rng_state(device, gen, ck["rng"])
        history = ck["history"]
        print(f"resuming run {digest} after epoch {len(history)}")

    n = len(train)
    bar = tqdm(range(len(history), cfg.epochs), initial=len(history), total=cfg.epochs, disable=quiet(),
               desc=f"{cfg.method} {cfg.dataset} shots={cfg.shots or 'all'}", unit="epoch", mininterval=1.0)
    for epoch in bar:
        sync(device)
        t0 = time.perf_counter()
        model.train()
        lrs = {g["name"]: g["lr"] for g in opt.param_groups}
        loss_sum = torch.zeros((), device=device)
        penalty = torch.zeros((), device=device)
        for idx in torch.randperm(n, generator=gen, device=device).split(cfg.batch_size):
            x = norm.augment(train.images[idx], gen, cfg.crop)
            with autocast():
                out = step_model(x)
            loss = F.cross_entropy(out.float(), train.labels[idx])
            total = loss
            if reg is not None:
                penalty = reg()
                total = loss + penalty
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            loss_sum += loss.detach() * len(idx)
        sched.step()
        train_loss = loss_sum.item() / n  # synchronises
        train_seconds = time.perf_counter() - t0
        acc = None
        if epoch + 1 == cfg.epochs or (epoch + 1) % cfg.eval_every == 0:
            if hasattr(model, "reset_usage"):
                model.reset_usage()  # SpotTune's block usage is recorded on the val split
            acc = evaluate(step_model, val, norm, autocast)
        row = {"epoch": epoch + 1, "train_loss": train_loss, "penalty": float(penalty.detach()), "val_acc": acc,
               "train_seconds": train_seconds, "seconds": time.perf_counter() - t0, **{f"lr.{k}": v for k, v in lrs.items()}}
        if hasattr(model, "block_usage") and acc is not None:
            row.update({f"usage.{t}": u for t, u in enumerate(model.block_usage())})
        history.append(row)
        store.save_checkpoint(digest, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                       "scheduler": sched.state_dict(), "l2sp": reg.state_dict() if reg else None,
                                       "rng": rng_state(device, gen), "history": history})
        bar.set_postfix(loss=f"{train_loss:.3f}", acc="-" if acc is None else f"{acc:.3f}")
        if on_epoch is not None:
            on_epoch(row)
    bar.close()

    accs = [-1.0 if h["val_acc"] is None else h["val_acc"] for h in history]  # -1: epochs not evaluated
    train_seconds = sum(h["train_seconds"] for h in history)
    result = {
        "digest": digest,
        "config": cfg.to_dict(),
        "metrics": {"best_val_acc": max(accs), "final_val_acc": accs[-1], "best_epoch": accs.index(max(accs)) + 1,
                    "train_minutes": sum(h["seconds"] for h in history) / 60,
                    "images_per_s": n * len(history) / train_seconds, "train_images": n, "val_images": len(val),
                    "num_classes": train.num_classes, "precision": str(dtype or torch.float32).replace("torch.", "")},
        "env": env.environment(device),
        "source": str(source) if source is not None else None,
        "tags": tags or {},
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    store.finish(result, history, model.state_dict() if keep_weights else None)
    return result
