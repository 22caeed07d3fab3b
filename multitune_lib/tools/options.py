"""Command-line options derived from `RunConfig`: one option per field, with the field's help, default and choices
(method and backbone choices from the registries), so nothing here repeats a setting."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from .. import paths
from ..core.config import RunConfig

SCALARS = {"int": int, "float": float, "str": str}


def option(f: dataclasses.Field, default) -> dict:
    """argparse keywords for one config field, read from its type annotation and metadata."""
    kind = str(f.type).split(" | ")[0]
    kw = {"help": f.metadata["help"], "default": default}
    if kind == "bool":  # a field that may be None (the protocol decides) can also be turned off: --no-NAME
        return {**kw, "action": argparse.BooleanOptionalAction if "None" in str(f.type) else "store_true"}
    if f.metadata.get("text"):
        kw["type"] = str
    elif kind.startswith("tuple[int"):
        kw.update(type=int, nargs="+")
    elif kind.startswith("tuple[str"):
        kw.update(type=str, nargs="+")
    elif kind in SCALARS:
        kw["type"] = SCALARS[kind]
    if "choices" in f.metadata:
        kw["choices"] = f.metadata["choices"]()
    if "metavar" in f.metadata:
        kw["metavar"] = f.metadata["metavar"]
    if default is dataclasses.MISSING:
        kw.update(required=True, default=None)
    return kw


def add_config_args(p: argparse.ArgumentParser, only=None, defaults: dict | None = None) -> list[str]:
    """Add an option for every command-line field of RunConfig (or those named in `only`), with `defaults`
    overriding the config's own; returns the field names added."""
    names = []
    for f in dataclasses.fields(RunConfig):
        if f.metadata.get("cli", True) is False or (only is not None and f.name not in only):
            continue
        default = (defaults or {}).get(f.name, f.default)
        p.add_argument("--" + f.name.replace("_", "-"), **option(f, default))
        names.append(f.name)
    return names


def config_from_args(a: argparse.Namespace, names: list[str], **fixed) -> RunConfig:
    return RunConfig(**{n: getattr(a, n) for n in names}, **fixed)


def add_exec_args(p: argparse.ArgumentParser) -> None:
    """Where and how a run executes: none of it is part of the run's identity."""
    p.add_argument("--data-root", type=Path, help=f"Decathlon root or data pack (default: {paths.default_data_root()})")
    p.add_argument("--results", type=Path, default=Path("results"), help="results store folder")
    add_device_args(p)


def add_device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"),
                   help="autocast dtype; auto = bf16 on CUDA and on CPUs with native bf16")
    p.add_argument("--compile", action="store_true", help="torch.compile (inductor) each training "
                   "step's loss (forward, cross-entropy, L2-SP penalty) as one graph, and evaluation's forward")
