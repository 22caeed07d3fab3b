"""SpotTune (Guo et al., CVPR 2019): per image and per block, a policy picks the frozen or the fine-tuned block."""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones.resnet26 import ResNet26
from ..core.backbone import Backbone
from ..core.config import RunConfig
from ..core.method import BackboneFactory, Built, Method, group, register_method, without


def freeze_all_but_norms(module: nn.Module) -> nn.Module:
    """Freeze every weight except the normalisation layers', which train, as in the reference code."""
    for m in module.modules():
        if not isinstance(m, nn.modules.batchnorm._NormBase):
            for p in m.parameters(recurse=False):
                p.requires_grad_(False)
    return module


def routed_blocks(backbone: Backbone, route: str) -> list[int]:
    """The blocks the policy routes: every one (`all`), or those with an identity path (`residual`), as every unit
    SpotTune routes in its ResNet is residual; the others are fine-tuned like the stem and the head."""
    if route == "all":
        return list(range(len(backbone.blocks)))
    if route == "residual":
        return backbone.residual_blocks()
    raise ValueError(f"route must be 'all' or 'residual', got {route!r}")


def at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


class SpotTune(nn.Module):
    """The backbone with its blocks fine-tuned, frozen copies of the routed ones, a new head, and a policy network
    that reads the image: a small ResNet (one block per stage, as SpotTune's, scaled by `policy_width`, by default
    the backbone's POLICY_WIDTH so that it costs a similar share beside a lighter network) whose 2 x routed outputs
    are read as per-block logits for (frozen, fine-tuned). The policy trains from random initialisation, as in
    SpotTune.

    Everything but the head runs in float32 whatever the autocast: the policy's gradient is the difference of a
    block's fine-tuned and frozen outputs, which differ by well under bf16's 0.4% rounding early in training, and
    rounding the policy or the stem in bf16 already turns that gradient (tests/methods/test_spottune.py)."""

    def __init__(self, backbone: Backbone, num_classes: int, temperature: float = 5.0, sample_eval: bool = False,
                 route: str = "all", policy_width: float | None = None):
        super().__init__()
        self.backbone = backbone
        self.routed = routed_blocks(backbone, route)
        self.frozen = freeze_all_but_norms(nn.ModuleList(copy.deepcopy(backbone.blocks[i]) for i in self.routed))
        backbone.reset_head(num_classes)
        width = backbone.POLICY_WIDTH if policy_width is None else policy_width
        self.policy = ResNet26(2 * len(self.routed), blocks_per_stage=1, width=width)
        self.temperature = temperature
        self.sample_eval = sample_eval
        self.register_buffer("usage", torch.zeros(len(self.routed)))  # fine-tuned-path count per routed block
        self.register_buffer("seen", torch.zeros(()))
        # What the policy did in the last training pass; reset when training starts, read before a checkpoint
        self.register_buffer("train_usage", torch.zeros(len(self.routed)), persistent=False)
        self.register_buffer("train_entropy", torch.zeros(len(self.routed)), persistent=False)
        self.register_buffer("train_seen", torch.zeros(()), persistent=False)
        self.register_buffer("train_steps", torch.zeros(()), persistent=False)

    @property
    def blocks(self) -> nn.ModuleList:
        return self.backbone.blocks

    def decide(self, x: torch.Tensor) -> torch.Tensor:
        """N x routed in {0, 1}: 1 takes the fine-tuned block. Hard Gumbel-softmax, straight-through gradients."""
        logits = self.policy(x).float().view(len(x), -1, 2)
        if self.training or self.sample_eval:
            action = F.gumbel_softmax(logits, tau=self.temperature, hard=True)
        else:
            action = F.one_hot(logits.argmax(-1), 2).to(logits.dtype)
        if self.training:
            self.record_training(logits.detach(), action.detach()[..., 1])
        return action[..., 1]

    @torch.no_grad()
    def record_training(self, logits: torch.Tensor, took_tuned: torch.Tensor) -> None:
        """Sampled decisions and the entropy of the choice, in bits: a hard Gumbel-softmax picks argmax(logits +
        noise), whatever its temperature, so softmax(logits) is the distribution the decision is drawn from."""
        logp = logits.log_softmax(-1)
        self.train_entropy -= (logp.exp() * logp).sum(-1).sum(0) / math.log(2)
        self.train_usage += took_tuned.sum(0)
        self.train_seen += len(logits)
        self.train_steps += 1

    def train(self, mode: bool = True):
        counters = (self.train_usage, self.train_entropy, self.train_seen, self.train_steps) if mode else \
            (self.usage, self.seen)
        for c in counters:  # each is read on the pass that follows
            c.zero_()
        return super().train(mode)

    def reset_usage(self) -> None:
        self.usage.zero_()
        self.seen.zero_()

    def block_usage(self) -> dict[int, float]:
        """Per routed block, the fraction of images that took the fine-tuned path since entering eval mode."""
        return dict(zip(self.routed, (self.usage / self.seen.clamp(min=1)).tolist()))

    def training_record(self) -> dict:
        """The last training pass: per routed block the share of images sampled onto the fine-tuned copy and the
        policy's mean entropy (bits: 1 is a coin flip), and the number of policy updates."""
        n = self.train_seen.clamp(min=1)
        out = {f"train_usage.{t}": u for t, u in zip(self.routed, (self.train_usage / n).tolist())}
        out |= {f"train_entropy.{t}": h for t, h in zip(self.routed, (self.train_entropy / n).tolist())}
        return out | {"policy_updates": int(self.train_steps)}

    def forward(self, x):
        routed = dict(zip(self.routed, self.frozen))
        with torch.autocast(x.device.type, enabled=False):
            x = at_least_fp32(x)
            p = self.decide(x)
            with torch.no_grad():
                self.usage += p.sum(0)
                self.seen += len(x)
            h, p = self.backbone.stem(x), p.view(len(x), -1, 1, 1, 1)
            for t, tuned in enumerate(self.backbone.blocks):
                if t in routed:
                    pt = p[:, self.routed.index(t)]
                    h = routed[t](h) * (1 - pt) + tuned(h) * pt
                else:
                    h = tuned(h)
        return self.backbone.head(self.backbone.pool(h))


def build_spottune(cfg: RunConfig, make_backbone: BackboneFactory, num_classes: int) -> Built:
    model = SpotTune(make_backbone(), num_classes, cfg.temperature, cfg.sample_eval, cfg.route, cfg.policy_width)
    return Built(model, [
        group("net", without(model.parameters(), model.policy), cfg.lr, cfg.weight_decay),
        group("policy", model.policy, cfg.policy_lr, cfg.policy_weight_decay),
    ], [f"backbone.{model.backbone.HEAD}.", "policy."])


def block_usage(model: SpotTune) -> dict:
    return {f"usage.{t}": u for t, u in model.block_usage().items()}


register_method(Method(
    "spottune", "SpotTune", build_spottune,
    dict(lr=0.1, policy_lr=0.01, milestones=(40, 60, 80), policy_weight_decay=1e-3, alpha=None, route="all",
         policy_width=None),
    # SpotTune's code: lr steps at its first milestone only, no crop or flip, Gumbel samples at evaluation
    released=dict(lr_steps="first", augment="none", sample_eval=True, draw="first_n"),
    colour="tab:blue", compared=True, metrics=block_usage, train_metrics=SpotTune.training_record,
    fp32="all but the head in",  # blue and red as in the paper's Fig. 2
    about="per image and block, a Gumbel-softmax policy picks the frozen or the fine-tuned block"))
