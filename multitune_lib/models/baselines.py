"""Baselines: feature extraction on a frozen backbone (plain fine-tuning is a ResNet26 with a new head)."""
from __future__ import annotations

from torch import nn

from .resnet import ResNet26


class FeatureExtractor(nn.Module):
    """A frozen backbone, kept in eval mode so its BN statistics stay the source's, and a new linear head."""

    def __init__(self, backbone: ResNet26, num_classes: int):
        super().__init__()
        backbone.fc = None
        self.backbone = backbone.requires_grad_(False)
        self.fc = nn.Linear(backbone.end_bn.num_features, num_classes)

    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.eval()
        return self

    def forward(self, x):
        return self.fc(self.backbone.features(x))
