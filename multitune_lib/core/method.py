"""A method is one object, registered once: its name, how tables and figures show it, the paper's defaults, and
the builder that turns a source backbone into a model, its optimiser parameter groups and its new weights.

To add a method: one file under `multitune_lib/methods/` that ends with `register_method(Method(...))`, and its
import in `multitune_lib/methods/__init__.py` (the README's "Extending the study" walks through it).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from .backbone import Backbone
from .config import RunConfig
from .l2sp import L2SP
from .registry import METHODS

BackboneFactory = Callable[[], Backbone]  # a fresh backbone with the source weights (if any) loaded


@dataclass
class Built:
    model: nn.Module
    groups: list[dict]  # torch.optim param groups, each with a "name"
    new: list[str]  # name prefixes of parameters that did not come from the source (L2-SP's beta term)
    free: list[str] = field(default_factory=list)  # name prefixes L2-SP leaves alone (neither term)


@dataclass(frozen=True)
class Method:
    name: str  # as in configs and on the command line
    label: str  # as in tables and figures
    build: Callable[[RunConfig, BackboneFactory, int], Built]  # (resolved config, backbone factory, classes)
    defaults: dict = field(default_factory=dict)  # the paper's settings; RunConfig's None fields take these
    released: dict = field(default_factory=dict)  # what the authors' released code does instead (protocol released)
    colour: str = "tab:gray"  # in figures
    compared: bool = False  # one of the methods Table 3 and Fig. 2 compare (the paper's SpotTune and MultiTune)
    from_source: bool = True  # False: trains from random initialisation and refuses a source checkpoint
    metrics: Callable[[nn.Module], dict] | None = None  # extra per-epoch columns, read after each validation
    train_metrics: Callable[[nn.Module], dict] | None = None  # extra per-epoch columns, read after each training pass
    fp32: str = ""  # the parts the model keeps in float32 under bf16 autocast, named in the run's precision
    # Before training, with the results store: (config, proxy) -> (the config to train, a record kept in the run),
    # where proxy(config) trains or finds another run in the same store (parameter contribution's ratio search)
    search: Callable[[RunConfig, Callable[[RunConfig], dict]], tuple[RunConfig, dict]] | None = None
    # After building, with the data on the device: (trainer, built) -> the optimiser's parameter groups
    prepare: Callable[[object, Built], list[dict]] | None = None
    # (resolved config, train images) -> (training, evaluation) image passes a run costs beyond its epochs'
    # training and validation: what `plan` adds for a search
    extra_work: Callable[[RunConfig, int], tuple[int, int]] | None = None
    # True: extra_work is work inside the run's epochs that `bench`'s step (at `timed`) leaves out, so a speed
    # measured on the method's own runs holds it already (selective joint's source half)
    extra_in_epochs: bool = False
    timed: dict = field(default_factory=dict)  # settings `bench` times a step with, where the search would set them
    # Data beyond the run's splits: (resolved config, load(dataset, split)) -> {name: Split}, given to the trainer
    more_data: Callable[[RunConfig, Callable], dict] | None = None
    # An epoch of the method's own (trainer -> (mean loss, last penalty)), built on `Trainer.train_pass`
    train_epoch: Callable[[object], tuple[float, float]] | None = None
    # The training loss from (model, outputs, labels), where it is not the cross-entropy of the outputs
    loss: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    about: str = ""


def register_method(method: Method) -> Method:
    return METHODS.register(method.name, method)


def compared_methods() -> list[Method]:
    """The methods of Table 3 and Fig. 2, in registration order."""
    return [m for m in METHODS.items.values() if m.compared]


def group(name: str, module_or_params, lr: float, weight_decay: float) -> dict:
    params = module_or_params.parameters() if isinstance(module_or_params, nn.Module) else module_or_params
    return {"name": name, "params": [p for p in params if p.requires_grad], "lr": lr, "weight_decay": weight_decay}


def without(params, exclude) -> list[nn.Parameter]:
    """`params` minus those of `exclude` (a module or parameters), by identity."""
    ids = {id(p) for p in (exclude.parameters() if isinstance(exclude, nn.Module) else exclude)}
    return [p for p in params if id(p) not in ids]


def build(cfg: RunConfig, make_backbone: BackboneFactory, num_classes: int, device="cpu") -> tuple[Built, L2SP | None]:
    """The model on `device` (channels_last), its parameter groups and its L2-SP regulariser (`regulariser`)."""
    built = build_model(cfg, make_backbone, num_classes, device)
    return built, regulariser(cfg, built)


def build_model(cfg: RunConfig, make_backbone: BackboneFactory, num_classes: int, device="cpu") -> Built:
    """The model on `device` (channels_last) and its parameter groups."""
    cfg = cfg.resolved()
    built = METHODS.get(cfg.method).build(cfg, make_backbone, num_classes)
    built.model.to(device, memory_format=torch.channels_last)
    return built


def regulariser(cfg: RunConfig, built: Built) -> L2SP | None:
    """L2-SP when alpha or beta is set, made once the model is on its device (so its starting point lives beside
    the weights) and a method's `prepare` has added what it adds (a head it sizes from data)."""
    cfg = cfg.resolved()
    # the released code's starting point aliases the live weights, so its alpha term is always 0
    alpha = 0.0 if cfg.l2sp_scope == "released" else cfg.alpha
    return L2SP.for_model(built.model, built.new, alpha, cfg.beta, built.free) if (alpha or cfg.beta) else None
