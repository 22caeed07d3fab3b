"""L2-SP (Li et al., ICML 2018): Omega(w) = alpha/2 ||w - w0||^2 + beta/2 ||w_new||^2, as Eq. 2 of the paper."""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn


def is_weight(name: str, p: torch.Tensor) -> bool:
    """Conv and linear weights; BN parameters and biases are not regularised."""
    return name.endswith("weight") and p.dim() > 1


class L2SP(nn.Module):
    """Pulls weights that came from the source towards their starting point w0, and new weights towards 0.

    w0 is a detached copy taken at construction (before training), so the penalty is exactly 0 at step 0.
    """

    def __init__(self, source: Iterable[tuple[str, nn.Parameter]], new: Iterable[tuple[str, nn.Parameter]],
                 alpha: float = 0.01, beta: float = 0.01):
        super().__init__()
        self.alpha, self.beta = alpha, beta
        source = [(n, p) for n, p in source if is_weight(n, p) and p.requires_grad]
        self.source = [p for _, p in source]
        self.new = [p for n, p in new if is_weight(n, p) and p.requires_grad]
        self.source_names = [n for n, _ in source]
        for i, p in enumerate(self.source):
            self.register_buffer(f"w0_{i}", p.detach().clone())

    @classmethod
    def for_model(cls, model: nn.Module, new_prefixes: Iterable[str], alpha: float, beta: float,
                  free_prefixes: Iterable[str] = ()) -> "L2SP":
        """Split `model`'s parameters into source and new by name prefix (the head, re-initialised blocks), leaving
        out those under `free_prefixes` (a network trained without L2-SP, a policy with its own weight decay)."""
        prefixes, free = tuple(new_prefixes), tuple(free_prefixes)
        named = [(n, p) for n, p in model.named_parameters() if not n.startswith(free)]
        return cls([(n, p) for n, p in named if not n.startswith(prefixes)],
                   [(n, p) for n, p in named if n.startswith(prefixes)], alpha, beta)

    def forward(self) -> torch.Tensor:
        w0 = [getattr(self, f"w0_{i}") for i in range(len(self.source))]
        moved = torch._foreach_sub(self.source, w0) if self.source else []  # foreach ops refuse an empty list
        return self.alpha / 2 * squared_norm(moved) + self.beta / 2 * squared_norm(self.new)


def squared_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Sum of squares over a list of tensors, in a few fused kernels on the GPU."""
    if not tensors:
        return torch.zeros(())
    return torch.stack(torch._foreach_norm(tensors)).pow(2).sum()
