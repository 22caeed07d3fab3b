"""MultiTune (Wang, Plested, Gedeon, ICONIP 2020): two fine-tuned networks joined by one linear layer."""
from __future__ import annotations

import torch
from torch import nn

from ..core.backbone import Backbone
from ..core.config import RunConfig
from ..core.method import BackboneFactory, Built, Method, group, register_method, without


def reinit(net: Backbone, scope: str = "block") -> list[str]:
    """Re-initialise the last block (or the whole last stage); returns the re-initialised module names."""
    indices = net.last_blocks(scope)
    for i in indices:
        net.init_block(i)
    return [f"blocks.{i}" for i in indices]


class MultiTune(nn.Module):
    """Z = W concat[eta X1; (1 - eta) X2] + b, X_i the pooled last-block features of network i (Eq. 1)."""

    def __init__(self, net_a: Backbone, net_b: Backbone, num_classes: int, eta: float = 0.5):
        super().__init__()
        self.net_a, self.net_b = net_a, net_b
        self.eta = eta
        self.fc = nn.Linear(net_a.num_features + net_b.num_features, num_classes)
        # The per-network heads are never used: drop them so they neither train nor count.
        net_a.reset_head(None)
        net_b.reset_head(None)

    def forward(self, x):
        x1 = self.net_a.features(x)
        x2 = self.net_b.features(x)
        return self.fc(torch.cat([self.eta * x1, (1 - self.eta) * x2], 1))


def build_multitune(cfg: RunConfig, make_backbone: BackboneFactory, num_classes: int) -> Built:
    """Setting A: lr everywhere. Setting B: lr_last on its re-initialised block(s), lr elsewhere."""
    net_a, net_b = make_backbone(), make_backbone()
    new_a, new_b = reinit(net_a, cfg.reinit), reinit(net_b, cfg.reinit)
    model = MultiTune(net_a, net_b, num_classes, cfg.eta)
    last_b = [p for n, p in net_b.named_parameters() if n.startswith(tuple(m + "." for m in new_b))]
    return Built(model, [
        group("a", net_a, cfg.lr, cfg.weight_decay),
        group("b", without(net_b.parameters(), last_b), cfg.lr, cfg.weight_decay),
        group("b_last", last_b, cfg.lr_last, cfg.weight_decay),
        group("head", model.fc, cfg.lr, cfg.weight_decay),
    ], ["fc."] + [f"net_a.{m}." for m in new_a] + [f"net_b.{m}." for m in new_b])


register_method(Method(
    "multitune", "MultiTune", build_multitune,
    dict(lr=0.1, lr_last=0.01, milestones=(20, 50, 80), weight_decay=0.0, alpha=0.01, beta=0.01),
    colour="tab:red", compared=True,
    about="two networks fine-tuned with different settings, their features joined by eta"))
