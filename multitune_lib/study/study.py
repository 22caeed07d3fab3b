"""The study: a profile bound to its data, source checkpoint, device and results store. It runs the profile's
configurations for the notebooks and reads the store back as tables.

A run's settings decide where it counts, not a tag: a run is one of the profile's main runs (Table 3, Fig. 2)
exactly when its config hash equals that of the profile's setting for its method, dataset, images per class and
seed. A sweep point that equals the main setting (MultiTune's eta = 0.5, say) is the same run and counts for both.
"""
from __future__ import annotations

import copy
from collections import Counter
from functools import cached_property
from pathlib import Path

import pandas as pd

from .. import paths
from ..core.config import RunConfig
from ..core.method import compared_methods
from ..core.fit import fit
from ..core.registry import METHODS
from ..errors import ConfigError
from ..store.files import sha256
from ..store.results import ResultsStore
from . import profiles

RUN_KEYS = ["digest", "method", "method_label", "dataset", "dataset_label", "images_per_class", "seed", "eta",
            "main", "full_row"]
RUN_METRICS = ["final_val_acc", "best_val_acc", "train_minutes", "epochs", "env.device_name", "precision"]


def label(method: str) -> str:
    """How tables and figures name a method (a store may hold runs of methods not registered here)."""
    return METHODS.get(method).label if method in METHODS else method


def row_id(images_per_class) -> str:
    """A row as tables show it and the command line names it: its images per class, 'all' for the whole split."""
    return "all" if images_per_class is None or pd.isna(images_per_class) else str(int(images_per_class))


def chosen(what: str, names, have: dict, profile: str) -> list:
    """The values of `names` (each a key of `have`, given once), in the order given; None or empty: all of `have`."""
    if not names:
        return list(have.values())
    for name in names:
        if str(name) not in have:
            raise ConfigError(f"{what} {name!r} is not one of the {profile} profile's {what}s: {', '.join(have)}")
    return [have[str(n)] for n in dict.fromkeys(names)]


class Study:
    def __init__(self, profile: str | None = None, data_root=None, source=None, device: str = "auto",
                 seeds=None, results=None, train: bool = True):
        self.profile = profiles.get(profile)
        self.data_root = Path(data_root) if data_root else paths.default_data_root()
        self.source = Path(source) if source else self.profile.source_path()
        self.device = device
        self.seeds = self.profile.seeds if seeds is None else tuple(seeds if isinstance(seeds, (list, tuple))
                                                                    else [seeds])
        if not self.seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in self.seeds):
            raise ConfigError(f"seeds={seeds!r}: give an int or a list of ints, e.g. -p seeds [0,1]")
        self.results = Path(results) if results else paths.results_dir(self.profile.name)
        self.store = ResultsStore(self.results)
        self.train = train  # False: read the store only, and count what it lacks instead of training it
        self.log: list[tuple[str, str, str]] = []  # (found | trained | missing, method, digest) since the last tally

    def config(self, method: str, dataset: str, images_per_class: int | None, seed: int = 0,
               **settings) -> RunConfig:
        """The profile's setting for one row and seed; `settings` depart from it (a sweep)."""
        p = self.profile
        settings = {**p.settings.get(method, {}), **settings}
        settings.setdefault("milestones", p.milestones(METHODS.get(method).defaults["milestones"]))
        settings.setdefault("eval_every", p.eval_every)
        settings.setdefault("curve_val_images", p.curve_val_images)
        settings.setdefault("whole_val", p.whole_val)
        return RunConfig(method=method, dataset=dataset, images_per_class=images_per_class, backbone=p.backbone,
                         input_size=p.input_size, classes=p.classes(dataset), seed=seed, epochs=p.epochs, **settings)

    def run_config(self, method: str, dataset: str, images_per_class: int | None, seed: int = 0,
                   **settings) -> RunConfig:
        """The config `run` trains: `config` with the source's digest where the method starts from the source."""
        sha = self.source_sha256 if METHODS.get(method).from_source else None
        return self.config(method, dataset, images_per_class, seed, source_sha256=sha, **settings)

    def final_pct(self, method: str, dataset: str, images_per_class: int | None, **settings) -> pd.Series:
        """Per seed, the final val accuracy (%) of the run `run` would read; NaN where the store lacks it (nothing
        trains, nothing is counted)."""
        acc = {}
        for seed in self.seeds:
            done = self.store.finished(self.run_config(method, dataset, images_per_class, seed, **settings).digest())
            acc[seed] = done["metrics"]["final_val_acc"] * 100 if done else float("nan")
        return pd.Series(acc, dtype=float)

    def run(self, method: str, dataset: str, images_per_class: int | None, seed: int = 0,
            **settings) -> dict | None:
        """One row of the study, read from the store, else trained; `images_per_class=None` is the whole split.
        Read-only (`train=False`), a run the store lacks is counted for `tally` and None returned."""
        p = self.profile
        if p.needs_source and (self.source is None or not self.source.exists()):
            raise ConfigError(f"the {p.name} profile starts from a source checkpoint ({self.source or 'none given'}): "
                              "pass source=resnet26_pretrained.t7 (the SpotTune release) or one of ours "
                              "(`python -m multitune_lib pretrain`)")
        cfg = self.run_config(method, dataset, images_per_class, seed, **settings)
        digest = cfg.digest()
        if (done := self.store.finished(digest)) is not None:
            self.log.append(("found", method, digest))
            if self.train:  # as fit does: a process killed while a run finished may have left files behind
                self.store.tidy(digest)
            return done
        if not self.train:
            self.log.append(("missing", method, digest))
            return None
        row = fit(cfg, data_root=self.data_root, results=self.results, source=self.source, device=self.device,
                  tags={"profile": p.name})
        self.log.append(("trained", method, digest))
        return row

    def queue(self, first: list[tuple[str, int | None]]) -> list[tuple[str, int | None, int]]:
        """Every (dataset, row, seed) of the profile in training order: the `first` rows over every seed, then the
        others seed by seed, so that a queue cut short already holds its headline comparisons whole."""
        return [(d, n, seed) for seed in self.seeds for d, n in first] + [
            (d, n, seed) for seed in self.seeds for d, n in self.profile.every_row() if (d, n) not in first]

    def run_all(self, methods, rows, datasets=None) -> pd.DataFrame:
        """Every seed x dataset x row (images per class) x method, seed by seed, so that an unfinished study
        already holds whole comparisons."""
        done = [self.run(m, d, n, seed) for seed in self.seeds for d in datasets or self.profile.datasets
                for n in rows if self.profile.has_row(d, n) for m in methods]
        done = [r for r in done if r is not None]  # read-only: what the store lacks is left out
        keys = ["method", "dataset", "images_per_class", "seed"]
        if not done:
            return pd.DataFrame(columns=[*keys, "method_label"])
        df = pd.DataFrame([{k: r["config"][k] for k in keys} | r["metrics"] for r in done])
        return df.astype({"images_per_class": "Int64"}).assign(method_label=df["method"].map(label))

    def selection(self, datasets=None, rows=None, methods=None) -> dict:
        """The datasets, rows (images per class, named as tables show them: '5', 'all') and methods named, as
        `run_all` and `planned` take them; None or empty names all of the profile's. A name the profile lacks, or
        names that together select no run, is a ConfigError listing what the profile has."""
        p = self.profile
        out = {"datasets": chosen("dataset", datasets, {d: d for d in p.datasets}, p.name),
               "rows": chosen("row", rows, {row_id(n): n for n in p.rows()}, p.name),
               "methods": chosen("method", methods, {m: m for m in self.methods}, p.name)}
        if not any(p.has_row(d, n) for d in out["datasets"] for n in out["rows"]):
            held = "; ".join(f"{d} {', '.join(row_id(n) for n in p.rows() if p.has_row(d, n))}" for d in p.datasets)
            raise ConfigError(f"no run of the {p.name} profile is on the rows selected (datasets "
                              f"{', '.join(out['datasets'])}; rows {', '.join(map(row_id, out['rows']))}); its rows "
                              f"per dataset: {held}")
        return out

    def tally(self) -> str:
        """What `run` did since the last tally, in one line (runs found in the store, trained, and, read-only,
        lacking per method); the count starts again."""
        log = set(self.log)  # a run a notebook asks for twice (its queue, then its table) counts once
        found, trained = (sum(o == outcome for o, _, _ in log) for outcome in ("found", "trained"))
        text = f"{found} run{'s' * (found != 1)} found in the store, {trained} trained"
        if missing := self.lacking():
            text += f"; not in the store and not trained (train=False): {missing}"
        self.log = []
        return text

    def lacking(self) -> str:
        """The runs `run` found missing since the last tally, per method ("AMF 27, SpotTune 3"), or ""."""
        counts = Counter(label(m) for o, m, _ in set(self.log) if o == "missing")
        return ", ".join(f"{m} {n}" for m, n in sorted(counts.items()))

    def read_only(self) -> "Study":
        """This study reading its store only, with a count of its own: what `run` calls on it would train, it
        counts as missing instead."""
        dry = copy.copy(self)
        dry.train, dry.log = False, []
        return dry

    def planned(self, rows=None, datasets=None, methods=None) -> pd.DataFrame:
        """The runs `run_all(methods, rows, datasets)` would make (None: the profile's), each with its digest and
        whether the store holds it finished already."""
        p = self.profile
        out = []
        for d in datasets or p.datasets:
            for n in p.rows() if rows is None else rows:
                for m in (methods or self.methods) if p.has_row(d, n) else []:
                    for seed in self.seeds:
                        cfg = self.run_config(m, d, n, seed).resolved()
                        out.append({"method": m, "dataset": d, "images_per_class": n, "seed": seed, "config": cfg,
                                    "digest": cfg.digest(), "done": self.store.finished(cfg.digest()) is not None})
        return pd.DataFrame(out, columns=["method", "dataset", "images_per_class", "seed", "config", "digest", "done"])

    @property
    def methods(self) -> list[str]:
        """What the profile trains and Table 3 shows: its own list, else the compared methods (SpotTune, MultiTune)."""
        return list(self.profile.methods or [m.name for m in compared_methods()])

    @cached_property
    def source_sha256(self) -> str | None:
        """The digest the profile's source puts into every config that starts from it, hashed once."""
        return sha256(self.source) if self.source is not None and self.source.exists() else None

    def is_main(self, run: pd.Series) -> bool:
        """True where the run's settings are the profile's own for its method, dataset, row and seed."""
        if run["method"] not in METHODS or run["dataset"] not in self.profile.datasets:
            return False
        n = None if pd.isna(run["images_per_class"]) else int(run["images_per_class"])
        return self.run_config(run["method"], run["dataset"], n, int(run["seed"])).digest() == run["digest"]

    def is_full_row(self, images_per_class: pd.Series) -> pd.Series:
        """True for the profile's whole-dataset row (none where the profile has no such rows)."""
        if not self.profile.has_full_rows:
            return pd.Series(False, index=images_per_class.index)
        if self.profile.full_row is None:
            return images_per_class.isna()
        return images_per_class.eq(self.profile.full_row).fillna(False).astype(bool)

    def runs(self) -> pd.DataFrame:
        """One row per finished run, with how tables name it, whether it is a main run and a whole-dataset row."""
        df = self.store.runs()
        if df.empty:  # the columns notebooks and Table 3 select on: an empty study reads as empty, not as an error
            return pd.DataFrame(columns=[*RUN_KEYS, "tags", *RUN_METRICS])
        df = df.astype({"images_per_class": "Int64"})
        return df.assign(method_label=df["method"].map(label),
                         dataset_label=df["dataset"].map(self.profile.label),
                         main=df.apply(self.is_main, axis=1).astype(bool),
                         full_row=self.is_full_row(df["images_per_class"]))

    def history(self) -> pd.DataFrame:
        """Per-epoch history joined with each run's method, dataset, row and whether it is a main run."""
        runs = self.runs()
        if runs.empty:
            return pd.DataFrame(columns=[*RUN_KEYS, "epoch", "train_loss", "val_acc"])
        return self.store.history().merge(runs[RUN_KEYS], on="digest")
