"""Command-line options derived from `RunConfig`: one option per field, with the field's help, default and choices
(method and backbone choices from the registries, a field the methods fill from their registered defaults), so
nothing here repeats a setting."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from .. import paths
from ..core.config import RunConfig
from ..core.registry import METHODS

SCALARS = {"int": int, "float": float, "str": str}


class Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default after its help, once, as typed (lists space-separated, a path in the project
    relative to it); not None (the help says what it falls back on), False (a flag) or an empty text or list."""

    def _get_help_string(self, action):
        d = action.default
        empty = isinstance(d, (str, list, tuple)) and not d
        if d is None or d is False or d is argparse.SUPPRESS or empty or not action.option_strings:
            return action.help
        text = paths.shown(d) if isinstance(d, Path) else shown(d)
        return f"{action.help} (default: {text.replace('%', '%%')})"


class Parser(argparse.ArgumentParser):
    """A parser with that formatter; argparse makes subcommand parsers of their parent's class, so every
    subcommand's help shows defaults the same way."""

    def __init__(self, *args, formatter_class=Formatter, **kw):
        super().__init__(*args, formatter_class=formatter_class, **kw)


def shown(value) -> str:
    """A default as typed on the command line: (20, 50, 80) -> '20 50 80'."""
    return " ".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def method_defaults(name: str, methods=None) -> str:
    """What the registered methods (or those named) set a None field to, for its help: ' (default: 0.1)' where
    all agree, else ' (default by method: 40 60 80 for spottune, else 20 50 80)'; '' where none sets it."""
    regs = [METHODS.get(m) for m in methods or METHODS.names()]
    by_value: dict[str, list[str]] = {}
    for m in regs:
        if m.defaults.get(name) is not None:
            by_value.setdefault(shown(m.defaults[name]), []).append(m.name)
    if not by_value:
        return ""
    if len(by_value) == 1 and sum(map(len, by_value.values())) == len(regs):
        return f" (default: {next(iter(by_value))})"
    parts = sorted(by_value.items(), key=lambda kv: len(kv[1]))
    every = sum(len(names) for _, names in parts) == len(regs)
    rest = f", else {parts.pop()[0]}" if every else ""  # the most common value, said once
    return " (default by method: " + "; ".join(f"{v} for {', '.join(n)}" for v, n in parts) + rest + ")"


def option(f: dataclasses.Field, default, note: str = "") -> dict:
    """argparse keywords for one config field, read from its type annotation and metadata, `note` after its help."""
    kind = str(f.type).split(" | ")[0]
    kw = {"help": f.metadata["help"] + note, "default": default}
    if kind == "bool":  # a field that may be None (the protocol decides) can also be turned off: --no-NAME
        return {**kw, "action": argparse.BooleanOptionalAction if "None" in str(f.type) else "store_true"}
    if f.metadata.get("text"):
        kw["type"] = str
    elif kind.startswith("tuple[int"):
        kw.update(type=int, nargs="+")
    elif kind.startswith("tuple[float"):
        kw.update(type=float, nargs="+")
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


def add_config_args(p: argparse.ArgumentParser, only=None, defaults: dict | None = None,
                    methods=None) -> list[str]:
    """Add an option for every command-line field of RunConfig (or those named in `only`), with `defaults`
    overriding the config's own, the help naming the defaults of `methods` (all registered ones unless named);
    returns the field names added."""
    names, defaults = [], defaults or {}
    for f in dataclasses.fields(RunConfig):
        if f.metadata.get("cli", True) is False or (only is not None and f.name not in only):
            continue
        # a field left None takes the method's value, unless the caller's default says otherwise
        note = method_defaults(f.name, methods) if f.default is None and f.name not in defaults else ""
        p.add_argument("--" + f.name.replace("_", "-"), **option(f, defaults.get(f.name, f.default), note))
        names.append(f.name)
    return names


def config_from_args(a: argparse.Namespace, names: list[str], **fixed) -> RunConfig:
    return RunConfig(**{n: getattr(a, n) for n in names}, **fixed)


def add_exec_args(p: argparse.ArgumentParser) -> None:
    """Where and how a run executes: none of it is part of the run's identity."""
    p.add_argument("--data-root", type=Path,
                   help=f"Decathlon root or data pack (default: {paths.shown(paths.default_data_root())})")
    p.add_argument("--results", type=Path, default=Path("results"), help="results store folder")
    add_device_args(p)


def add_device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"),
                   help="autocast dtype; auto = bf16 on CUDA and on CPUs with native bf16")
    p.add_argument("--compile", action="store_true", help="torch.compile (inductor) each training "
                   "step's loss (forward, cross-entropy, L2-SP penalty) as one graph, and evaluation's forward")
