"""MultiTune (Wang, Plested, Gedeon, ICONIP 2020): two fine-tuned ResNet-26 joined by one linear layer."""
from __future__ import annotations

import torch
from torch import nn

from .resnet import ResNet26, init_weights


def reinit(net: ResNet26, scope: str = "block") -> list[str]:
    """Re-initialise the last residual block (or the whole last stage); returns the re-initialised module names."""
    names = net.last_blocks(scope)
    modules = dict(net.named_modules())
    for name in names:
        init_weights(modules[name])
    return names


class MultiTune(nn.Module):
    """Z = W concat[eta X1; (1 - eta) X2] + b, X_i the pooled last-block features of network i (Eq. 1)."""

    def __init__(self, net_a: ResNet26, net_b: ResNet26, num_classes: int, eta: float = 0.5):
        super().__init__()
        self.net_a, self.net_b = net_a, net_b
        self.eta = eta
        self.fc = nn.Linear(net_a.fc.in_features + net_b.fc.in_features, num_classes)
        # The per-network heads are never used: drop them so they neither train nor count.
        net_a.fc = net_b.fc = None

    def forward(self, x):
        x1 = self.net_a.features(x)
        x2 = self.net_b.features(x)
        return self.fc(torch.cat([self.eta * x1, (1 - self.eta) * x2], 1))
