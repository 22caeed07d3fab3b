"""Study profiles: one definition of what each notebook trains, shared by every notebook and the runner."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from .errors import ConfigError


@dataclass(frozen=True)
class Profile:
    name: str
    datasets: dict  # dataset -> 1-based class ids (None = all classes)
    full_shots: int | None  # the "whole dataset" rows of Table 3 (None = the whole train split)
    shots: tuple[int, ...]  # the few-shot sweep, images per class
    epochs: int
    seeds: tuple[int, ...] = (0,)
    stats_shots: int | None = None  # images per class used to recompute mean/std (None = all)
    eta_grid: tuple[float, ...] = ()  # MultiTune eta sensitivity (02); empty skips it
    needs_source: bool = False
    labels: dict = field(default_factory=dict)  # dataset -> how tables and figures name it

    def label(self, dataset: str) -> str:
        return self.labels.get(dataset, dataset)

    def classes(self, dataset: str):
        return self.datasets[dataset]


PROFILES = {
    # The whole study's shape on a tiny budget: CI and a first look on a CPU.
    "smoke": Profile("smoke", {"aircraft": (1, 2, 3), "cifar100": (1, 2, 3)}, full_shots=6, shots=(4, 2), epochs=2,
                     stats_shots=20, labels={"aircraft": "Aircraft classes 1-3", "cifar100": "CIFAR100 classes 1-3"}),
    # The paper's settings: 110 epochs, full datasets, 20/15/10/5 shots, the ImageNet-pretrained ResNet-26.
    "paper": Profile("paper", {"aircraft": None, "cifar100": None}, full_shots=None, shots=(20, 15, 10, 5),
                     epochs=110, eta_grid=(0.0, 0.25, 0.5, 0.75, 1.0), needs_source=True,
                     labels={"aircraft": "Aircraft", "cifar100": "CIFAR100"}),
}


def get(name: str | None = None) -> Profile:
    """The named profile, else $MULTITUNE_PROFILE, else smoke (nbval cannot pass parameters)."""
    name = name or os.environ.get("MULTITUNE_PROFILE") or "smoke"
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}")
    return PROFILES[name]
