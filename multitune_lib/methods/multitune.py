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


class SharedTrunkMultiTune(nn.Module):
    """The released code's MultiTune: one trunk (the blocks before the re-initialised ones), two re-initialised copies
    of those blocks, and the final pooling (BN+ReLU and pool) shared by both branches, joined as in Eq. 1."""

    def __init__(self, net: Backbone, branch_b: nn.ModuleList, num_classes: int, eta: float = 0.5):
        super().__init__()
        self.net, self.branch_b, self.eta = net, branch_b, eta
        self.first = len(net.blocks) - len(branch_b)  # branch A is net.blocks[first:]
        self.fc = nn.Linear(2 * net.num_features, num_classes)
        net.reset_head(None)

    def forward(self, x):
        x = self.net.stem(x)
        for block in self.net.blocks[:self.first]:
            x = block(x)
        x1 = x2 = x
        for a, b in zip(self.net.blocks[self.first:], self.branch_b):
            x1, x2 = a(x1), b(x2)
        return self.fc(torch.cat([self.eta * self.net.pool(x1), (1 - self.eta) * self.net.pool(x2)], 1))


def l2sp_new(cfg: RunConfig, reinitialised: list[str]) -> list[str]:
    """Parameters in L2-SP's beta term: the last layer (Eq. 2: "the weights of the last layer"), and under the
    reinit_new scope the re-initialised blocks too; every other weight is in the alpha term."""
    return ["fc."] + (reinitialised if cfg.l2sp_scope == "reinit_new" else [])


def build_multitune(cfg: RunConfig, make_backbone: BackboneFactory, num_classes: int) -> Built:
    """Setting A: lr everywhere. Setting B: lr_last on its re-initialised block(s), lr elsewhere (lr_b lost: lr)."""
    if cfg.trunk == "shared":
        return build_shared(cfg, make_backbone, num_classes)
    net_a, net_b = make_backbone(), make_backbone()
    new_a, new_b = reinit(net_a, cfg.reinit), reinit(net_b, cfg.reinit)
    model = MultiTune(net_a, net_b, num_classes, cfg.eta)
    last_b = [p for n, p in net_b.named_parameters() if n.startswith(tuple(m + "." for m in new_b))]
    return Built(model, [
        group("a", net_a, cfg.lr, cfg.weight_decay),
        group("b", without(net_b.parameters(), last_b), cfg.lr, cfg.weight_decay),
        group("b_last", last_b, lr_last(cfg), cfg.weight_decay),
        group("head", model.fc, cfg.lr, cfg.weight_decay),
    ], l2sp_new(cfg, [f"net_a.{m}." for m in new_a] + [f"net_b.{m}." for m in new_b]))


def build_shared(cfg: RunConfig, make_backbone: BackboneFactory, num_classes: int) -> Built:
    """One trunk whose re-initialised last block(s) are branch A, and a second re-initialised copy as branch B."""
    net, twin = make_backbone(), make_backbone()
    new_a = reinit(net, cfg.reinit)
    reinit(twin, cfg.reinit)
    branch_b = nn.ModuleList(twin.blocks[i] for i in twin.last_blocks(cfg.reinit))
    model = SharedTrunkMultiTune(net, branch_b, num_classes, cfg.eta)
    return Built(model, [
        group("a", net, cfg.lr, cfg.weight_decay),
        group("b_last", branch_b, lr_last(cfg), cfg.weight_decay),
        group("head", model.fc, cfg.lr, cfg.weight_decay),
    ], l2sp_new(cfg, [f"net.{m}." for m in new_a] + ["branch_b."]))


def lr_last(cfg: RunConfig) -> float:
    """Setting B's lr on its re-initialised block; the released code resets every group to one lr each epoch."""
    return cfg.lr if cfg.lr_b == "lost" else cfg.lr_last


register_method(Method(
    "multitune", "MultiTune", build_multitune,
    dict(lr=0.1, lr_last=0.01, milestones=(20, 50, 80), weight_decay=0.0, alpha=0.01, beta=0.01, l2sp_scope="eq2",
         trunk="two", lr_b="kept"),
    # the released code: weight decay back to SpotTune's per dataset (None), batch 120, flips at evaluation too
    released=dict(l2sp_scope="released", trunk="shared", lr_b="lost", weight_decay=None, batch_size=120,
                  augment="flip_both", draw="first_n"),
    colour="tab:red", compared=True,
    about="two networks fine-tuned with different settings, their features joined by eta"))
