"""The numbered notebooks, run in order by papermill into results/<profile>/notebooks/, and the outputs nbval
checks copied back into the sources. An executed copy is kept without what changes from one run to the next
(timestamps, durations, this machine's folders, random cell ids), so a rerun on an unchanged store rewrites it
byte for byte and leaves git clean."""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import nbformat
import papermill as pm
from traitlets.config import Config

from .. import paths
from ..errors import MultiTuneError
from .kernel import kernel_name


def notebooks() -> list[Path]:
    return sorted((paths.project_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def notebook_parameters() -> set[str]:
    """The names the notebooks' tagged `parameters` cells define: all that `-p` may set."""
    return set().union(*(pm.inspect_notebook(str(nb)) for nb in notebooks()))


def run_notebooks(profile: str, parameters: dict, only=None) -> Path:
    """Execute the numbered notebooks in order; a failure stops the run and names the notebook and cell."""
    out = paths.executed_dir(profile)
    out.mkdir(parents=True, exist_ok=True)
    for nb in notebooks():
        if only and not any(nb.name.startswith(o) for o in only):
            continue
        print(f"== {nb.name} ({profile})", flush=True)
        given = {"profile": profile, **portable(parameters, nb.parent)}
        try:
            with tempfile.TemporaryDirectory() as sockets:
                pm.execute_notebook(nb, out / nb.name, parameters=given, config=local_kernel(sockets),
                                    cwd=nb.parent, kernel_name=kernel_name(), progress_bar=True)
        except pm.PapermillExecutionError as e:
            raise MultiTuneError(f"{nb.name} failed in cell {e.exec_count} ({e.ename}: {e.evalue}); "
                                 f"the executed copy is {out / nb.name}. Rerun to continue: finished "
                                 "training runs are read from the results store.") from None
        settle(out / nb.name)
        for flaw in flaws(nbformat.read(out / nb.name, as_version=4)):
            print(f"   {nb.name} keeps {flaw}", flush=True)
    return out


def local_kernel(sockets: str) -> Config:
    """The kernel reached through sockets in a private folder: over TCP, ipykernel warns for every notebook that
    the channel is not encrypted."""
    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(Path(sockets) / "kernel")
    return config


def portable(parameters: dict, cwd: Path) -> dict:
    """Parameters with a path inside the project given relative to `cwd` (where the notebooks run), so that an
    executed notebook names no folder of this machine."""
    root = paths.project_root()

    def relative(value):
        inside = isinstance(value, str) and Path(value).is_absolute() and Path(value).is_relative_to(root)
        return os.path.relpath(value, cwd) if inside else value
    return {name: relative(value) for name, value in parameters.items()}


def settle(executed: Path) -> None:
    """Rewrite an executed notebook without what differs between two runs on an unchanged store."""
    nbformat.write(settled(nbformat.read(executed, as_version=4)), executed)


def settled(book):
    """`book` without papermill's timestamps, durations and paths (its parameters stay), per-cell execution
    times, widget state or the Python patch version; the injected parameters cell with a fixed id (papermill
    draws one), and each stream output as a terminal shows it. Idempotent."""
    meta = book.metadata
    meta.pop("widgets", None)
    meta["papermill"] = {"parameters": meta.get("papermill", {}).get("parameters", {})}
    meta.get("language_info", {}).pop("version", None)
    for cell in book.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.id = "injected-parameters"
        if cell.cell_type == "code":
            cell.outputs = merged_streams(cell.outputs)
    return book


def merged_streams(outputs: list) -> list:
    """Consecutive outputs of one stream as one, each line at its last state: a progress bar redraws its line
    after a carriage return, and only what a terminal would show is kept."""
    kept = []
    for out in outputs:
        if out.output_type == "stream" and kept and kept[-1].output_type == "stream" and kept[-1].name == out.name:
            kept[-1].text += out.text
        else:
            kept.append(out)
    for out in kept:
        if out.output_type == "stream":
            out.text = "\n".join(last_state(line) for line in out.text.split("\n"))
    return kept


def last_state(line: str) -> str:
    """What is left of a line after carriage returns: the last text written over its start."""
    drawn = [part for part in line.split("\r") if part]
    return drawn[-1] if drawn else ""


MACHINE_PATH = re.compile(r"/(work|home|root|Users|tmp)/")


def flaws(book) -> list[str]:
    """What an executed notebook kept for readers must not hold: an error, output on stderr, or a folder of the
    machine that ran it."""
    found = []

    def check(where: str, text: str) -> None:
        if str(paths.project_root()) in text or MACHINE_PATH.search(text):
            found.append(f"a path of this machine in {where}")
    check("the metadata", json.dumps(book.metadata))
    for i, cell in enumerate(book.cells):
        check(f"cell {i}", cell.source)
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                found.append(f"an error in cell {i} ({out.ename})")
            if out.output_type == "stream" and out.name == "stderr":
                found.append(f"output on stderr in cell {i}")
            for text in output_texts(out):
                check(f"an output of cell {i}", text)
    return list(dict.fromkeys(found))


def output_texts(out) -> list[str]:
    """The text an output shows a reader: a stream, a traceback, or its text/* representations."""
    if out.output_type == "stream":
        return [out.text]
    if out.output_type == "error":
        return ["\n".join(out.traceback)]
    return [v if isinstance(v, str) else "".join(v) for k, v in out.get("data", {}).items() if k.startswith("text/")]


def keep_checked_outputs(profile: str = "smoke", only=None) -> list[Path]:
    """Copy the outputs of `# NBVAL_CHECK_OUTPUT` cells from the executed copies (those whose names start with one of
    `only`, or all) into the source notebooks and clear every other output, so the sources stay small and diffable
    and nbval has what it compares against."""
    changed = []
    for nb_path in notebooks():
        if only and not any(nb_path.name.startswith(o) for o in only):
            continue
        executed = nbformat.read(paths.executed_dir(profile) / nb_path.name, as_version=4)
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
