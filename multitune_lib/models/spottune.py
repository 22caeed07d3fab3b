"""SpotTune (Guo et al., CVPR 2019): per image and per residual block, a policy picks the frozen or the fine-tuned block."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .resnet import ResNet26


class SpotTune(nn.Module):
    """Shared stem, fine-tuned blocks, frozen-conv copies of them (their BNs train, as in the reference code),
    a new head, and a small ResNet (one block per stage) whose 24 outputs are read as 12 x 2 policy logits."""

    def __init__(self, backbone: ResNet26, num_classes: int, temperature: float = 5.0, sample_eval: bool = False):
        super().__init__()
        self.conv1, self.bn1 = backbone.conv1, backbone.bn1
        self.blocks = backbone.blocks
        self.frozen = copy.deepcopy(backbone.blocks)
        for m in self.frozen.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.requires_grad_(False)
        self.end_bn = backbone.end_bn
        self.fc = nn.Linear(backbone.fc.in_features, num_classes)
        self.policy = ResNet26(2 * len(self.blocks), blocks_per_stage=1)
        self.temperature = temperature
        self.sample_eval = sample_eval
        self.register_buffer("usage", torch.zeros(len(self.blocks)))  # fine-tuned-path count per block
        self.register_buffer("seen", torch.zeros(()))

    def decide(self, x: torch.Tensor) -> torch.Tensor:
        """N x 12 in {0, 1}: 1 takes the fine-tuned block. Hard Gumbel-softmax with straight-through gradients."""
        logits = self.policy(x).float().view(len(x), -1, 2)
        if self.training or self.sample_eval:
            action = F.gumbel_softmax(logits, tau=self.temperature, hard=True)
        else:
            action = F.one_hot(logits.argmax(-1), 2).to(logits.dtype)
        return action[..., 1]

    def reset_usage(self) -> None:
        self.usage.zero_()
        self.seen.zero_()

    def block_usage(self) -> list[float]:
        """Fraction of images that took the fine-tuned path, per block, since the last reset."""
        return (self.usage / self.seen.clamp(min=1)).tolist()

    def forward(self, x):
        p = self.decide(x)
        with torch.no_grad():
            self.usage += p.sum(0)
            self.seen += len(x)
        x = self.bn1(self.conv1(x))
        for t, (tuned, frozen) in enumerate(zip(self.blocks, self.frozen)):
            pt = p[:, t].view(-1, 1, 1, 1).to(x.dtype)
            x = frozen(x) * (1 - pt) + tuned(x) * pt
        return self.fc(F.relu(self.end_bn(x)).mean((2, 3)))
