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
from .backbone import all_residual, conv_layers, policy_width, residual_units
from .registry import BACKBONES, METHODS, RECIPES

# SpotTune's code decays weights on aircraft but not on cifar100; other datasets follow aircraft.
NO_WEIGHT_DECAY = ("cifar100",)
DEFAULT_WEIGHT_DECAY = 5e-4

# The run hash keeps the names and fields of the first store format, so every stored digest stays valid:
# renamed fields are hashed under their old name, and fields added since are left out while at their default
# (l2sp_scope reinit_new: how every MultiTune run before the switch trained; route all: every SpotTune run before it).
HASHED_AS = {"images_per_class": "shots"}
ADDED_SINCE = {"backbone": ("resnet26",), "input_size": (None,), "curve_val_images": (None,), "allow_fewer": (False,),
               "protocol": ("paper",), "augment": (None, "crop_flip"), "draw": (None, "seeded"),
               "trunk": (None, "two"), "lr_b": (None, "kept"), "lr_steps": (None, "all"),
               "l2sp_scope": (None, "reinit_new"), "route": (None, "all"), "policy_width": (None,),
               "amf_settings": (None,), "weighting": (None,), "fusion": (None,), "whole_val": (None, "last"),
               "holdout": (None,), "criterion": (None,), "ratios": (None,), "frozen_bn": (None,),
               "search_particles": (None,), "search_iterations": (None,), "proxy_epochs": (None,),
               "search_holdout": (None,), "pool": (None,), "pool_classes": (None,), "descriptor": (None,), "bins": (None,), "k0": (None,),
               "neighbours": (None,), "rounds": (None,), "entropy_threshold": (None,), "source_weight": (None,)}
BATCH_SIZE = 128  # SpotTune's code; the paper gives none

# Where the paper and the authors' released code differ, one field each: its values, the paper's first. The README's
# "Paper and released code" quotes the sentence each paper value follows (or says the paper is silent).
SWITCHES = {
    "l2sp_scope": ("eq2", "reinit_new", "released"),  # MultiTune's L2-SP terms
    "augment": ("crop_flip", "flip_both", "none"),  # training (and evaluation) augmentation
    "trunk": ("two", "shared"),  # MultiTune: two whole networks, or one trunk with two last blocks
    "lr_b": ("kept", "lost"),  # MultiTune setting B's lower lr on its re-initialised block
    "lr_steps": ("all", "first"),  # lr x gamma at every milestone, or (SpotTune's code) at the first only
    "draw": ("seeded", "first_n"),  # few-shot images: a seeded draw (val whole), or the first N files of train and val
}
PROTOCOLS = ("paper", "released")

# Every number a config holds, checked where the config is made, before any data loads.
INTEGERS = {"epochs": 1, "batch_size": 1, "eval_every": 1, "seed": 0, "images_per_class": 1, "input_size": 16,
            "curve_val_images": 1, "search_particles": 1, "search_iterations": 1, "proxy_epochs": 1,
            "bins": 2, "k0": 1, "neighbours": 1, "rounds": 1}  # the lowest value allowed; None (where a field allows it) means "the default"
NUMBERS = {  # (low, high, low allowed, high allowed)
    "lr": (0, math.inf, False, False), "lr_last": (0, math.inf, True, False), "policy_lr": (0, math.inf, True, False),
    "gamma": (0, math.inf, False, False), "momentum": (0, 1, True, False), "eta": (0, 1, True, True),
    "weight_decay": (0, math.inf, True, False), "policy_weight_decay": (0, math.inf, True, False),
    "alpha": (0, math.inf, True, False), "beta": (0, math.inf, True, False), "temperature": (0, math.inf, False, False),
    "policy_width": (1 / 32, 8, True, True),  # the policy's 32-channel stem keeps at least one channel
    "holdout": (0, 1, False, False), "search_holdout": (0, 1, False, False),
    "entropy_threshold": (0, 1, True, True), "source_weight": (0, math.inf, True, False),
}
ROUTES = ("all", "residual")  # SpotTune: which blocks the policy routes
WHOLE_VAL = ("last", "milestones")  # the epochs validated on the whole val split where the others see a sample
WEIGHTINGS = ("soft", "hard")  # AMF: a softmax over its networks, or a straight-through Gumbel-softmax choice
FUSIONS = ("features", "logits")  # AMF: weight the pooled features before one layer (Eq. 1), or the networks' logits
CRITERIA = ("signed_value", "magnitude", "taylor")  # parameter contribution: how each conv layer's weights are ranked
DESCRIPTORS = ("lite0", "gabor")  # selective joint fine-tuning: the filter bank its histograms are made from
# Fields only some methods read: a method reads one when its defaults name it
METHOD_FIELDS = ("route", "policy_width", "amf_settings", "weighting", "fusion", "criterion", "ratios", "frozen_bn",
                 "search_particles", "search_iterations", "proxy_epochs", "search_holdout", "pool", "pool_classes", "descriptor",
                 "bins", "k0", "neighbours", "rounds", "entropy_threshold", "source_weight")


# parameter contribution's search budget: read only where ratios are not given
SEARCH_FIELDS = ("search_particles", "search_iterations", "proxy_epochs", "search_holdout")


def share_count(fraction: float, n: int) -> int:
    """floor(fraction x n), counted the same wherever a share of n things is taken: binary rounding would make
    0.57 x 100 = 56.99999... and drop one."""
    return math.floor(fraction * n + 1e-9)


def upgrade(d: dict) -> dict:
    """A stored config dict with today's field names (stores written before a rename hold the old ones), and the
    L2-SP scope every MultiTune run stored before that switch existed trained with."""
    renamed = {old: new for new, old in HASHED_AS.items()}
    d = {renamed.get(k, k): v for k, v in d.items()}
    if d.get("method") == "multitune" and "l2sp_scope" not in d:
        d["l2sp_scope"] = "reinit_new"
    return d


def _check_choice(name: str, value, valid) -> None:
    if value is not None and value not in valid:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, valid))}; got {value!r}")


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
    protocol: str = setting("paper", "whose protocol the switches left unset follow: the paper's text, or the "
                            "authors' released code (README: 'Paper and released code')", choices=lambda: PROTOCOLS)
    l2sp_scope: str | None = setting(None, "MultiTune L2-SP: eq2 (paper Eq. 2: alpha pulls every layer but the last "
                                     "towards its start, beta the last layer), reinit_new (re-initialised blocks "
                                     "in the beta term too), released (the code's: alpha term 0)",
                                     choices=lambda: SWITCHES["l2sp_scope"])
    augment: str | None = setting(None, "crop_flip (random crop and flip; paper silent), flip_both (MultiTune's "
                                  "code: flip at training and evaluation, whole image), none (SpotTune's code)",
                                  choices=lambda: SWITCHES["augment"])
    trunk: str | None = setting(None, "MultiTune: two whole networks (paper) or one shared trunk with two last "
                                "blocks (released code)", choices=lambda: SWITCHES["trunk"])
    lr_b: str | None = setting(None, "MultiTune: setting B's lr_last kept (paper) or lost to one lr for every group "
                               "(released code)", choices=lambda: SWITCHES["lr_b"])
    lr_steps: str | None = setting(None, "lr x gamma at all milestones, or the first only (SpotTune's code)",
                                   choices=lambda: SWITCHES["lr_steps"])
    draw: str | None = setting(None, "few-shot images: seeded (a seeded draw per class, val whole) or first_n (the "
                               "first N files per class of train and of val: released code)",
                               choices=lambda: SWITCHES["draw"])
    epochs: int = setting(110, "training epochs")
    batch_size: int | None = setting(None, f"training batch size (paper: silent; {BATCH_SIZE}; MultiTune's code: 120)")
    lr: float | None = setting(None, "learning rate")
    lr_last: float | None = setting(None, "MultiTune setting B: lr of its re-initialised block")
    policy_lr: float | None = setting(None, "SpotTune: policy network lr")
    milestones: tuple[int, ...] | None = setting(None, "epochs where lr is multiplied by gamma")
    gamma: float = setting(0.1, "lr factor at each milestone")
    crop: int = setting(64, "training crop in px; evaluation sees the whole image (paper: 64 px crops of 72 px); "
                        "smaller crops train on scaled-down images")
    input_size: int | None = setting(None, "side in px the training crop is resized to on the device, whole images "
                                     "at evaluation by the same factor (none: as loaded; ImageNet sources: 224)")
    curve_val_images: int | None = setting(None, "validate the epochs before the last on a fixed sample of this "
                                           "many val images, for the curves (none: the whole val split); the "
                                           "last epoch always sees the whole split")
    whole_val: str | None = setting(None, "the epochs validated on the whole val split: the last (last), or also each "
                                    "milestone's, the last epoch at each lr (milestones: the best epoch is then "
                                    "chosen among them on the whole split)", choices=lambda: WHOLE_VAL)
    eval_every: int = setting(1, "validate every n epochs and after the last")
    momentum: float = setting(0.9, "SGD momentum")
    weight_decay: float | None = setting(None, "SGD weight decay; a method that sets none takes "
                                         f"SpotTune's: {DEFAULT_WEIGHT_DECAY}, 0 on cifar100")
    policy_weight_decay: float | None = setting(None, "SpotTune: policy network weight decay")
    alpha: float | None = setting(None, "L2-SP strength towards the source weights (0 turns it off)")
    beta: float | None = setting(None, "L2-SP strength on new weights")
    eta: float = setting(0.5, "MultiTune: share of network A in the joined features")
    reinit: str = setting("block", "MultiTune: re-initialise the last block or the whole last stage",
                          choices=lambda: ["block", "stage"])
    temperature: float = setting(5.0, "SpotTune: Gumbel-softmax temperature")
    sample_eval: bool | None = setting(None, "SpotTune: sample the policy at evaluation, as its code does (paper: "
                                       "the argmax)")
    route: str | None = setting(None, "SpotTune: route every block (all) or only the units with an identity path "
                                "(residual: the others fine-tuned, as SpotTune's ResNet has only residual units)",
                                choices=lambda: ROUTES)
    policy_width: float | None = setting(None, "SpotTune, AMF: policy network width relative to SpotTune's own "
                                         "(none: the backbone's, 1 for resnet26, 0.25 for efficientnet_lite0)")
    amf_settings: tuple[str, ...] | None = setting(None, "AMF: its networks' fine-tuning settings by name, at least "
                                                   "two (A B: MultiTune's Table 1; finetune: plain fine-tuning)",
                                                   metavar="NAME")
    weighting: str | None = setting(None, "AMF: soft (a softmax weight per network) or hard (one network per "
                                    "image, straight-through Gumbel-softmax)", choices=lambda: WEIGHTINGS)
    fusion: str | None = setting(None, "AMF: weight the networks' pooled features before one linear layer "
                                 "(MultiTune's Eq. 1) or weight their logits", choices=lambda: FUSIONS)
    holdout: float | None = setting(None, "hold out this fraction of each class's train images and validate on them "
                                    "instead of the val split (tuning that never sees val); none: validate on val")
    criterion: str | None = setting(None, "parameter contribution: how each conv layer's weights are ranked, the "
                                    "lowest fine-tuned first: signed_value (the released code's), magnitude (|w|), "
                                    "taylor (|w dL/dw| on the target train images)", choices=lambda: CRITERIA)
    ratios: tuple[float, ...] | None = setting(None, "parameter contribution: the share of each conv layer's weights "
                                               "fine-tuned, one per conv in network order or one for all (none: "
                                               "searched)", metavar="RATIO")
    frozen_bn: bool | None = setting(None, "parameter contribution: keep the source's BN statistics (the released "
                                     "code updates them in every layer)")
    search_particles: int | None = setting(None, "parameter contribution: particles of the ratio search")
    search_iterations: int | None = setting(None, "parameter contribution: iterations of the ratio search")
    proxy_epochs: int | None = setting(None, "parameter contribution: epochs of each candidate's proxy training")
    search_holdout: float | None = setting(None, "parameter contribution: share of each class's train images the "
                                           "search's proxies hold out to score candidates on")
    pool: str | None = setting(None, "selective joint: the source pool, another Decathlon dataset's train split (auto: "
                               "cifar100 for aircraft, aircraft for cifar100; none: no pool, plain fine-tuning)")
    pool_classes: tuple[int, ...] | None = setting(None, "selective joint: 1-based class ids of the pool to keep, "
                                                   "e.g. '1-3', or 'all'", metavar="IDS", text=True)
    descriptor: str | None = setting(None, "selective joint: the filter bank of the low-level descriptors (lite0: the "
                                     "ImageNet Lite0's stem and first block; gabor: 24 complex Gabor filters, 48 channels)",
                                     choices=lambda: DESCRIPTORS)
    bins: int | None = setting(None, "selective joint: histogram bins per channel, of equal mass on the target")
    k0: int | None = setting(None, "selective joint: source images a target image borrows from at level 1 (K0)")
    neighbours: int | None = setting(None, "selective joint: nearest source images kept per target image")
    rounds: int | None = setting(None, "selective joint: rounds of training; before each after the first, the hard "
                                 "target images are found and given more neighbours")
    entropy_threshold: float | None = setting(None, "selective joint: a correctly predicted target image is hard "
                                              "above this entropy (a share of log classes)")
    source_weight: float | None = setting(None, "selective joint: lambda in CE_target + lambda CE_source (0: plain "
                                          "fine-tuning)")
    source_sha256: str | None = setting(None, "digest of the source checkpoint; None = from scratch", cli=False)
    extra: dict = field(default_factory=dict, metadata={"help": "free-form tags that are part of the identity",
                                                         "cli": False})

    def __post_init__(self):
        # class lists may be given as text ('51-100'), milestones as any sequence: store both as tuples
        object.__setattr__(self, "classes", parse_classes(self.classes))
        object.__setattr__(self, "pool_classes", parse_classes(self.pool_classes))
        for name in ("milestones", "amf_settings", "ratios"):
            value = getattr(self, name)
            if isinstance(value, str):  # names given as one string: 'A B' or 'A,B'
                value = value.replace(",", " ").split()
            if value is not None:
                object.__setattr__(self, name, tuple(value))
        METHODS.get(self.method)
        BACKBONES.get(self.backbone)
        for name, lowest in INTEGERS.items():
            _check_integer(name, getattr(self, name), lowest)
        for name, interval in NUMBERS.items():
            _check_number(name, getattr(self, name), *interval)
        _check_choice("protocol", self.protocol, PROTOCOLS)
        if self.protocol == "released" and not METHODS.get(self.method).released:
            released = [m for m, spec in METHODS.items.items() if spec.released]
            raise ConfigError(f"protocol released is the authors' code for {', '.join(released)}; {self.method} has "
                              "no released code to follow: use protocol paper")
        for name, valid in SWITCHES.items():
            _check_choice(name, getattr(self, name), valid)
        for name, valid in (("route", ROUTES), ("weighting", WEIGHTINGS), ("fusion", FUSIONS),
                            ("whole_val", WHOLE_VAL), ("criterion", CRITERIA), ("descriptor", DESCRIPTORS)):
            _check_choice(name, getattr(self, name), valid)
        self._check_method_fields()
        self._check_amf_settings()
        self._check_ratios()
        self._check_holdout()
        if self.crop not in range(16, 65, 8):
            raise ConfigError(f"crop must be a multiple of 8 in [16, 64] px, got {self.crop!r}")
        if self.input_size is not None and self.input_size > 512:
            raise ConfigError(f"input_size must lie in [16, 512] px, or be none to keep the images' size "
                              f"(got {self.input_size})")
        ms = self.milestones or ()  # a repeat applies gamma twice, as MultiStepLR does; scaled schedules make them
        if any(isinstance(m, bool) or not isinstance(m, numbers.Integral) or m < 0 for m in ms) or \
                list(ms) != sorted(ms):
            raise ConfigError(f"milestones must be epochs >= 0 in increasing order, e.g. 20 50 80; got {list(ms)}")

    def _check_method_fields(self) -> None:
        """Fields only some methods read are refused elsewhere rather than silently ignored (and hashed)."""
        defaults = METHODS.get(self.method).defaults
        for name in METHOD_FIELDS:
            if getattr(self, name) is not None and name not in defaults:
                readers = [m for m, spec in METHODS.items.items() if name in spec.defaults]
                raise ConfigError(f"{name} is a setting of {', '.join(readers)}; method {self.method} does not read "
                                  f"it: leave it out")
        if self.pool is not None and self.pool == self.dataset:
            raise ConfigError(f"pool {self.pool} is the target dataset itself: borrow from another dataset (auto: "
                              "the other of aircraft and cifar100)")
        if None not in (self.k0, self.neighbours) and self.neighbours < self.k0:
            raise ConfigError(f"neighbours ({self.neighbours}) must be at least k0 ({self.k0}): a target image "
                              "borrows from its first k0 x level neighbours")
        if None not in (self.rounds, self.epochs) and self.rounds > self.epochs:
            raise ConfigError(f"rounds ({self.rounds}) must be at most epochs ({self.epochs}): each round trains at "
                              "least one epoch")
        if self.route == "residual" and not residual_units(self.backbone):
            raise ConfigError(f"route residual: backbone {self.backbone} has no unit with an identity path to route; "
                              "use route all")

    def _check_amf_settings(self) -> None:
        if self.amf_settings is None:
            return
        if len(self.amf_settings) < 2:
            raise ConfigError(f"amf_settings needs at least two fine-tuning settings, got {list(self.amf_settings)}: "
                              f"name two or more of {', '.join(RECIPES.names())}")
        for name in self.amf_settings:
            RECIPES.get(name)

    def _check_ratios(self) -> None:
        if self.ratios is None:
            return
        try:
            object.__setattr__(self, "ratios", tuple(float(r) for r in self.ratios))
        except ValueError:
            raise ConfigError(f"ratios must be numbers in [0, 1], got {list(self.ratios)}") from None
        bad = [r for r in self.ratios if not 0 <= r <= 1]
        if bad:
            raise ConfigError(f"ratios must lie in [0, 1] (the share of a layer's weights fine-tuned), got {bad[0]}")
        n = conv_layers(self.backbone)
        if len(self.ratios) not in (1, n):
            raise ConfigError(f"ratios: give one per conv layer of {self.backbone} ({n}) or one for all, got "
                              f"{len(self.ratios)}")

    def _check_holdout(self) -> None:
        """A class left without a training image is refused here where the row fixes the count (data.hold_out
        checks the rest once the split is loaded)."""
        for name in ("holdout", "search_holdout"):
            h, n = getattr(self, name), self.images_per_class
            if h is not None and n is not None and n - max(1, share_count(h, n)) < 1:
                raise ConfigError(f"{name} {h} leaves no training image in a class of {n}: hold out less, or take "
                                  "more images per class")
        if self.holdout is not None and self.ratios is None and METHODS.get(self.method).search is not None:
            raise ConfigError(f"holdout with {self.method}'s search: its proxies hold out search_holdout of the "
                              "train split, which would overlap the run's held-out images; give ratios, or drop "
                              "holdout")

    def resolved(self) -> "RunConfig":
        """Fill every None with the method's default, so the hash names the settings actually used."""
        method = METHODS.get(self.method)
        d = dict(method.defaults) | (method.released if self.protocol == "released" else {})
        d = {k: v for k, v in d.items() if v is not None}  # None (as `released` may say): the general default
        d.setdefault("weight_decay", 0.0 if self.dataset in NO_WEIGHT_DECAY else DEFAULT_WEIGHT_DECAY)
        d.setdefault("batch_size", BATCH_SIZE)
        d.setdefault("sample_eval", False)
        for k in ("augment", "draw", "lr_steps"):  # the others mean something to one method, which names them
            d.setdefault(k, SWITCHES[k][0])
        changes = {k: v for k, v in d.items() if getattr(self, k) is None}
        if self.policy_width is not None and self.policy_width == policy_width(self.backbone):
            changes["policy_width"] = None  # the backbone's own width, named or not, is one run
        if self.route == "residual" and all_residual(self.backbone):
            changes["route"] = "all"  # every block has an identity path: the same network, one run
        if self.ratios is not None:  # no search runs: its budget, named or not, is one run
            changes |= {k: d[k] for k in SEARCH_FIELDS if k in d}
        for k in ("alpha", "beta"):  # L2-SP is off unless the method or the user turns a term on
            if getattr(self, k) is None and d.get(k) is None:
                changes[k] = 0.0
        return dataclasses.replace(self, **changes)

    def lr_steps_at(self) -> list[int]:
        """The epochs after which lr is multiplied by gamma: every milestone, or with lr_steps first the first."""
        return list(self.milestones or ())[:1] if self.lr_steps == "first" else list(self.milestones or ())

    def validated_on_whole(self) -> set[int]:
        """The epochs validated on the whole val split: the last, and with whole_val milestones the last epoch at
        each lr (those after which it steps). Read on a resolved config."""
        steps = {e for e in self.lr_steps_at() if 0 < e < self.epochs} if self.whole_val == "milestones" else set()
        return steps | {self.epochs}

    def validated(self) -> list[int]:
        """Every epoch validated: each eval_every-th, and those validated on the whole split."""
        every = range(self.eval_every, self.epochs + 1, self.eval_every)
        return sorted(set(every) | self.validated_on_whole())

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for k in ("classes", "milestones", "amf_settings", "ratios", "pool_classes"):
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

    def digest(self) -> str:
        """The run's identity: a hash of the resolved settings."""
        d = self.resolved().to_dict()
        d = {HASHED_AS.get(k, k): v for k, v in d.items() if not (k in ADDED_SINCE and v in ADDED_SINCE[k])}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
