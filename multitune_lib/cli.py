"""Command line: `python -m multitune_lib {run,pretrain,data,results,bench} ...`."""
from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
from pathlib import Path

from . import paths
from .config import METHODS, RunConfig
from .errors import MultiTuneError


def add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", required=True, choices=METHODS, help="training method")
    p.add_argument("--dataset", required=True, help="Decathlon dataset name, e.g. aircraft or cifar100")
    p.add_argument("--shots", type=int, help="images per class drawn from the train split (default: all)")
    p.add_argument("--classes", help="1-based class ids to keep, e.g. '51-100' (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed for the few-shot draw, init and augmentation")
    p.add_argument("--epochs", type=int, default=110, help="training epochs (paper: 110)")
    p.add_argument("--batch-size", type=int, default=128, help="training batch size (paper: 128)")
    p.add_argument("--lr", type=float, help="learning rate (paper: 0.1)")
    p.add_argument("--lr-last", type=float, help="MultiTune setting B: lr of its re-initialised block (paper: 0.01)")
    p.add_argument("--policy-lr", type=float, help="SpotTune: policy network lr (paper: 0.01)")
    p.add_argument("--milestones", type=int, nargs="+", help="epochs where lr is multiplied by --gamma "
                   "(paper: 20 50 80 for MultiTune, 40 60 80 for SpotTune)")
    p.add_argument("--gamma", type=float, default=0.1, help="lr factor at each milestone")
    p.add_argument("--weight-decay", type=float, help="SGD weight decay (SpotTune: 5e-4, 0 on cifar100)")
    p.add_argument("--alpha", type=float, help="L2-SP strength towards the source weights (0 turns it off)")
    p.add_argument("--beta", type=float, help="L2-SP strength on new weights")
    p.add_argument("--eta", type=float, default=0.5, help="MultiTune: share of network A in the joined features")
    p.add_argument("--reinit", choices=("block", "stage"), default="block",
                   help="MultiTune: re-initialise the last block or the whole last stage")
    p.add_argument("--sample-eval", action="store_true", help="SpotTune: sample the policy at evaluation")
    p.add_argument("--crop", type=int, default=64, help="training crop in px (the paper: 64 of 72); smaller crops "
                   "train on scaled-down images")
    p.add_argument("--eval-every", type=int, default=1, help="validate every n epochs and after the last "
                   "(the paper: every epoch)")
    p.add_argument("--source", type=Path, help="source checkpoint: resnet26_pretrained.t7 or one of ours "
                   "(default: train from scratch)")


def add_exec_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", type=Path, help=f"Decathlon root (default: {paths.default_data_root()})")
    p.add_argument("--results", type=Path, default=Path("results"), help="results store folder")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"),
                   help="autocast dtype; auto = bf16 on CUDA and on CPUs with native bf16")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")


def cmd_run(a) -> None:
    from .data import parse_classes
    from .train import run

    cfg = RunConfig(method=a.method, dataset=a.dataset, shots=a.shots, classes=parse_classes(a.classes),
                    seed=a.seed, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, lr_last=a.lr_last,
                    policy_lr=a.policy_lr, milestones=tuple(a.milestones) if a.milestones else None, gamma=a.gamma,
                    weight_decay=a.weight_decay, alpha=a.alpha, beta=a.beta, eta=a.eta, reinit=a.reinit,
                    sample_eval=a.sample_eval, crop=a.crop, eval_every=a.eval_every)
    row = run(cfg, data_root=a.data_root, results=a.results, source=a.source, device=a.device,
              precision=a.precision, compile=a.compile, keep_weights=a.keep_weights)
    print(json.dumps({"digest": row["digest"], **row["metrics"]}, indent=1))


def cmd_pretrain(a) -> None:
    from .data import parse_classes
    from .pretrain import pretrain

    pretrain(a.dataset, parse_classes(a.classes), epochs=a.epochs, milestones=a.milestones, lr=a.lr,
             weight_decay=a.weight_decay, crop=a.crop, seed=a.seed, eval_every=a.eval_every, out=a.out, note=a.note,
             force=a.force, data_root=a.data_root, results=a.results, device=a.device, precision=a.precision)


def cmd_data_install(a) -> None:
    from . import install

    if a.download:
        install.download(a.download)
    root = install.install(a.download or getattr(a, "from"), a.dest)
    print(f"Decathlon root: {root}")


def cmd_data_pack(a) -> None:
    from .pack import pack_part

    pack_part(a.profile, a.part, a.out, a.data_root, a.seeds)


def cmd_results_merge(a) -> None:
    from .results import ResultsStore

    for src in a.sources:
        with tempfile.TemporaryDirectory() as tmp:
            store = src
            if src.is_file():  # a tarball of a store, as the device tool brings one back
                with tarfile.open(src) as tar:
                    tar.extractall(tmp, filter="data")
                found = sorted(Path(tmp).glob("**/runs/*/run.json"))
                store = found[0].parent.parent.parent if found else Path(tmp)
            if not (store / "runs").is_dir():
                raise MultiTuneError(f"{src} is not a results store or a tarball of one (no runs/ folder in it)")
            copied = ResultsStore(a.into).merge(store)
        print(f"{src}: {len(copied)} new runs merged into {a.into}" + (f" ({', '.join(copied)})" if copied else ""))


def cmd_bench(a) -> None:
    from .bench import main

    main(device=a.device, batch_size=a.batch_size, steps=a.steps, precision=a.precision, compile=a.compile,
         workers=a.workers)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m multitune_lib", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="train and evaluate one configuration (a finished one is read from the store)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_run_args(p)
    add_exec_args(p)
    p.add_argument("--keep-weights", action="store_true", help="keep the final weights in the store")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("pretrain", help="train ResNet-26 from scratch and save it as a source model",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default="cifar100", help="Decathlon dataset name (imagenet12 for users who have it)")
    p.add_argument("--classes", default="1-50", help="1-based class ids to train on; 'all' for every class")
    p.add_argument("--epochs", type=int, default=60, help="training epochs")
    p.add_argument("--milestones", type=int, nargs="+", help="epochs where lr is multiplied by 0.1 "
                   "(default: half and three quarters of --epochs)")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--crop", type=int, default=64, help="training crop in px; below 64 the images are scaled "
                   "down first (a cheaper, lower-resolution pretraining)")
    p.add_argument("--eval-every", type=int, default=1, help="validate every n epochs and after the last")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=paths.default_source(), help="checkpoint to write")
    p.add_argument("--note", default="", help="a remark kept in the metadata, e.g. why the budget was small")
    p.add_argument("--force", action="store_true", help="replace an --out written by a different run")
    add_exec_args(p)
    p.set_defaults(fn=cmd_pretrain, results=paths.project_root() / "runs" / "pretrain")

    data = sub.add_parser("data", help="install the Visual Decathlon data, or pack part of it")
    data = data.add_subparsers(dest="data", required=True)
    p = data.add_parser("install", help="unpack the Decathlon archives into the ignored data folder")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--from", type=Path, help="folder holding decathlon-1.0-devkit.tar.gz and the dataset tars "
                     "(e.g. ../shared/decathlon) or the official decathlon-1.0-data.tar.gz")
    src.add_argument("--download", type=Path, metavar="DIR",
                     help="download the official archives into DIR first (needs internet, several GB)")
    p.add_argument("--dest", type=Path, default=paths.data_dir() / "decathlon", help="where to unpack")
    p.set_defaults(fn=cmd_data_install)

    p = data.add_parser("pack", help="write the images one part of a profile needs into one zip (to carry them to "
                        "a machine without the Decathlon archives); any data root may then name the zip")
    p.add_argument("--profile", required=True, help="the profile whose images to pack, e.g. offline")
    p.add_argument("--part", required=True, help="a dataset of the profile (aircraft, cifar100) or pretrain")
    p.add_argument("--out", type=Path, help="zip to write (default: data/packs/<profile>-<part>.zip, ignored by git)")
    p.add_argument("--data-root", type=Path, help=f"Decathlon root to read (default: {paths.default_data_root()})")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds of the few-shot draws (default: the profile's)")
    p.set_defaults(fn=cmd_data_pack)

    results = sub.add_parser("results", help="work with results stores").add_subparsers(dest="results", required=True)
    p = results.add_parser("merge", help="copy finished runs from other stores (e.g. brought back from a GPU "
                           "machine); a run already present is left alone, so merging twice changes nothing")
    p.add_argument("sources", type=Path, nargs="+", help="results stores to read, or .tar.gz files of them")
    p.add_argument("--into", type=Path, required=True, help="the store to merge into, e.g. results/offline")
    p.set_defaults(fn=cmd_results_merge)

    p = sub.add_parser("bench", help="images/s of the training step: ours against a reference loop written like "
                       "the original code", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=None, help="timed steps per measurement (default: 5 CPU, 50 GPU)")
    p.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    p.add_argument("--compile", action="store_true", help="also torch.compile our models")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers of the reference loop "
                   "(default: the CPU count, at most 8)")
    p.set_defaults(fn=cmd_bench)
    return top


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        args.fn(args)
    except MultiTuneError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
