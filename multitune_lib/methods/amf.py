"""AMF, "Adaptable Weighting Fusion with Multiple Fine-tuning" (Shen, Plested, Caldwell, Zhong, Gedeon; arXiv
2207.12944), reconstructed from its abstract, MultiTune and SpotTune: no code or full text of it could be had.

"Multiple fine-tuning settings and one policy network are defined. The policy network ... can dynamically adjust to
an optimal weighting to feed different samples into models that are trained using different fine-tuning
strategies." Our reading, each choice a config field: K networks from the same source, each fine-tuned with its own
setting (a `Recipe`; default MultiTune's settings A and B, so that AMF minus MultiTune isolates the per-image
weighting); SpotTune's policy network reads the image and gives K logits, turned into weights by a softmax (`soft`)
or a straight-through Gumbel-softmax at SpotTune's temperature (`hard`); MultiTune's Eq. 1 with its eta made per
image fuses the pooled features, Z = W concat[w_1(x) X_1; ...; w_K(x) X_K] + b (`features`), or the networks' own
logits are weighted (`logits`). Everything trains jointly on one cross-entropy, with MultiTune's L2-SP (Eq. 2
scope) on every network whose setting has it, the policy at SpotTune's lr and weight decay. The policy runs in
float32 under any autocast (a small network, so it costs little): in bf16 its gradient drifts from a float64
reference (cosine 0.987 on a ResNet-26 pair, against 0.99995 with the policy in float32).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones.resnet26 import ResNet26
from ..core.backbone import Backbone
from ..core.config import DEFAULT_WEIGHT_DECAY, NO_WEIGHT_DECAY, RunConfig
from ..core.method import BackboneFactory, Built, Method, group, register_method, without
from ..core.registry import RECIPES
from .multitune import reinit
from .spottune import at_least_fp32


TOP = 8  # val images kept per network, those the policy weights most to it: the notebook shows them


@dataclass(frozen=True)
class Recipe:
    """A fine-tuning setting of one of AMF's networks."""
    name: str
    reinit: bool  # re-initialise the last block (config `reinit`: or the whole last stage)
    new_lr: str  # lr of the re-initialised part: "lr" or "lr_last"
    l2sp: bool  # L2-SP on this network; without it, SGD weight decay as plain fine-tuning has it
    about: str = ""


def register_recipe(recipe: Recipe) -> Recipe:
    return RECIPES.register(recipe.name, recipe)


register_recipe(Recipe("A", True, "lr", True, "MultiTune's setting A: last block re-initialised, lr everywhere"))
register_recipe(Recipe("B", True, "lr_last", True, "MultiTune's setting B: lr_last on the re-initialised block"))
register_recipe(Recipe("finetune", False, "lr", False, "plain fine-tuning: nothing re-initialised, no L2-SP"))


class AMF(nn.Module):
    """K backbones (heads dropped), a policy network giving K weights per image, and the fusion of their outputs."""

    def __init__(self, nets: list[Backbone], num_classes: int, weighting: str = "soft", fusion: str = "features",
                 temperature: float = 5.0, policy_width: float | None = None):
        super().__init__()
        for net in nets:
            net.reset_head(None)
        self.nets = nn.ModuleList(nets)
        width = nets[0].POLICY_WIDTH if policy_width is None else policy_width
        self.policy = ResNet26(len(nets), blocks_per_stage=1, width=width)
        self.weighting, self.fusion, self.temperature = weighting, fusion, temperature
        if fusion == "features":
            self.fc = nn.Linear(sum(n.num_features for n in nets), num_classes)
        else:
            self.heads = nn.ModuleList(nn.Linear(n.num_features, num_classes) for n in nets)
        k = len(nets)  # what the policy did on the split evaluated last: reset on entering eval mode
        self.register_buffer("weight_sum", torch.zeros(k), persistent=False)
        self.register_buffer("weight_sq", torch.zeros(k), persistent=False)
        self.register_buffer("chosen", torch.zeros(k), persistent=False)
        self.register_buffer("seen", torch.zeros(()), persistent=False)
        self.register_buffer("top_weight", torch.full((k, TOP), -1.0), persistent=False)
        self.register_buffer("top_index", torch.zeros((k, TOP), dtype=torch.long), persistent=False)

    def weights(self, logits: torch.Tensor) -> torch.Tensor:
        """N x K weights from the policy's logits, summing to 1 per image: their softmax, or (hard) one network per
        image, a Gumbel-softmax sample in training and the argmax at evaluation."""
        if self.weighting == "soft":
            return logits.softmax(-1)
        if self.training:
            return F.gumbel_softmax(logits, tau=self.temperature, hard=True)
        return F.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)

    def train(self, mode: bool = True):
        if not mode:
            for buffer in (self.weight_sum, self.weight_sq, self.chosen, self.seen, self.top_index):
                buffer.zero_()
            self.top_weight.fill_(-1.0)
        return super().train(mode)

    @torch.no_grad()
    def record(self, soft: torch.Tensor) -> None:
        """Add a batch of the split being evaluated, in order: its images are numbered from the count seen so far."""
        index = torch.arange(len(soft), device=soft.device) + self.seen.long()
        weights = torch.cat([self.top_weight, soft.t()], 1)
        best = weights.topk(TOP, dim=1)
        self.top_weight.copy_(best.values)
        self.top_index.copy_(torch.cat([self.top_index, index.expand(len(self.nets), -1)], 1).gather(1, best.indices))
        self.weight_sum += soft.sum(0)
        self.weight_sq += soft.pow(2).sum(0)
        self.chosen += F.one_hot(soft.argmax(-1), soft.shape[-1]).sum(0)
        self.seen += len(soft)

    def forward(self, x):
        with torch.autocast(x.device.type, enabled=False):  # the policy's gradient through bf16 convs drifts
            logits = self.policy(at_least_fp32(x))
        w = self.weights(logits)
        if not self.training:
            self.record(logits.softmax(-1))
        feats = [net.features(x) for net in self.nets]
        if self.fusion == "features":
            return self.fc(torch.cat([w[:, k, None].to(f.dtype) * f for k, f in enumerate(feats)], 1))
        return sum(w[:, k, None] * head(f).float() for k, (head, f) in enumerate(zip(self.heads, feats)))

    def policy_record(self) -> dict:
        """Per network, over the images evaluated last: the policy's mean weight, its standard deviation across
        images, the share of images whose largest weight is that network's, and (`top.k`, space-separated) the
        positions in that split of the TOP images it weights most to that network, largest weight first."""
        n = self.seen.clamp(min=1)
        mean = self.weight_sum / n
        sd = (self.weight_sq / n - mean.pow(2)).clamp(min=0).sqrt()
        share = self.chosen / n
        record = {f"{name}.{k}": float(v[k]) for name, v in (("weight", mean), ("weight_sd", sd), ("share", share))
                  for k in range(len(self.nets))}
        kept = (self.top_weight >= 0).sum(1)  # a split smaller than TOP keeps fewer
        return record | {f"top.{k}": " ".join(str(int(i)) for i in self.top_index[k, :kept[k]])
                         for k in range(len(self.nets))}


def build_amf(cfg: RunConfig, make_backbone: BackboneFactory, num_classes: int) -> Built:
    recipes = [RECIPES.get(name) for name in cfg.amf_settings]
    nets = [make_backbone() for _ in recipes]
    fresh = [reinit(net, cfg.reinit) if r.reinit else [] for net, r in zip(nets, recipes)]
    model = AMF(nets, num_classes, cfg.weighting, cfg.fusion, cfg.temperature, cfg.policy_width)
    groups, free = [], ["policy."]
    for k, (net, recipe, new) in enumerate(zip(nets, recipes, fresh)):
        last = [p for n, p in net.named_parameters() if n.startswith(tuple(m + "." for m in new))]
        decay = cfg.weight_decay if recipe.l2sp else sgd_decay(cfg.dataset)
        groups += [group(f"net{k}", without(net.parameters(), last), cfg.lr, decay),
                   group(f"net{k}_new", last, cfg.lr_last if recipe.new_lr == "lr_last" else cfg.lr, decay)]
        free += [] if recipe.l2sp else [f"nets.{k}."]
    head = model.fc if cfg.fusion == "features" else model.heads
    groups += [group("head", head, cfg.lr, cfg.weight_decay),
               group("policy", model.policy, cfg.policy_lr, cfg.policy_weight_decay)]
    return Built(model, [g for g in groups if g["params"]], ["fc.", "heads."], free)


def sgd_decay(dataset: str) -> float:
    """Plain fine-tuning's SGD weight decay (SpotTune's code): 0 on CIFAR-100, 5e-4 elsewhere."""
    return 0.0 if dataset in NO_WEIGHT_DECAY else DEFAULT_WEIGHT_DECAY


register_method(Method(
    "amf", "AMF", build_amf,
    # MultiTune's schedule, lrs and L2-SP (Eq. 2 scope); SpotTune's policy lr, weight decay and width
    dict(lr=0.1, lr_last=0.01, milestones=(20, 50, 80), weight_decay=0.0, alpha=0.01, beta=0.01, policy_lr=0.01,
         policy_weight_decay=1e-3, policy_width=None, amf_settings=("A", "B"), weighting="soft",
         fusion="features"),
    colour="tab:orange", metrics=AMF.policy_record, fp32="the policy in",
    about="several networks fine-tuned with different settings, a policy weighting them per image"))
