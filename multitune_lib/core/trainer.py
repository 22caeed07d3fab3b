"""The training core: one configuration on data already loaded. Setup puts the data on the device and builds the
model, optimiser groups, scheduler and regulariser; then `train_epoch` -> `evaluate` -> one history row per epoch;
`summary` is the result row. Augmentation runs on the device, bf16 autocast where it pays, channels_last, fused SGD
on CUDA; `compile` compiles the loss (forward, cross-entropy, penalty) as one graph. `state_dict` /
`load_state_dict` carry everything a resumed run needs, so resuming is bitwise exact. `fit` (core/fit.py) wraps it
with the results store; `bench` times this very `train_epoch`."""
from __future__ import annotations

import math
import time
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from .. import env
from ..data import Normalise, Split, augmentation, normalisation
from ..errors import ConfigError, TrainingDiverged
from .backbone import create_backbone
from .config import RunConfig
from .method import build_model, regulariser
from .registry import METHODS

EVAL_BATCH = 500
PRECISIONS = ("auto", "bf16", "fp32")


def precision_for(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype: bf16 on CUDA and on CPUs with native bf16, fp32 (None) otherwise or when asked. Anything
    else (fp16 among them: its gradients would need loss scaling) is an error, never a silent bf16."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32" or (precision == "auto" and device.type != "cuda" and not env.cpu_has_bf16()):
        return None
    return torch.bfloat16


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def compiled(fn, compile: bool | str | Callable):
    """`fn` itself when `compile` is False, else `torch.compile`d with inductor (True) or the backend given (a name,
    such as "aot_eager", or a backend callable). Static shapes: each batch size gets its own graph whatever came
    before, so a resumed run runs the kernels an uninterrupted one does. With automatic dynamic shapes, a smaller
    last batch recompiles the graph with a symbolic batch size, which later epochs then run, a resumed run not."""
    if compile is False:
        return fn
    return torch.compile(fn, backend="inductor" if compile is True else compile, dynamic=False)


class Trainer:
    def __init__(self, cfg: RunConfig, train: Split, val: Split, *, source_state: dict | None = None,
                 device: str | torch.device | None = None, precision: str = "auto",
                 compile: bool | str | Callable = False, more: dict | None = None, cache: str | Path | None = None):
        self.cfg = cfg = cfg.resolved()
        self.cache = cache  # where a method's setup caches what it derives from the data (None: the default)
        self.method = METHODS.get(cfg.method)
        self.device = device = env.pick_device(device)
        self.train, self.val = train.to(device).for_crop(cfg.crop), val.to(device).for_crop(cfg.crop)
        self.more = {k: v.to(device).for_crop(cfg.crop) for k, v in (more or {}).items()}  # a method's other splits
        self.augment, self.eval_flip = augmentation(cfg.augment, cfg.crop, self.val.images.shape[-1])
        torch.manual_seed(cfg.seed)
        built = build_model(cfg, self.backbone_factory(source_state), train.num_classes, device)
        self.model = built.model
        self.norm, self.norm_eval = self.normalisers(train)
        self.curve_val = self.sample(self.val, cfg.curve_val_images)
        self.dtype = precision_for(device, precision)
        t0 = time.perf_counter()
        groups = self.method.prepare(self, built) if self.method.prepare else built.groups  # data-driven setup
        self.setup_seconds = time.perf_counter() - t0  # a resumed run sets up again: the process that finishes counts
        self.reg = regulariser(cfg, built)
        self.losses, self.forward = compiled(self.losses, compile), compiled(self.model, compile)
        self.opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, fused=device.type == "cuda")
        self.sched = torch.optim.lr_scheduler.MultiStepLR(self.opt, cfg.lr_steps_at(), cfg.gamma)
        self.whole_epochs, self.validated = cfg.validated_on_whole(), set(cfg.validated())
        self.gen = torch.Generator(device).manual_seed(cfg.seed)
        self.eval_gen = torch.Generator(device).manual_seed(cfg.seed)  # evaluation flips leave training's draws alone
        self.history: list[dict] = []
        self.env = env.environment(device)  # read at the start: the code that trains is the commit checked out now

    def backbone_factory(self, state: dict | None):
        """Fresh backbones for the method's builder, each with the source weights when there are any."""
        def make():
            net = create_backbone(self.cfg.backbone, self.train.num_classes)
            self.mean_std = net.MEAN_STD
            if state is not None:
                net.load_source(state)
            return net
        return make

    def normalisers(self, train: Split) -> tuple[Normalise, Normalise]:
        """Train and eval normalisation: the statistics the source weights were trained with where the backbone
        names them (ImageNet sources), else the dataset's; resized to `input_size` for a training crop, and by the
        same factor for whole images."""
        cfg, side = self.cfg, self.val.images.shape[-1]
        stats = self.mean_std or normalisation(cfg.dataset, train)
        eval_size = cfg.input_size and round(side * cfg.input_size / cfg.crop)
        train_size = cfg.input_size if self.augment.crop < side else eval_size  # whole images train at eval's size
        return Normalise(*stats, self.device, train_size), Normalise(*stats, self.device, eval_size)

    @staticmethod
    def sample(split: Split, n: int | None) -> Split:
        """A fixed random sample of `n` images of `split` (the same for every method and seed), or all of it."""
        if n is None or n >= len(split):
            return split
        keep = torch.randperm(len(split), generator=torch.Generator().manual_seed(0))[:n].sort().values
        keep = keep.to(split.labels.device)
        return Split(split.images[keep], split.labels[keep], split.num_classes, [split.files[i] for i in keep.tolist()])

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.dtype) if self.dtype else nullcontext()

    def train_epoch(self) -> tuple[float, float]:
        """One pass over the train split in seeded random batches (or the method's own epoch): (mean loss, last
        penalty), read once at the end."""
        if self.method.train_epoch is not None:
            return self.method.train_epoch(self)
        return self.train_pass(torch.randperm(len(self.train), generator=self.gen, device=self.device))

    def train_pass(self, order: torch.Tensor, extend: Callable | None = None) -> tuple[float, float]:
        """Train on the train images in `order`, a batch at a time; `extend(index, images, labels)` may add to each
        augmented batch (selective joint fine-tuning's source images)."""
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        penalty = torch.zeros((), device=self.device)
        for idx in order.split(self.cfg.batch_size):
            x, y = self.augment(self.train.images[idx], self.gen), self.train.labels[idx]
            if extend is not None:
                x, y = extend(idx, x, y)
            loss, penalty = self.step(self.norm(x), y)
            loss_sum += loss * len(idx)
        self.sched.step()
        return loss_sum.item() / len(order), float(penalty)

    def losses(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The cross-entropy and the regulariser penalty: the forward that `compile` compiles as one graph, so that
        the backward of all three goes through AOT autograd."""
        with self.autocast():
            out = self.model(x)
        loss = self.method.loss(self.model, out, y) if self.method.loss else F.cross_entropy(out.float(), y)
        penalty = self.reg() if self.reg is not None else torch.zeros((), device=self.device)
        return loss, penalty

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step (the optimiser stays eager); returns the detached cross-entropy and regulariser penalty."""
        loss, penalty = self.losses(x, y)
        self.opt.zero_grad(set_to_none=True)
        (loss + penalty).backward()
        self.opt.step()
        return loss.detach(), penalty.detach()

    @torch.no_grad()
    def evaluate(self, split: Split | None = None) -> float:
        """Top-1 accuracy on the whole images of `split` (default: val)."""
        split = self.val if split is None else split
        correct = torch.zeros((), dtype=torch.int64, device=split.labels.device)
        for i, out in self.outputs(split, flip=True):
            correct += (out.argmax(1) == split.labels[i:i + EVAL_BATCH]).sum()
        return correct.item() / max(len(split), 1)

    @torch.no_grad()
    def outputs(self, split: Split, flip: bool = False):
        """The model's outputs on the whole images of `split` in eval mode, a batch at a time: (start, logits). With
        `flip`, evaluation's seeded flips where the config asks for them."""
        self.model.eval()
        for i in range(0, len(split), EVAL_BATCH):
            x = split.images[i:i + EVAL_BATCH]
            with self.autocast():
                yield i, self.forward(self.norm_eval(self.eval_flip(x, self.eval_gen) if flip and self.eval_flip
                                                     else x))

    def epoch(self) -> dict:
        """Train one epoch, validate where the config asks, and append the epoch's history row."""
        epoch = len(self.history) + 1
        lrs = {f"lr.{g['name']}": g["lr"] for g in self.opt.param_groups}
        sync(self.device)
        t0 = time.perf_counter()
        train_loss, penalty = self.train_epoch()
        train_seconds = time.perf_counter() - t0
        if not (math.isfinite(train_loss) and math.isfinite(penalty)):  # argmax of NaN logits would score chance
            raise TrainingDiverged(f"{self.cfg.method} {self.cfg.dataset} diverged in epoch {epoch}: train loss "
                                   f"{train_loss}, penalty {penalty}")
        whole = epoch in self.whole_epochs  # the last epoch, and with whole_val milestones the last at each lr
        split = self.val if whole else self.curve_val
        validate = epoch in self.validated
        acc = self.evaluate(split) if validate else None
        row = {"epoch": epoch, "train_loss": train_loss, "penalty": penalty, "val_acc": acc,
               "val_images": len(split) if validate else None, "train_seconds": train_seconds,
               "seconds": time.perf_counter() - t0, **lrs}
        if self.method.train_metrics is not None:
            row.update(self.method.train_metrics(self.model))
        if validate and self.method.metrics is not None:
            row.update(self.method.metrics(self.model))
        self.history.append(row)
        return row

    def state_dict(self) -> dict:
        rng = {"cpu": torch.get_rng_state(), "data": self.gen.get_state(), "eval": self.eval_gen.get_state(),
               "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None}
        return {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(), "l2sp": self.reg.state_dict() if self.reg else None,
                "rng": rng, "history": self.history, "config": self.cfg.to_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        if self.reg is not None:
            self.reg.load_state_dict(state["l2sp"])
        torch.set_rng_state(state["rng"]["cpu"])
        self.gen.set_state(state["rng"]["data"])
        if "eval" in state["rng"]:  # checkpoints written before evaluation could flip have none
            self.eval_gen.set_state(state["rng"]["eval"])
        if self.device.type == "cuda" and state["rng"]["cuda"] is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.history = state["history"]

    def summary(self) -> dict:
        """The run's metrics: best and final validation accuracy, time, throughput, sizes and precision."""
        whole = len(self.val)  # the best epoch among those validated on the whole split (older rows: all were)
        accs = [-1.0 if h["val_acc"] is None or h.get("val_images", whole) != whole else h["val_acc"]
                for h in self.history]  # -1: not evaluated (on the whole split)
        n = len(self.train)
        return {"best_val_acc": max(accs), "final_val_acc": accs[-1], "best_epoch": accs.index(max(accs)) + 1,
                "train_minutes": sum(h["seconds"] for h in self.history) / 60,
                "images_per_s": n * len(self.history) / sum(h["train_seconds"] for h in self.history),
                "train_images": n, "min_images_per_class": self.train.min_per_class, "val_images": len(self.val),
                "num_classes": self.train.num_classes,
                "precision": self.precision()} | self.setup()

    def setup(self) -> dict:
        """The minutes of the method's data-driven setup (a criterion's scoring, a retrieval), outside the epochs."""
        return {"setup_minutes": self.setup_seconds / 60} if self.method.prepare else {}

    def precision(self) -> str:
        """The autocast dtype, and the parts the method keeps in float32 under it."""
        name = str(self.dtype or torch.float32).replace("torch.", "")
        return f"{name} ({self.method.fp32} float32)" if self.dtype and self.method.fp32 else name


def result_row(trainer: Trainer, digest: str, source, tags: dict | None) -> dict:
    """What the results store keeps of a finished run: config, metrics, environment, source and tags."""
    return {"digest": digest, "config": trainer.cfg.to_dict(), "metrics": trainer.summary(),
            "env": trainer.env, "source": str(source) if source is not None else None,
            "tags": tags or {}, "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
