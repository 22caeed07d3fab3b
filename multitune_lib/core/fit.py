"""`fit`: one configuration through the results store. A finished run is found by its config hash and returned,
never recomputed; an unfinished one resumes from the checkpoint written after its last epoch."""
from __future__ import annotations

import dataclasses
import functools
import os
import sys
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from .. import data, paths
from ..errors import ConfigError, TrainingDiverged
from ..store.checkpoint import load_source
from ..store.files import sha256
from ..store.results import ResultsStore
from .config import RunConfig
from .registry import METHODS
from .trainer import Trainer, result_row


def with_source(cfg: RunConfig, source: str | Path | None) -> RunConfig:
    """Put the source checkpoint's digest into the config, so the hash tells sources apart by content."""
    if source is None:
        return cfg
    if not METHODS.get(cfg.method).from_source:
        raise ConfigError(f"method {cfg.method} trains from random initialisation: drop the source checkpoint")
    if not Path(source).exists():
        load_source(source)  # raises the clear error
    sha = sha256(Path(source))
    if cfg.source_sha256 not in (None, sha):
        raise ConfigError(f"source {source} has sha256 {sha}, but the config names {cfg.source_sha256}")
    return dataclasses.replace(cfg, source_sha256=sha)


def load_splits(cfg: RunConfig, data_root=None, cache=None, image_source=None) -> tuple[data.Split, data.Split]:
    """The run's train split (its few-shot draw) and the whole val split of its classes; with draw first_n (the
    released code) the first N files per class of each split; with holdout, the train split less a seeded share
    of each class, and that share in val's place."""
    root = data_root or paths.default_data_root()
    cfg = cfg.resolved()
    train = data.load(root, cfg.dataset, "train", cfg.images_per_class, cfg.classes, cfg.seed, cache, image_source,
                      allow_fewer=cfg.allow_fewer, draw=cfg.draw)
    if cfg.holdout is not None:
        return data.hold_out(train, cfg.holdout, cfg.seed)
    val_n = cfg.images_per_class if cfg.draw == "first_n" else None
    val = data.load(root, cfg.dataset, "val", val_n, cfg.classes, cfg.seed, cache, image_source,
                    allow_fewer=cfg.allow_fewer, draw=cfg.draw)
    return train, val


def progress(cfg: RunConfig, done: int):
    """One line per run as it trains. Text on stdout, not a widget or stderr: in a notebook it is kept as an
    ordinary output line, where tqdm.auto would need ipywidgets and write a stderr warning without them."""
    return tqdm(total=cfg.epochs, initial=done, disable=bool(os.environ.get("CI")), unit="epoch", mininterval=1.0,
                file=sys.stdout, desc=f"{cfg.method} {cfg.dataset} images_per_class={cfg.images_per_class or 'all'} "
                f"seed={cfg.seed}")


def fit(cfg: RunConfig, *, data_root: str | Path | None = None, results: str | Path = "results",
        source: str | Path | None = None, device: str | None = None, precision: str = "auto",
        compile: bool | str = False, keep_weights: bool = False, cache: str | Path | None = None,
        image_source: data.ImageSource | None = None, tags: dict | None = None,
        on_epoch: Callable[[dict], None] | None = None, wait: bool = False) -> dict:
    """Train one configuration (or return it from the store) and return its result row. While it trains, the run
    is locked: the same run asked for in another process is refused, or with `wait` waits for this one."""
    cfg = with_source(cfg, source).resolved()
    digest, store = cfg.digest(), ResultsStore(results)
    if (done := store.finished(digest)) is None:
        store.check_writable()
        with store.lock(digest, wait):
            if (done := store.finished(digest)) is None:  # it may have finished while we waited
                how = dict(device=device, precision=precision, compile=compile)
                # a proxy another run is training (a parallel run of the same search) is waited for, not refused
                proxy = functools.partial(fit, data_root=data_root, results=results, source=source, cache=cache,
                                          image_source=image_source, tags=(tags or {}) | {"proxy_of": digest},
                                          wait=True, **how)
                load = functools.partial(data.load, data_root or paths.default_data_root(), cache=cache,
                                         source=image_source)
                return train(cfg, digest, store, load_splits(cfg, data_root, cache, image_source), source,
                             how | {"cache": cache}, keep_weights, tags, on_epoch, proxy, load)
    print(f"{cfg.method} {cfg.dataset} images_per_class={cfg.images_per_class} seed={cfg.seed}: finished run "
          f"{digest} found in {store.root}, not recomputed")
    store.tidy(digest)
    return done


def train(cfg: RunConfig, digest: str, store: ResultsStore, splits, source, how: dict, keep_weights: bool,
          tags: dict | None, on_epoch, proxy, load) -> dict:
    """The method's search where it has one (its proxy runs found in the store, or trained) and the data it reads
    beyond the splits (`load(dataset, split)`), the epochs still to train, a checkpoint after each, and the finished
    run into the store under the config that asked for it."""
    method = METHODS.get(cfg.method)
    trained, found = method.search(cfg, proxy) if method.search is not None else (cfg, {})
    more = method.more_data(cfg, load) if method.more_data is not None else None
    trainer = Trainer(trained, *splits, source_state=load_source(source)[0] if source is not None else None,
                      more=more, **how)
    state = store.load_checkpoint(digest)
    if state is not None:
        check_resumes(state, trainer.cfg, store.run_dir(digest))
        trainer.load_state_dict(state)
        print(f"resuming run {digest} after epoch {len(trainer.history)}")
    with progress(cfg, len(trainer.history)) as bar:
        while len(trainer.history) < cfg.epochs:
            try:
                row = trainer.epoch()
            except TrainingDiverged as e:
                raise TrainingDiverged(f"{e}. Nothing is stored as finished; {kept(store, digest, trainer)}") from None
            store.save_checkpoint(digest, trainer.state_dict())
            bar.update()
            acc = "-" if row["val_acc"] is None else f"{row['val_acc']:.3f}"
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", acc=acc)
            if on_epoch is not None:
                on_epoch(row)
    result = result_row(trainer, digest, source, tags) | {"config": cfg.to_dict()}
    if found:  # what the search found and what it cost: its metrics beside the run's, the rest in run.json
        result = result | {"metrics": result["metrics"] | found["metrics"], "search": found["record"]}
    store.finish(result, trainer.history, trainer.model.state_dict() if keep_weights else None)
    return result


def check_resumes(state: dict, cfg: RunConfig, where: Path) -> None:
    """A checkpoint resumes only the training it was written by: the config it trained (with what a search found
    in it) must be the one set up now, or its weights would load into other masks and parameter groups."""
    then, now = state.get("config"), cfg.to_dict()  # checkpoints written before configs were kept in them have none
    if then is None or then == now:
        return
    fields = ", ".join(k for k in then if then[k] != now.get(k))
    raise ConfigError(f"the checkpoint in {where} trained another config than this run sets up now ({fields} differ: "
                      "a search that finds otherwise, say after a library upgrade): delete checkpoint.pt there to "
                      "train the run from the start")


def kept(store: ResultsStore, digest: str, trainer: Trainer) -> str:
    """What a diverged run leaves, and what the user can do about it."""
    if not trainer.history:
        return "lower --lr (or other settings) and run again"
    return (f"the checkpoint after epoch {len(trainer.history)} stays in {store.run_dir(digest)}: run again to "
            "resume from it (with --precision fp32, say), or lower --lr to start a new run")
