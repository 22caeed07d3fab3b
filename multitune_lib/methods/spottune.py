"""SpotTune (Guo et al., CVPR 2019): per image and per block, a policy picks the frozen or the fine-tuned block."""
from __future__ import annotations

import copy

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


class SpotTune(nn.Module):
    """The backbone with its blocks fine-tuned, frozen copies of them, a new head, and a policy network that reads
    the image: a small ResNet (one block per stage, as SpotTune's, narrowed by the backbone's POLICY_WIDTH so that
    it costs a similar share beside a lighter network) whose 2 x blocks outputs are read as per-block logits for
    (frozen, fine-tuned). The policy trains from random initialisation, as in SpotTune."""

    def __init__(self, backbone: Backbone, num_classes: int, temperature: float = 5.0, sample_eval: bool = False):
        super().__init__()
        self.backbone = backbone
        self.frozen = freeze_all_but_norms(copy.deepcopy(backbone.blocks))
        backbone.reset_head(num_classes)
        self.policy = ResNet26(2 * len(backbone.blocks), blocks_per_stage=1, width=backbone.POLICY_WIDTH)
        self.temperature = temperature
        self.sample_eval = sample_eval
        self.register_buffer("usage", torch.zeros(len(backbone.blocks)))  # fine-tuned-path count per block
        self.register_buffer("seen", torch.zeros(()))

    @property
    def blocks(self) -> nn.ModuleList:
        return self.backbone.blocks

    def decide(self, x: torch.Tensor) -> torch.Tensor:
        """N x blocks in {0, 1}: 1 takes the fine-tuned block. Hard Gumbel-softmax, straight-through gradients."""
        logits = self.policy(x).float().view(len(x), -1, 2)
        if self.training or self.sample_eval:
            action = F.gumbel_softmax(logits, tau=self.temperature, hard=True)
        else:
            action = F.one_hot(logits.argmax(-1), 2).to(logits.dtype)
        return action[..., 1]

    def train(self, mode: bool = True):
        if not mode:
            self.reset_usage()  # usage is read on the split evaluated next
        return super().train(mode)

    def reset_usage(self) -> None:
        self.usage.zero_()
        self.seen.zero_()

    def block_usage(self) -> list[float]:
        """Fraction of images that took the fine-tuned path, per block, since the last reset (entering eval mode)."""
        return (self.usage / self.seen.clamp(min=1)).tolist()

    def forward(self, x):
        p = self.decide(x)
        with torch.no_grad():
            self.usage += p.sum(0)
            self.seen += len(x)
        x = self.backbone.stem(x)
        for t, (tuned, frozen) in enumerate(zip(self.backbone.blocks, self.frozen)):
            pt = p[:, t].view(-1, 1, 1, 1).to(x.dtype)
            x = frozen(x) * (1 - pt) + tuned(x) * pt
        return self.backbone.head(self.backbone.pool(x))


def build_spottune(cfg: RunConfig, make_backbone: BackboneFactory, num_classes: int) -> Built:
    model = SpotTune(make_backbone(), num_classes, cfg.temperature, cfg.sample_eval)
    return Built(model, [
        group("net", without(model.parameters(), model.policy), cfg.lr, cfg.weight_decay),
        group("policy", model.policy, cfg.policy_lr, cfg.policy_weight_decay),
    ], [f"backbone.{model.backbone.HEAD}.", "policy."])


def block_usage(model: SpotTune) -> dict:
    return {f"usage.{t}": u for t, u in enumerate(model.block_usage())}


register_method(Method(
    "spottune", "SpotTune", build_spottune,
    dict(lr=0.1, policy_lr=0.01, milestones=(40, 60, 80), policy_weight_decay=1e-3, alpha=None),
    # SpotTune's code: lr steps at its first milestone only, no crop or flip, Gumbel samples at evaluation
    released=dict(lr_steps="first", augment="none", sample_eval=True, draw="first_n"),
    colour="tab:blue", compared=True, metrics=block_usage,  # blue and red as in the paper's Fig. 2
    about="per image and block, a Gumbel-softmax policy picks the frozen or the fine-tuned block"))
