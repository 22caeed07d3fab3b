"""One run's configuration: every setting that decides a result, each with its help text, the method defaults it
falls back on, and the hash that names the run in the results store. The command line is derived from these fields
(tools/options.py), so a default or a help text lives here and nowhere else."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from dataclasses import dataclass, field

from ..errors import ConfigError
from .registry import BACKBONES, METHODS

# SpotTune's code decays weights on aircraft but not on cifar100; other datasets follow aircraft.
NO_WEIGHT_DECAY = ("cifar100",)
DEFAULT_WEIGHT_DECAY = 5e-4

# The run hash keeps the names and fields of the first store format, so every stored digest stays valid:
# renamed fields are hashed under their old name, and fields added since are left out while at their default.
HASHED_AS = {"images_per_class": "shots"}
ADDED_SINCE = {"backbone": "resnet26", "input_size": None, "curve_val_images": None, "allow_fewer": False}

# Every number a config holds, checked where the config is made, before any data loads.
INTEGERS = {"epochs": 1, "batch_size": 1, "eval_every": 1, "seed": 0, "images_per_class": 1, "input_size": 16,
            "curve_val_images": 1}  # the lowest value allowed; None (where a field allows it) means "the default"
NUMBERS = {  # (low, high, low allowed, high allowed)
    "lr": (0, math.inf, False, False), "lr_last": (0, math.inf, True, False), "policy_lr": (0, math.inf, True, False),
    "gamma": (0, math.inf, False, False), "momentum": (0, 1, True, False), "eta": (0, 1, True, True),
    "weight_decay": (0, math.inf, True, False), "policy_weight_decay": (0, math.inf, True, False),
    "alpha": (0, math.inf, True, False), "beta": (0, math.inf, True, False), "temperature": (0, math.inf, False, False),
}


def upgrade(d: dict) -> dict:
    """A stored config dict with today's field names (stores written before a rename hold the old ones)."""
    renamed = {old: new for new, old in HASHED_AS.items()}
    return {renamed.get(k, k): v for k, v in d.items()}


def _check_integer(name: str, value, lowest: int) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lowest):
        raise ConfigError(f"{name} must be an integer >= {lowest}, got {value!r}")


def _check_number(name: str, value, low, high, low_in: bool, high_in: bool) -> None:
    if value is None:
        return
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and \
        (low <= value if low_in else low < value) and (value <= high if high_in else value < high)
    if not ok:
        interval = f"{'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}"
        raise ConfigError(f"{name} must be a finite number in {interval}, got {value!r}")


def setting(default, help: str, **cli):
    """A config field with its help text and command-line hints: choices (a callable: registries fill late),
    metavar, text=True (given as one string that the config parses), cli=False (not an option)."""
    return field(default=default, metadata={"help": help, **cli})


def parse_classes(spec) -> tuple[int, ...] | None:
    """'1-50' or '1,3,7-9' -> 1-based class ids (the Decathlon class folder numbers); None, '' or 'all' -> None."""
    if spec is None or isinstance(spec, (tuple, list, range)):
        ids = None if spec is None else list(spec)
    elif spec in ("", "all"):
        return None
    else:
        ids = []
        for part in str(spec).split(","):
            lo, hi = _class_range(spec, part)
            ids.extend(range(lo, hi + 1))
    if ids is not None and (not ids or min(ids) < 1):
        raise ConfigError(f"bad class list {spec!r}: give 1-based ids like '1-50' or '1,3,7-9' ('all' for every class)")
    return None if ids is None else tuple(sorted(set(ids)))


def _class_range(spec, part: str) -> tuple[int, int]:
    """One 'lo-hi' or 'id' item of a class list; an inverted range is an error, not an empty one."""
    lo, _, hi = part.strip().partition("-")
    try:
        lo, hi = int(lo), int(hi or lo)
    except ValueError:
        raise ConfigError(f"bad class list {spec!r}: use 1-based ids like '1-50' or '1,3,7-9'") from None
    if hi < lo:
        raise ConfigError(f"bad class list {spec!r}: the range {part.strip()} is inverted; write {hi}-{lo}")
    return lo, hi


def class_spec(classes) -> str:
    """(1, 2, ..., 50) -> '1-50'; other subsets as a comma list; None -> 'all'."""
    if classes is None:
        return "all"
    c = sorted(classes)
    return f"{c[0]}-{c[-1]}" if c == list(range(c[0], c[-1] + 1)) else ",".join(map(str, c))


@dataclass(frozen=True)
class RunConfig:
    method: str = field(metadata={"help": "training method", "choices": METHODS.names})
    dataset: str = field(metadata={"help": "Decathlon dataset name, e.g. aircraft or cifar100"})
    backbone: str = setting("resnet26", "network the methods build on", choices=BACKBONES.names)
    images_per_class: int | None = setting(None, "images per class drawn from the train split (none: all)")
    allow_fewer: bool = setting(False, "where a class has fewer train images than images_per_class, train on what "
                                "it has (the run records the smallest count); otherwise that is an error")
    classes: tuple[int, ...] | None = setting(None, "1-based class ids to keep, e.g. '51-100', or 'all'",
                                              metavar="IDS", text=True)
    seed: int = setting(0, "seed for the few-shot draw, initialisation and augmentation")
    epochs: int = setting(110, "training epochs (paper: 110)")
    batch_size: int = setting(128, "training batch size (paper: 128)")
    lr: float | None = setting(None, "learning rate (paper: 0.1)")
    lr_last: float | None = setting(None, "MultiTune setting B: lr of its re-initialised block (paper: 0.01)")
    policy_lr: float | None = setting(None, "SpotTune: policy network lr (paper: 0.01)")
    milestones: tuple[int, ...] | None = setting(None, "epochs where lr is multiplied by gamma (paper: 20 50 80 for "
                                                 "MultiTune, 40 60 80 for SpotTune)")
    gamma: float = setting(0.1, "lr factor at each milestone")
    crop: int = setting(64, "training crop in px; evaluation sees the whole image (paper: 64 px crops of 72 px); "
                        "smaller crops train on scaled-down images")
    input_size: int | None = setting(None, "side in px the training crop is resized to on the device, whole images "
                                     "at evaluation by the same factor (none: as loaded; ImageNet sources: 224)")
    curve_val_images: int | None = setting(None, "validate the epochs before the last on a fixed sample of this "
                                           "many val images, for the curves (none: the whole val split); the "
                                           "last epoch always sees the whole split")
    eval_every: int = setting(1, "validate every n epochs and after the last (paper: every epoch)")
    momentum: float = setting(0.9, "SGD momentum (paper: 0.9)")
    weight_decay: float | None = setting(None, "SGD weight decay (SpotTune: 5e-4, 0 on cifar100)")
    policy_weight_decay: float | None = setting(None, "SpotTune: policy network weight decay (paper: 1e-3)")
    alpha: float | None = setting(None, "L2-SP strength towards the source weights (0 turns it off)")
    beta: float | None = setting(None, "L2-SP strength on new weights")
    eta: float = setting(0.5, "MultiTune: share of network A in the joined features (paper: 0.5)")
    reinit: str = setting("block", "MultiTune: re-initialise the last block or the whole last stage",
                          choices=lambda: ["block", "stage"])
    temperature: float = setting(5.0, "SpotTune: Gumbel-softmax temperature (paper: 5)")
    sample_eval: bool = setting(False, "SpotTune: sample the policy at evaluation, as the original code did")
    source_sha256: str | None = setting(None, "digest of the source checkpoint; None = from scratch", cli=False)
    extra: dict = field(default_factory=dict, metadata={"help": "free-form tags that are part of the identity",
                                                         "cli": False})

    def __post_init__(self):
        # class lists may be given as text ('51-100'), milestones as any sequence: store both as tuples
        object.__setattr__(self, "classes", parse_classes(self.classes))
        if self.milestones is not None:
            object.__setattr__(self, "milestones", tuple(self.milestones))
        METHODS.get(self.method)
        BACKBONES.get(self.backbone)
        for name, lowest in INTEGERS.items():
            _check_integer(name, getattr(self, name), lowest)
        for name, interval in NUMBERS.items():
            _check_number(name, getattr(self, name), *interval)
        if self.crop not in range(16, 65, 8):
            raise ConfigError(f"crop must be a multiple of 8 in [16, 64] px, got {self.crop!r}")
        if self.input_size is not None and self.input_size > 512:
            raise ConfigError(f"input_size must lie in [16, 512] px, or be none to keep the images' size "
                              f"(got {self.input_size})")
        ms = self.milestones or ()  # a repeat applies gamma twice, as MultiStepLR does; scaled schedules make them
        if any(isinstance(m, bool) or not isinstance(m, numbers.Integral) or m < 0 for m in ms) or \
                list(ms) != sorted(ms):
            raise ConfigError(f"milestones must be epochs >= 0 in increasing order, e.g. 20 50 80; got {list(ms)}")

    def resolved(self) -> "RunConfig":
        """Fill every None with the method's default, so the hash names the settings actually used."""
        d = dict(METHODS.get(self.method).defaults)
        d.setdefault("weight_decay", 0.0 if self.dataset in NO_WEIGHT_DECAY else DEFAULT_WEIGHT_DECAY)
        changes = {k: v for k, v in d.items() if getattr(self, k) is None}
        for k in ("alpha", "beta"):  # L2-SP is off unless the method or the user turns a term on
            if getattr(self, k) is None and d.get(k) is None:
                changes[k] = 0.0
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for k in ("classes", "milestones"):
            d[k] = list(d[k]) if d[k] is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """From `to_dict` output, including that of stores written before a field was renamed."""
        d = upgrade(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown config fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)

    @classmethod
    def default(cls, name: str):
        """A field's default, for code that needs one without a config (the benchmark's batch size)."""
        return cls.__dataclass_fields__[name].default

    def digest(self) -> str:
        """The run's identity: a hash of the resolved settings."""
        d = self.resolved().to_dict()
        d = {HASHED_AS.get(k, k): v for k, v in d.items() if not (k in ADDED_SINCE and ADDED_SINCE[k] == v)}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
