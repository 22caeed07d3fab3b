"""Each method builds its model, optimiser parameter groups and regulariser from a source backbone.

To add a method: write a builder `(cfg, make_backbone, num_classes) -> Built`, register it in BUILDERS and
give its defaults in config.DEFAULTS.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .config import RunConfig
from .l2sp import L2SP
from .models import FeatureExtractor, MultiTune, ResNet26, SpotTune, reinit


@dataclass
class Built:
    model: nn.Module
    groups: list[dict]  # torch.optim param groups, each with a "name"
    new: list[str]  # name prefixes of parameters that did not come from the source (L2-SP's beta term)


def group(name: str, module_or_params, lr: float, weight_decay: float) -> dict:
    params = module_or_params.parameters() if isinstance(module_or_params, nn.Module) else module_or_params
    return {"name": name, "params": [p for p in params if p.requires_grad], "lr": lr, "weight_decay": weight_decay}


def new_head(net: ResNet26, num_classes: int) -> ResNet26:
    net.fc = nn.Linear(net.fc.in_features, num_classes)
    return net


def build_finetune(cfg: RunConfig, make_backbone: Callable[[], ResNet26], num_classes: int) -> Built:
    net = new_head(make_backbone(), num_classes)
    return Built(net, [group("net", net, cfg.lr, cfg.weight_decay)], ["fc."])


def build_feature(cfg, make_backbone, num_classes) -> Built:
    model = FeatureExtractor(make_backbone(), num_classes)
    return Built(model, [group("head", model.fc, cfg.lr, cfg.weight_decay)], ["fc."])


def build_spottune(cfg, make_backbone, num_classes) -> Built:
    model = SpotTune(make_backbone(), num_classes, cfg.temperature, cfg.sample_eval)
    policy = set(map(id, model.policy.parameters()))
    return Built(model, [
        group("net", [p for p in model.parameters() if id(p) not in policy], cfg.lr, cfg.weight_decay),
        group("policy", model.policy, cfg.policy_lr, cfg.policy_weight_decay),
    ], ["fc.", "policy."])


def build_multitune(cfg, make_backbone, num_classes) -> Built:
    """Setting A: lr everywhere. Setting B: lr_last on its re-initialised block(s), lr elsewhere."""
    net_a, net_b = make_backbone(), make_backbone()
    new_a, new_b = reinit(net_a, cfg.reinit), reinit(net_b, cfg.reinit)
    model = MultiTune(net_a, net_b, num_classes, cfg.eta)
    last_b = [p for n, p in net_b.named_parameters() if n.startswith(tuple(m + "." for m in new_b))]
    ids = set(map(id, last_b))
    return Built(model, [
        group("a", net_a, cfg.lr, cfg.weight_decay),
        group("b", [p for p in net_b.parameters() if id(p) not in ids], cfg.lr, cfg.weight_decay),
        group("b_last", last_b, cfg.lr_last, cfg.weight_decay),
        group("head", model.fc, cfg.lr, cfg.weight_decay),
    ], ["fc."] + [f"net_a.{m}." for m in new_a] + [f"net_b.{m}." for m in new_b])


BUILDERS = {"finetune": build_finetune, "l2sp": build_finetune, "scratch": build_finetune, "feature": build_feature,
            "spottune": build_spottune, "multitune": build_multitune}


def build(cfg: RunConfig, make_backbone, num_classes: int, device="cpu") -> tuple[Built, L2SP | None]:
    """The model on `device` (channels_last), its parameter groups and, when alpha or beta is set, its L2-SP
    regulariser (made after the move, so its starting point lives beside the weights)."""
    cfg = cfg.resolved()
    built = BUILDERS[cfg.method](cfg, make_backbone, num_classes)
    built.model.to(device, memory_format=torch.channels_last)
    reg = L2SP.for_model(built.model, built.new, cfg.alpha, cfg.beta) if (cfg.alpha or cfg.beta) else None
    return built, reg
