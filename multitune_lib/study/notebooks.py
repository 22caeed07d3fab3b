"""The numbered notebooks, run in order by papermill into results/<profile>/notebooks/, and the outputs nbval
checks copied back into the sources."""
from __future__ import annotations

from pathlib import Path

import nbformat
import papermill as pm

from .. import paths
from ..errors import MultiTuneError


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
    changed = []
    for nb_path in notebooks():
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
