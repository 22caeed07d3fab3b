"""The executed notebooks committed under results/<profile>/notebooks/ read as sections of a paper: no error, no
output on stderr, and no folder of the machine that ran them."""
import subprocess

import nbformat
import pytest

from multitune_lib import paths
from multitune_lib.study.notebooks import flaws


def committed() -> list[str]:
    try:
        listed = subprocess.run(["git", "ls-files", "results/*/notebooks/*.ipynb"], cwd=paths.project_root(),
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):  # an unpacked release, not a checkout
        return []
    return sorted(listed.split())


@pytest.mark.parametrize("name", committed() or [pytest.param("", marks=pytest.mark.skip(reason="not a checkout"))])
def test_a_committed_executed_notebook_keeps_no_error_stderr_or_machine_path(name):
    found = flaws(nbformat.read(paths.project_root() / name, as_version=4))
    assert not found, f"{name} keeps {'; '.join(found)}: regenerate it with `study --profile <profile> --no-train`"


def test_flaws_finds_an_error_stderr_and_a_machine_path():
    book = nbformat.v4.new_notebook()
    book.cells = [nbformat.v4.new_code_cell("x = 1", outputs=[
        nbformat.v4.new_output("stream", name="stderr", text="Warning\n"),
        nbformat.v4.new_output("error", ename="ValueError", evalue="no", traceback=["ValueError: no"]),
        nbformat.v4.new_output("execute_result", data={"text/plain": f"{paths.project_root()}/results"})])]
    assert flaws(book) == ["output on stderr in cell 0", "an error in cell 0 (ValueError)",
                           "a path of this machine in an output of cell 0"]
    book.cells = [nbformat.v4.new_code_cell("x = '/home/someone/data'")]
    book.metadata["papermill"] = {"parameters": {"results": "../results/smoke"}}
    assert flaws(book) == ["a path of this machine in cell 0"]
    book.cells = [nbformat.v4.new_code_cell("x = 'results/smoke'", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="12 runs found in the store, 0 trained\n")])]
    assert flaws(book) == []
