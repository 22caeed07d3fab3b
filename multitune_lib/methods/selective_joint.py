"""Selective joint fine-tuning (Ge and Yu, CVPR 2017, "Borrowing Treasures from the Wealthy: Deep Transfer Learning
through Selective Joint Fine-tuning", arXiv 1702.08690; its Caffe code: the GitHub repository
ZYYSzj/Selective-Joint-Fine-tuning). Each target training image borrows labelled source images with similar
low-level statistics, and one network with two heads trains on both: CE_target + lambda CE_source.

As the paper, each in a config field: descriptors are per-channel histograms of filter responses, in bins of equal
mass on the target (`bins`), compared by a channel-weighted symmetric KL (data/retrieval.py); each target image keeps
its `neighbours` nearest source images and draws from the first K0 x level of them (`k0`); after a round, a target
image predicted wrongly gains 4 levels (4 K0 more neighbours) and a correct one above the entropy threshold 2; its
level also weights how often it is drawn. Batches are half target, half source: each target image brings one random
neighbour. Ours departs where our data forces it: the pool is the other Decathlon dataset's train split (not
ImageNet), the filter bank is the ImageNet EfficientNet-Lite0's stem and first block (no AlexNet weights offline) or a
Gabor bank, K0 and the list are sized for that pool, and the rounds run within one run's schedule (`rounds`).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .. import data
from ..core.backbone import Backbone
from ..core.config import RunConfig
from ..core.method import BackboneFactory, Built, Method, group, register_method
from ..data import retrieval
from ..errors import ConfigError

OTHER = {"aircraft": "cifar100", "cifar100": "aircraft"}  # pool auto: the other Decathlon dataset of the study
BANKS = {"lite0": retrieval.lite0_bank, "gabor": retrieval.gabor_bank}
WRONG, UNSURE = 4, 2  # levels a hard target image gains after a round: the paper's 4 K0 and 2 K0 more neighbours
EDGE_IMAGES_PER_CLASS = 20  # the target's train images the bins are fitted on: a fixed draw, so the pool's
# descriptors are one cached set per target dataset


class SelectiveJoint(nn.Module):
    """A backbone with its target head and, once `prepare` has the pool, a source head; in training with a pool it
    returns both heads' logits side by side (target classes first)."""

    def __init__(self, net: Backbone, classes: int, joint: bool, source_weight: float):
        super().__init__()
        self.net, self.classes, self.joint, self.source_weight = net, classes, joint, source_weight

    def forward(self, x):
        f = self.net.features(x)
        out = self.net.head(f)
        return torch.cat([out, self.source_fc(f)], 1) if self.training and self.joint else out


def pool_name(cfg: RunConfig) -> str | None:
    if cfg.pool == "none" or cfg.source_weight == 0:
        return None
    if cfg.pool != "auto":
        return cfg.pool
    if cfg.dataset not in OTHER:
        raise ConfigError(f"pool auto: no default source pool for {cfg.dataset}; name a Decathlon dataset as pool")
    return OTHER[cfg.dataset]


def more_data(cfg: RunConfig, load) -> dict:
    """The source pool (its train split) and a fixed draw of the target's train split to fit the bins on."""
    name = pool_name(cfg)
    if name is None:
        return {}
    pool = load(name, "train", None, cfg.pool_classes)
    target = load(cfg.dataset, "train", EDGE_IMAGES_PER_CLASS, cfg.classes, 0, allow_fewer=True)
    retrieval.check_pool(cfg.dataset, target.files, name, pool.files)
    return {"pool": pool, "edges_on": target}


def retrieve(cfg: RunConfig, train: data.Split, edges_on: data.Split, pool: data.Split,
             cache: str | Path | None = None) -> torch.Tensor:
    """Each train image's `neighbours` nearest pool images (N x neighbours indices, nearest first); descriptors
    cached in `cache` (default: the decode cache's folder)."""
    bank = BANKS[cfg.descriptor]().to(train.images.device)
    edges = retrieval.fit_edges(edges_on, bank, cfg.bins)
    p, q = (retrieval.descriptors(s, bank, edges, cache=cache).to(train.images.device) for s in (train, pool))
    return retrieval.nearest(p, q, bank.weights(), cfg.neighbours)[1]


def prepare(trainer, built: Built) -> list[dict]:
    """With a pool: the source head, each train image's neighbours, its level (1) and the round's record."""
    model, cfg = built.model, trainer.cfg
    if model.joint:
        pool = trainer.more["pool"]
        t0 = time.perf_counter()
        model.register_buffer("neighbours", retrieve(cfg, trainer.train, trainer.more["edges_on"], pool,
                                                           trainer.cache))
        model.retrieval_seconds = time.perf_counter() - t0
        model.source_fc = nn.Linear(model.net.num_features, pool.num_classes).to(trainer.device)
        model.register_buffer("level", torch.ones(len(trainer.train), dtype=torch.long, device=trainer.device))
        model.register_buffer("drawn", torch.zeros(len(pool), dtype=torch.bool, device=trainer.device))
        model.register_buffer("pool_labels", pool.labels, persistent=False)
        model.register_buffer("hard", torch.zeros(2, dtype=torch.long, device=trainer.device))
    return [group("net", model, cfg.lr, cfg.weight_decay)]


def round_starts(cfg: RunConfig) -> list[int]:
    """The first epoch of each round: the epochs split into `rounds` parts as equal as they come."""
    return [1 + r * cfg.epochs // cfg.rounds for r in range(cfg.rounds)]


@torch.no_grad()
def mine(trainer) -> None:
    """After a round: raise the level of each hard train image (wrong, or right above the entropy threshold) and
    start the round's record of source images drawn afresh."""
    model, split = trainer.model, trainer.train
    p = torch.cat([out.float().softmax(1) for _, out in trainer.outputs(split)])
    wrong = p.argmax(1) != split.labels
    entropy = -(p * p.clamp(min=1e-12).log()).sum(1) / math.log(model.classes)
    unsure = ~wrong & (entropy > trainer.cfg.entropy_threshold)
    model.level += WRONG * wrong + UNSURE * unsure
    model.hard.copy_(torch.stack([wrong.sum(), unsure.sum()]))
    model.drawn.zero_()


def borrow(trainer, idx: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each target image of the batch brings one source image, drawn from its first K0 x level neighbours."""
    model, pool = trainer.model, trainer.more["pool"]
    k = (trainer.cfg.k0 * model.level[idx]).clamp(max=model.neighbours.shape[1])
    pick = (torch.rand(len(idx), generator=trainer.gen, device=trainer.device) * k).long()
    src = model.neighbours[idx, pick]
    model.drawn[src] = True
    xs = trainer.augment(pool.images[src], trainer.gen)
    return torch.cat([x, xs]), torch.cat([y, pool.labels[src] + model.classes])


def train_epoch(trainer) -> tuple[float, float]:
    """Without a pool, fine-tuning's epoch; with one, mining where a round starts, target images drawn in
    proportion to their level (uniformly while every level is 1) and each batch extended by `borrow`."""
    model = trainer.model
    if not model.joint:
        return trainer.train_pass(torch.randperm(len(trainer.train), generator=trainer.gen, device=trainer.device))
    model.hard.zero_()
    if len(trainer.history) + 1 in round_starts(trainer.cfg)[1:]:
        mine(trainer)
    n = len(trainer.train)
    order = torch.randperm(n, generator=trainer.gen, device=trainer.device) if bool((model.level == 1).all()) \
        else torch.multinomial(model.level.float(), n, replacement=True, generator=trainer.gen)
    return trainer.train_pass(order, lambda idx, x, y: borrow(trainer, idx, x, y))


def joint_loss(model: SelectiveJoint, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """CE over the target rows with the target head + lambda CE over the source rows (labels offset by the target's
    class count) with the source head; without a pool, the cross-entropy of the target logits."""
    if not (model.training and model.joint):
        return F.cross_entropy(out.float(), y)
    c = model.classes
    target = F.cross_entropy(out[:, :c].float(), torch.where(y < c, y, -100))
    source = F.cross_entropy(out[:, c:].float(), torch.where(y >= c, y - c, -100))
    return target + model.source_weight * source


def record(model: SelectiveJoint) -> dict:
    """Per epoch: distinct source images and classes drawn so far this round, hard images found at its start
    (wrong, uncertain), and the retrieval's seconds."""
    if not model.joint:
        return {}
    drawn = model.drawn.nonzero().flatten()
    return {"sources_used": len(drawn), "source_classes_used": len(model.pool_labels[drawn].unique()),
            "hard_wrong": int(model.hard[0]), "hard_unsure": int(model.hard[1]),
            "retrieval_seconds": model.retrieval_seconds}


def build_selective_joint(cfg: RunConfig, make_backbone: BackboneFactory, num_classes: int) -> Built:
    net = make_backbone()
    net.reset_head(num_classes)
    model = SelectiveJoint(net, num_classes, pool_name(cfg) is not None, cfg.source_weight)
    return Built(model, [group("net", model, cfg.lr, cfg.weight_decay)], [f"net.{net.HEAD}.", "source_fc."])


def extra_work(cfg: RunConfig, train: int) -> tuple[int, int]:
    """A source image per target image in every epoch, and a pass over the train images before each later round."""
    return (cfg.epochs * train, (cfg.rounds - 1) * train) if pool_name(cfg) is not None else (0, 0)


register_method(Method(
    "selective_joint", "Selective joint FT", build_selective_joint,
    # fine-tuning's lr and schedule (its baseline); lambda 1: the paper's 0.5/0.5 up to the lr; K0 20 of 100 kept
    # neighbours: the top of a 3,334 to 40,000 image pool (the paper: 300 of 5,000 from ImageNet); one re-selection
    # halfway (two rounds); hard above half the largest entropy
    dict(lr=0.1, milestones=(20, 50, 80), alpha=None, pool="auto", pool_classes=None, descriptor="lite0", bins=retrieval.BINS, k0=20,
         neighbours=100, rounds=2, entropy_threshold=0.5, source_weight=1.0),
    colour="tab:cyan", more_data=more_data, prepare=prepare, train_epoch=train_epoch, loss=joint_loss,
    train_metrics=record, extra_work=extra_work, extra_in_epochs=True,
    timed={"pool": "none"},  # a step costs fine-tuning's per image; extra_work counts the source half
    about="fine-tuning on the target and on source images retrieved by low-level similarity, two heads"))
