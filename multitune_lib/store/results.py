"""The results store: one folder per run, named by its config hash, and tables of all finished runs.

runs/<digest>/checkpoint.pt  resumable state, rewritten atomically after every epoch, removed at the end
runs/<digest>/history.csv    one row per epoch
runs/<digest>/weights.pt     final weights, for runs that keep them
runs/<digest>/run.json       written last: its presence is what makes a run finished
runs/<digest>/.lock          held while a process trains the run, so a second one waits or is refused
runs.csv, history.csv        all finished runs, rebuilt after each finish (for people; the folders are the truth)
.export.lock                 held while the tables are rebuilt

Temporary files (`.*.tmp`, left by a process killed while writing) are removed when the run next trains or is
next found finished, or when the tables are next rebuilt, and are never merged.
"""
from __future__ import annotations

import io
import json
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import torch
from filelock import FileLock, Timeout

from ..core.config import upgrade
from ..errors import CheckpointError, ConfigError, RunBusy, StoreError, one_line
from . import files

NOT_MERGED = ("checkpoint.pt", ".lock", "*.tmp")  # one machine's resumable state, locks and half-written files
ROW_KEYS = ("digest", "config", "metrics", "env", "tags", "finished_at")  # what the tables read of a record
CONFLICT = re.compile(r"^(<{7}|={7}|>{7})( |$)", re.MULTILINE)  # the lines a git merge leaves in a clash


def unreadable(path: Path, why: str) -> StoreError:
    return StoreError(f"{path} cannot be read ({why}): delete its run folder {path.parent} to train that run again, "
                      "or restore the file from git")


def read_text(path: Path) -> str:
    """A store file's text; one a bad git merge or a garbled copy left is an error naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError) as e:
        raise unreadable(path, "missing" if isinstance(e, FileNotFoundError) else one_line(e)) from None
    if CONFLICT.search(text):
        raise unreadable(path, "it holds git conflict markers")
    return text


def read_row(path: Path) -> dict:
    """A finished run's record, its config in today's field names."""
    try:
        row = json.loads(read_text(path))
    except ValueError as e:  # cut short or garbled
        raise unreadable(path, one_line(e)) from None
    missing = [k for k in ROW_KEYS if not isinstance(row, dict) or k not in row]
    if missing or not isinstance(row["config"], dict):
        raise unreadable(path, f"no {', '.join(missing or ['config'])} in it")
    return {**row, "config": upgrade(row["config"])}


def read_history(path: Path) -> pd.DataFrame:
    """A run's per-epoch history. The store writes every line whole, so a last line without its end was cut."""
    text = read_text(path)
    if not text.endswith("\n"):
        raise unreadable(path, "cut short: its last line is incomplete")
    try:
        return pd.read_csv(io.StringIO(text))
    except ValueError as e:  # pandas' EmptyDataError and ParserError
        raise unreadable(path, one_line(e)) from None


class ResultsStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def run_dir(self, digest: str) -> Path:
        return self.root / "runs" / digest

    def finished(self, digest: str) -> dict | None:
        path = self.run_dir(digest) / "run.json"
        return read_row(path) if path.exists() else None

    def check_writable(self) -> None:
        """Fail before any data loads or any epoch trains where results could not be saved."""
        try:
            (self.root / "runs").mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root / "runs"):
                pass
        except OSError as e:
            raise ConfigError(f"results folder {self.root} is not writable ({e.strerror or e}): pass a folder you "
                              "can write with --results (or -p results DIR)") from None

    @contextmanager
    def lock(self, digest: str, wait: bool = False):
        """Hold the run folder's lock while a run trains. A second process asking for the same run is refused
        with a clear error, or with `wait` blocks until the first is done (and then finds it finished)."""
        d = self.run_dir(digest)
        d.mkdir(parents=True, exist_ok=True)
        lock = FileLock(d / ".lock", timeout=-1 if wait else 0)
        try:
            lock.acquire()
        except Timeout:
            raise RunBusy(f"run {digest} is training in another process (it holds {d / '.lock'}): let it finish, "
                          "after which the run is read from the store, or wait for it with --wait") from None
        try:
            remove_temporary(d)
            yield
        finally:
            if self.finished(digest) is not None:  # a waiting process re-checks `finished` once it holds the lock
                (d / ".lock").unlink(missing_ok=True)
            lock.release()

    def drop_stale_lock(self, digest: str) -> None:
        """Remove a finished run's lock file that a process killed before removing it left behind; a lock some
        process still holds (a waiter about to find the run finished) is left to it."""
        path = self.run_dir(digest) / ".lock"
        if path.exists():
            try:
                with FileLock(path, timeout=0):
                    path.unlink(missing_ok=True)
            except Timeout:
                pass

    def save_checkpoint(self, digest: str, state: dict) -> None:
        files.torch_save(state, self.run_dir(digest) / "checkpoint.pt")

    def load_checkpoint(self, digest: str) -> dict | None:
        """The resumable state of an unfinished run; loading it runs no code (weights_only)."""
        path = self.run_dir(digest) / "checkpoint.pt"
        if not path.exists():
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # refused globals, truncation, garbage: never a bug of ours to trace
            raise CheckpointError(f"{path} cannot be loaded as a resumable state ({one_line(e)}): delete it to train "
                                  "the run afresh") from None

    def finish(self, row: dict, history: list[dict], weights: dict | None = None) -> None:
        d = self.run_dir(row["digest"])
        files.write_text(d / "history.csv", pd.DataFrame(history).to_csv(index=False))
        if weights is not None:
            files.torch_save(weights, d / "weights.pt")
        files.write_text(d / "run.json", json.dumps(row, indent=1, sort_keys=True))
        self.export()
        self.tidy(row["digest"])

    def tidy(self, digest: str) -> None:
        """Remove what a finished run no longer needs (its checkpoint, half-written files, a stale lock). A process
        killed between writing run.json and this left them, and maybe the tables unexported: export again then."""
        d = self.run_dir(digest)
        leftovers = [d / "checkpoint.pt", *d.glob(".*.tmp")]
        if any(p.exists() for p in leftovers):
            self.export()
            for p in leftovers:
                p.unlink(missing_ok=True)
        self.drop_stale_lock(digest)

    def weights(self, digest: str) -> dict:
        """The final weights a run kept (`keep_weights=True`)."""
        path = self.run_dir(digest) / "weights.pt"
        if not path.exists():
            raise FileNotFoundError(f"{path}: run {digest} did not keep its weights (train with keep_weights=True)")
        return torch.load(path, map_location="cpu", weights_only=True)

    def rows(self) -> list[dict]:
        return [read_row(p) for p in finished_files(self.root)]

    def runs(self) -> pd.DataFrame:
        """One row per finished run: config fields, metrics and environment (prefixed env.) side by side."""
        flat = [{"digest": r["digest"], **r["config"], **r["metrics"],
                 **{f"env.{k}": v for k, v in r["env"].items()}, **{k: r[k] for k in ("finished_at", "tags")}}
                for r in self.rows()]
        return pd.DataFrame(flat)

    def history(self) -> pd.DataFrame:
        """Per-epoch history of every finished run, digest first. Columns are ordered by the set of columns alone, not
        by which run sorts first, so a landing adds rows to the exported table instead of reshuffling its header."""
        parts = [with_digest(read_history(p.parent / "history.csv"), p.parent.name) for p in finished_files(self.root)]
        return pd.concat(parts, ignore_index=True)[stable_columns(parts)] if parts else pd.DataFrame()

    def export(self) -> None:
        """Rebuild the tables from the run folders. One process at a time: so any temporary table file found while
        holding the lock was left by a killed process."""
        with FileLock(self.root / ".export.lock"):
            remove_temporary(self.root)
            files.write_text(self.root / "runs.csv", self.runs().to_csv(index=False))
            files.write_text(self.root / "history.csv", self.history().to_csv(index=False))

    def merge(self, other: str | Path) -> list[str]:
        """Copy in the finished runs of another store; a run already here is left as it is, so merging twice
        changes nothing. Returns the digests copied."""
        copied = []
        for run_json in finished_files(Path(other)):
            src = run_json.parent
            if self.finished(src.name) is not None:
                continue
            read_row(run_json)  # an unreadable run is refused here, not copied in
            read_history(src / "history.csv")
            dst = self.run_dir(src.name)
            tmp = dst.with_name(f".{src.name}.merging")
            with self.lock(src.name):  # refuses while a local process trains the same run
                shutil.rmtree(tmp, ignore_errors=True)
                shutil.copytree(src, tmp, ignore=shutil.ignore_patterns(*NOT_MERGED))
                shutil.rmtree(dst)  # an unfinished local attempt of the same run
                tmp.rename(dst)
            copied.append(src.name)
        if copied:
            self.export()
        return copied


def last_epoch(history: pd.DataFrame) -> pd.DataFrame:
    """Each run's rows at its last recorded epoch, from a frame with `digest` and `epoch` columns."""
    return history[history["epoch"] == history.groupby("digest")["epoch"].transform("max")]


def remove_temporary(folder: Path) -> None:
    """Half-written files of a process killed while saving (atomic writes never leave anything else)."""
    for tmp in folder.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def with_digest(frame: pd.DataFrame, digest: str) -> pd.DataFrame:
    frame.insert(0, "digest", digest)
    return frame


def stable_columns(frames: list[pd.DataFrame]) -> list[str]:
    """Every column of `frames`, each at the earliest place any frame has it, ties by name."""
    first: dict[str, int] = {}
    for frame in frames:
        for i, c in enumerate(frame.columns):
            first[c] = min(first.get(c, i), i)
    return sorted(first, key=lambda c: (first[c], c))


def finished_files(root: Path) -> list[Path]:
    """The run.json of every finished run (not of a half-merged `.<digest>.merging` copy)."""
    return [p for p in sorted(root.glob("runs/*/run.json")) if not p.parent.name.startswith(".")]
