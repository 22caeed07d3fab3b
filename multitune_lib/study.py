"""The study: runs a profile's configurations for the notebooks, and `python -m multitune_lib.study` runs the
numbered notebooks in order with papermill, writing executed copies under results/<profile>/notebooks/."""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import pandas as pd

from . import paths, profiles, train
from .config import DEFAULTS, RunConfig
from .errors import ConfigError, MultiTuneError
from .results import ResultsStore

METHOD_NAMES = {"spottune": "SpotTune", "multitune": "MultiTune"}
RUN_KEYS = ["digest", "method", "method_name", "dataset", "dataset_label", "row", "variant", "seed", "eta"]
RUN_METRICS = ["final_val_acc", "best_val_acc", "train_minutes", "epochs", "env.device_name", "precision"]


class Study:
    """A profile bound to its data, source checkpoint, device and results folder (results/<profile>)."""

    def __init__(self, profile: str | None = None, data_root=None, source=None, device: str = "auto",
                 seeds=None, results=None):
        self.profile = profiles.get(profile)
        self.data_root = Path(data_root) if data_root else paths.default_data_root()
        self.source = Path(source) if source else self.profile.source
        self.device = device
        self.seeds = self.profile.seeds if seeds is None else tuple([seeds] if isinstance(seeds, int) else seeds)
        if not self.seeds or not all(isinstance(s, int) for s in self.seeds):
            raise ConfigError(f"seeds={seeds!r}: give an int or a list of ints, e.g. -p seeds [0,1]")
        self.results = Path(results) if results else paths.project_root() / "results" / self.profile.name
        self.store = ResultsStore(self.results)

    def run(self, method: str, dataset: str, shots="all", seed: int = 0, variant: str = "main", **settings) -> dict:
        """One row of the study: `shots="all"` is the profile's whole-dataset row. Runs with other settings
        (an eta sweep, say) get their own `variant`, so Table 3 and Fig. 2 keep to the paper's settings."""
        p = self.profile
        if p.needs_source and (self.source is None or not self.source.exists()):
            raise ConfigError(f"the {p.name} profile starts from a source checkpoint ({self.source or 'none given'}): "
                              "pass source=resnet26_pretrained.t7 (the SpotTune release) or one of ours "
                              "(`python -m multitune_lib pretrain`)")
        settings.setdefault("milestones", p.milestones(DEFAULTS[method]["milestones"]))
        settings.setdefault("eval_every", p.eval_every)
        cfg = RunConfig(method=method, dataset=dataset, shots=p.full_shots if shots == "all" else shots,
                        classes=p.classes(dataset), seed=seed, epochs=p.epochs, **settings)
        return train.run(cfg, data_root=self.data_root, results=self.results, source=self.source,
                         device=self.device, tags={"profile": p.name, "row": str(shots), "variant": variant})

    def run_all(self, methods, datasets=None, shots=("all",)) -> pd.DataFrame:
        """Every method x dataset x row x seed; whole-dataset rows only where the profile has them."""
        shots = [s for s in shots if s != "all" or self.profile.full_rows]
        rows = [self.run(m, d, s, seed) for d in datasets or self.profile.datasets for s in shots
                for m in methods for seed in self.seeds]
        if not rows:
            return pd.DataFrame(columns=["method", "dataset", "row", "seed"])
        return pd.DataFrame([{"method": r["config"]["method"], "dataset": r["config"]["dataset"],
                              "row": r["tags"]["row"], "seed": r["config"]["seed"], **r["metrics"]} for r in rows])

    def runs(self) -> pd.DataFrame:
        df = self.store.runs()
        if df.empty:  # the columns notebooks and Table 3 select on: an empty study reads as empty, not as an error
            return pd.DataFrame(columns=[*RUN_KEYS, "tags", *RUN_METRICS])
        return df.assign(row=df["tags"].map(lambda t: t.get("row")), variant=df["tags"].map(lambda t: t.get("variant")),
                         dataset_label=df["dataset"].map(self.profile.label),
                         method_name=df["method"].map(lambda m: METHOD_NAMES.get(m, m)))

    def history(self) -> pd.DataFrame:
        """Per-epoch history joined with each run's method, dataset and row."""
        runs = self.runs()
        if runs.empty:
            return pd.DataFrame(columns=[*RUN_KEYS, "epoch", "train_loss", "val_acc"])
        return self.store.history().merge(runs[RUN_KEYS], on="digest")


def notebooks() -> list[Path]:
    return sorted((paths.project_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def executed_dir(profile: str) -> Path:
    """Executed copies of the notebooks live beside the profile's results store."""
    return paths.project_root() / "results" / profile / "notebooks"


def run_notebooks(profile: str, parameters: dict, only=None) -> Path:
    """Execute the numbered notebooks in order; a failure stops the run and names the notebook and cell."""
    import papermill as pm

    out = executed_dir(profile)
    out.mkdir(parents=True, exist_ok=True)
    for nb in notebooks():
        if only and not any(nb.name.startswith(o) for o in only):
            continue
        print(f"== {nb.name} ({profile})", flush=True)
        try:
            pm.execute_notebook(nb, out / nb.name, parameters={"profile": profile, **parameters},
                                cwd=nb.parent, kernel_name="python3", progress_bar=True)
        except pm.PapermillExecutionError as e:
            raise MultiTuneError(f"{nb.name} failed in cell {e.exec_count} ({e.ename}: {e.evalue}); "
                                 f"the executed copy is {out / nb.name}. Rerun to continue: finished "
                                 "training runs are read from the results store.") from None
    return out


def keep_checked_outputs(profile: str = "smoke") -> list[Path]:
    """Copy the outputs of `# NBVAL_CHECK_OUTPUT` cells from the executed copies into the source notebooks and
    clear every other output, so the sources stay small and diffable and nbval has what it compares against."""
    import nbformat

    changed = []
    for nb_path in notebooks():
        executed = nbformat.read(executed_dir(profile) / nb_path.name, as_version=4)
        ran = {c.source: c for c in executed.cells if c.cell_type == "code"}
        book = nbformat.read(nb_path, as_version=4)
        for cell in book.cells:
            if cell.cell_type == "code":
                # nbval compares only cells that carry an execution count.
                ref = ran.get(cell.source) if cell.source.startswith("# NBVAL_CHECK_OUTPUT") else None
                cell.outputs = ref.outputs if ref else []
                cell.execution_count = ref.execution_count if ref else None
        nbformat.write(book, nb_path)
        changed.append(nb_path)
    return changed


def parse_value(text: str):
    """-p values: Python literals (numbers, None, lists such as [0, 1]) as such, everything else as text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m multitune_lib.study", description=__doc__)
    ap.add_argument("--profile", default=None, help=f"one of {', '.join(profiles.PROFILES)}, or auto (offline "
                    "where CUDA is present, else smoke) (default: $MULTITUNE_PROFILE, else smoke)")
    ap.add_argument("--source", help="source checkpoint (resnet26_pretrained.t7 or one of ours)")
    ap.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="another notebook parameter, e.g. -p device cuda -p data_root /data/decathlon-1.0")
    ap.add_argument("--only", nargs="+", help="run only the notebooks whose names start with these, e.g. 04")
    ap.add_argument("--train-only", nargs="*", metavar="DATASET", help="train the Table 3 rows of these datasets "
                    "(default: all of the profile's) without papermill or notebooks, e.g. on a GPU machine with "
                    "only a data pack; then merge its results store and run --only 04 where Jupyter is")
    ap.add_argument("--keep-checked-outputs", action="store_true", help="after running, copy the outputs that "
                    "nbval checks into the source notebooks (maintainers, smoke profile)")
    a = ap.parse_args(argv)
    profile = profiles.get(a.profile).name
    params = {k: parse_value(v) for k, v in a.p}
    if a.source:
        params["source"] = str(Path(a.source).resolve())
    try:
        if a.train_only is not None:
            study = Study(profile, params.get("data_root"), a.source, params.get("device", "auto"),
                          params.get("seeds"), params.get("results"))
            rows = study.run_all(list(METHOD_NAMES), a.train_only or None, ("all", *study.profile.shots))
            print(rows.to_string(index=False))
            return 0
        out = run_notebooks(profile, params, a.only)
    except MultiTuneError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if a.keep_checked_outputs:
        print("checked outputs kept in", ", ".join(p.name for p in keep_checked_outputs(profile)))
    from .report import figures_dir

    figures = figures_dir(profile)
    print(f"executed notebooks: {out}\nTable 3: {figures / 'table3.md'} and table3.csv\n"
          f"Fig. 2: {figures / 'fig2.png'} and fig2.pdf")
    return 0


if __name__ == "__main__":
    sys.exit(main())
