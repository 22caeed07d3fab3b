"""One run's configuration: what is hashed to find a finished run, and the paper's defaults per method."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from .errors import ConfigError

METHODS = ("spottune", "multitune", "finetune", "l2sp", "feature", "scratch")

# The paper's settings (Table 1, section 4.2); None in RunConfig means "take these".
DEFAULTS = {
    "spottune": dict(lr=0.1, policy_lr=0.01, milestones=(40, 60, 80), policy_weight_decay=1e-3, alpha=None),
    "multitune": dict(lr=0.1, lr_last=0.01, milestones=(20, 50, 80), weight_decay=0.0, alpha=0.01, beta=0.01),
    "finetune": dict(lr=0.1, milestones=(20, 50, 80), alpha=None),
    "l2sp": dict(lr=0.1, milestones=(20, 50, 80), weight_decay=0.0, alpha=0.01, beta=0.01),
    "feature": dict(lr=0.1, milestones=(20, 50, 80), weight_decay=0.0, alpha=None),
    # Training from random initialisation, as `pretrain` does to make a source model.
    "scratch": dict(lr=0.1, milestones=(20, 50, 80), weight_decay=5e-4, alpha=None),
}
# SpotTune's code decays weights on aircraft but not on cifar100; other datasets follow aircraft.
NO_WEIGHT_DECAY = ("cifar100",)


@dataclass(frozen=True)
class RunConfig:
    method: str
    dataset: str
    shots: int | None = None  # images per class; None = the whole train split
    classes: tuple[int, ...] | None = None  # 1-based class ids; None = all
    seed: int = 0
    epochs: int = 110
    batch_size: int = 128
    lr: float | None = None
    lr_last: float | None = None  # MultiTune setting B: the re-initialised block of network B
    policy_lr: float | None = None  # SpotTune's policy network
    milestones: tuple[int, ...] | None = None
    gamma: float = 0.1
    crop: int = 64  # training crop in px; evaluation sees the whole image (the paper: 64 px crops of 72 px)
    eval_every: int = 1  # validate every n epochs and after the last (the paper: every epoch)
    momentum: float = 0.9
    weight_decay: float | None = None
    policy_weight_decay: float | None = None
    alpha: float | None = None  # L2-SP towards the source; None = method default, 0 turns it off
    beta: float | None = None  # L2-SP on new weights
    eta: float = 0.5
    reinit: str = "block"  # MultiTune: re-initialise the last "block" or the whole last "stage"
    temperature: float = 5.0
    sample_eval: bool = False  # SpotTune: sample the policy at evaluation, as the original code did
    source_sha256: str | None = None  # digest of the source checkpoint; None = from scratch
    extra: dict = field(default_factory=dict)  # free-form tags that are part of the identity

    def __post_init__(self):
        if self.method not in METHODS:
            raise ConfigError(f"unknown method {self.method!r}: choose one of {', '.join(METHODS)}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"epochs and batch_size must be positive (got {self.epochs}, {self.batch_size})")
        if self.crop not in range(16, 65, 8) or self.eval_every < 1:
            raise ConfigError(f"crop must be a multiple of 8 in [16, 64] px and eval_every positive (got {self.crop}, "
                              f"{self.eval_every})")
        if not 0.0 <= self.eta <= 1.0:
            raise ConfigError(f"eta must lie in [0, 1], got {self.eta}")
        if self.shots is not None and self.shots < 1:
            raise ConfigError(f"shots must be a positive number of images per class, got {self.shots}")

    def resolved(self) -> "RunConfig":
        """Fill every None with the method's default, so the hash names the settings actually used."""
        d = dict(DEFAULTS[self.method])
        d.setdefault("weight_decay", 0.0 if self.dataset in NO_WEIGHT_DECAY else 5e-4)
        changes = {k: v for k, v in d.items() if getattr(self, k) is None}
        if (self.alpha if self.alpha is not None else d.get("alpha")) is None:
            changes.update(alpha=0.0, beta=0.0)
        r = dataclasses.replace(self, **changes)
        if r.classes is not None:
            r = dataclasses.replace(r, classes=tuple(sorted(r.classes)))
        return dataclasses.replace(r, milestones=tuple(r.milestones))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for k in ("classes", "milestones"):
            d[k] = list(d[k]) if d[k] is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown config fields {sorted(unknown)}; known: {sorted(known)}")
        d = dict(d)
        for k in ("classes", "milestones"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)

    def digest(self) -> str:
        """The run's identity: a hash of the resolved settings."""
        text = json.dumps(self.resolved().to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
