"""The results store: one folder per run, named by its config hash, and tables of all finished runs.

runs/<digest>/checkpoint.pt  resumable state, rewritten atomically after every epoch, removed at the end
runs/<digest>/history.csv    one row per epoch
runs/<digest>/weights.pt     final weights, for runs that keep them
runs/<digest>/run.json       written last: its presence is what makes a run finished
runs.csv, history.csv        all finished runs, rebuilt after each finish (for people; the folders are the truth)
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import torch

from ..core.config import upgrade
from . import files


def read_row(path: Path) -> dict:
    """A finished run's record, its config in today's field names."""
    row = json.loads(path.read_text())
    return {**row, "config": upgrade(row["config"])}


class ResultsStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def run_dir(self, digest: str) -> Path:
        return self.root / "runs" / digest

    def finished(self, digest: str) -> dict | None:
        path = self.run_dir(digest) / "run.json"
        return read_row(path) if path.exists() else None

    def save_checkpoint(self, digest: str, state: dict) -> None:
        files.torch_save(state, self.run_dir(digest) / "checkpoint.pt")

    def load_checkpoint(self, digest: str) -> dict | None:
        path = self.run_dir(digest) / "checkpoint.pt"
        return torch.load(path, map_location="cpu", weights_only=False) if path.exists() else None

    def finish(self, row: dict, history: list[dict], weights: dict | None = None) -> None:
        d = self.run_dir(row["digest"])
        files.write_text(d / "history.csv", pd.DataFrame(history).to_csv(index=False))
        if weights is not None:
            files.torch_save(weights, d / "weights.pt")
        files.write_text(d / "run.json", json.dumps(row, indent=1, sort_keys=True))
        (d / "checkpoint.pt").unlink(missing_ok=True)
        self.export()

    def weights(self, digest: str) -> dict:
        """The final weights a run kept (`keep_weights=True`)."""
        path = self.run_dir(digest) / "weights.pt"
        if not path.exists():
            raise FileNotFoundError(f"{path}: run {digest} did not keep its weights (train with keep_weights=True)")
        return torch.load(path, map_location="cpu", weights_only=True)

    def rows(self) -> list[dict]:
        return [read_row(p) for p in sorted(self.root.glob("runs/*/run.json"))]

    def runs(self) -> pd.DataFrame:
        """One row per finished run: config fields, metrics and environment (prefixed env.) side by side."""
        flat = [{"digest": r["digest"], **r["config"], **r["metrics"],
                 **{f"env.{k}": v for k, v in r["env"].items()}, **{k: r[k] for k in ("finished_at", "tags")}}
                for r in self.rows()]
        return pd.DataFrame(flat)

    def history(self) -> pd.DataFrame:
        """Per-epoch history of every finished run, with its digest."""
        parts = [pd.read_csv(p.parent / "history.csv").assign(digest=p.parent.name)
                 for p in sorted(self.root.glob("runs/*/run.json"))]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def export(self) -> None:
        files.write_text(self.root / "runs.csv", self.runs().to_csv(index=False))
        files.write_text(self.root / "history.csv", self.history().to_csv(index=False))

    def merge(self, other: str | Path) -> list[str]:
        """Copy in the finished runs of another store; a run already here is left as it is, so merging twice
        changes nothing. Returns the digests copied."""
        copied = []
        for run_json in sorted(Path(other).glob("runs/*/run.json")):
            src = run_json.parent
            if self.finished(src.name) is not None:
                continue
            dst = self.run_dir(src.name)
            tmp = dst.with_name(f".{src.name}.merging")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("checkpoint.pt"))
            shutil.rmtree(dst, ignore_errors=True)  # an unfinished local attempt of the same run
            tmp.rename(dst)
            copied.append(src.name)
        if copied:
            self.export()
        return copied
