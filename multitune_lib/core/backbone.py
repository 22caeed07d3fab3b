"""The backbone interface: everything a method may use of a network, after timm's shared model parts.

A backbone is a stem, an ordered list of blocks (SpotTune routes each one, MultiTune re-initialises the last ones),
`pool` from the last block's output to `num_features`-wide features, and a linear head kept as the attribute named
by `HEAD`. Methods use nothing else, so a new network is one file: a subclass, and a factory registered with
`register_backbone`.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import torch
from torch import nn

from ..errors import CheckpointError
from .registry import BACKBONES


class Backbone(nn.Module):
    HEAD = "fc"  # attribute of the classifier; source checkpoints never carry it
    MEAN_STD: tuple | None = None  # input normalisation the source weights were trained with; None: the dataset's
    POLICY_WIDTH = 1.0  # width of SpotTune's policy network, relative to SpotTune's own, to keep its cost in step
    blocks: nn.ModuleList
    num_features: int

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """The last block's output -> N x num_features features."""
        raise NotImplementedError

    def stages(self) -> list[list[int]]:
        """Block indices grouped by the network's stages."""
        raise NotImplementedError

    def init_block(self, index: int) -> None:
        """Re-initialise one block as training from scratch would."""
        raise NotImplementedError

    def residual_blocks(self) -> list[int]:
        """Blocks with an identity path (x + f(x)), the units SpotTune routes under route residual: by default
        those timm marks `has_skip`."""
        return [i for i, b in enumerate(self.blocks) if getattr(b, "has_skip", False)]

    def conv_layers(self) -> list[list[str]]:
        """The parameters (head excluded) by conv layer, in network order: each conv's own, then those of the
        layers after it up to the next conv (its norm), as parameter contribution's released code gives a conv and
        its BN one fine-tuning ratio."""
        head, layers = f"{self.HEAD}.", []
        for name, module in self.named_modules():
            own = [f"{name}.{p}" if name else p for p, _ in module.named_parameters(recurse=False)]
            if isinstance(module, nn.Conv2d) or not layers:
                layers.append([])
            layers[-1] += [p for p in own if not p.startswith(head)]
        return [layer for layer in layers if layer]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.pool(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @property
    def head(self) -> nn.Module | None:
        return getattr(self, self.HEAD)

    def reset_head(self, num_classes: int | None) -> None:
        """A new linear head for `num_classes`, or none at all (methods that bring their own)."""
        setattr(self, self.HEAD, nn.Linear(self.num_features, num_classes) if num_classes else None)

    def load_source(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load source weights, strict on every key but the head's (each method attaches its own)."""
        head = f"{self.HEAD}."
        want = {k: v for k, v in self.state_dict().items() if not k.startswith(head)}
        got = {k: v for k, v in state_dict.items() if not k.startswith(head)}
        missing = [k for k in want if k not in got]
        unexpected = [k for k in got if k not in want]
        shapes = [f"{k} {tuple(got[k].shape)} vs model {tuple(v.shape)}"
                  for k, v in want.items() if k in got and got[k].shape != v.shape]
        problems = [f"{len(keys)} {label}: {few(keys)}" for label, keys in
                    (("missing", missing), ("unexpected", unexpected), ("with another shape", shapes)) if keys]
        name = type(self).__name__
        if len(missing) == len(want):
            raise CheckpointError(f"the source checkpoint is not a {name}: it has none of its weights "
                                  f"(it holds {few(list(got))}); give a source of the backbone the config names")
        if problems:  # a foreign checkpoint has hundreds of keys: the counts and a few of each stay one short line
            raise CheckpointError(f"the source checkpoint does not fit {name}: {'; '.join(problems)}; give a source "
                                  f"made for {name}, or set the backbone it was made for")
        self.load_state_dict(got, strict=False)

    def last_blocks(self, scope: str = "block") -> list[int]:
        """The blocks MultiTune re-initialises: the last block, or the whole last stage."""
        if scope == "block":
            return [len(self.blocks) - 1]
        if scope == "stage":
            return self.stages()[-1]
        raise ValueError(f"reinit scope must be 'block' or 'stage', got {scope!r}")


def few(keys: list[str], n: int = 4) -> str:
    return ", ".join(keys[:n]) + (f" ... and {len(keys) - n} more" if len(keys) > n else "")


def register_backbone(factory: Callable[[int], Backbone]) -> Callable[[int], Backbone]:
    """Decorator: register `factory(num_classes) -> Backbone` under its function name."""
    return BACKBONES.register(factory.__name__, factory)


def create_backbone(name: str, num_classes: int) -> Backbone:
    return BACKBONES.get(name)(num_classes)


@lru_cache(maxsize=None)
def _shape(name: str) -> tuple[float, tuple[int, ...], int, tuple[tuple[int, ...], ...]]:
    with torch.random.fork_rng():  # built once per name, for configs to check against: leave the seeds alone
        net = create_backbone(name, 1)
    params = dict(net.named_parameters())
    sizes = tuple(tuple(params[n].numel() for n in layer) for layer in net.conv_layers())
    return net.POLICY_WIDTH, tuple(net.residual_blocks()), len(net.blocks), sizes


def policy_width(name: str) -> float:
    """The width of SpotTune's policy beside backbone `name`, relative to SpotTune's own."""
    return _shape(name)[0]


def block_count(name: str) -> int:
    """How many blocks backbone `name` has (those SpotTune can route)."""
    return _shape(name)[2]


def conv_layers(name: str) -> int:
    """How many conv layers backbone `name` has (parameter contribution's ratios: one each)."""
    return len(_shape(name)[3])


def conv_layer_sizes(name: str) -> tuple[tuple[int, ...], ...]:
    """Per conv layer of backbone `name` (as `Backbone.conv_layers`), the size of each of its parameters."""
    return _shape(name)[3]


def residual_units(name: str) -> tuple[int, ...]:
    """The blocks of backbone `name` with an identity path."""
    return _shape(name)[1]


def all_residual(name: str) -> bool:
    """Whether every block of backbone `name` has an identity path (SpotTune's ResNet-26)."""
    _, residual, blocks, _ = _shape(name)
    return len(residual) == blocks
