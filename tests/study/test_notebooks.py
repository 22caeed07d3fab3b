"""The notebook runner: the numbered notebooks in order, a failure named by notebook and cell, and executed copies
that a rerun on an unchanged store leaves byte for byte."""
import nbformat
import papermill as pm
import pytest

from multitune_lib import paths
from multitune_lib.errors import MultiTuneError
from multitune_lib.study import notebooks


def test_the_numbered_notebooks_in_order():
    assert [nb.name for nb in notebooks.notebooks()] == [
        "00_data_stats.ipynb", "01_spottune_baseline.ipynb", "02_multitune.ipynb", "03_few_shot_sweep.ipynb",
        "04_tables_and_figures.ipynb", "05_efficientnet_lite0.ipynb", "06_ablation.ipynb", "07_spottune_on_lite0.ipynb",
        "08_amf.ipynb", "09_schedules.ipynb", "10_contribution.ipynb",
        "11_selective_joint.ipynb"]


def test_run_notebooks_passes_the_profile_and_names_a_failing_cell(tmp_path, monkeypatch):
    calls = []

    def execute(nb, out, parameters, **kw):
        calls.append((nb.name, out, parameters))
        assert kw["config"].KernelManager.transport == "ipc"
        if nb.name.startswith("02"):
            raise pm.PapermillExecutionError(3, 7, "x = 1 / 0", "ZeroDivisionError", "division by zero", [])
        nbformat.write(papermill_output(), out)

    monkeypatch.setattr(paths, "executed_dir", lambda profile: tmp_path / profile)
    monkeypatch.setattr(pm, "execute_notebook", execute)
    assert notebooks.run_notebooks("smoke", {"device": "cpu"}, only=["04"]) == tmp_path / "smoke"
    assert calls == [("04_tables_and_figures.ipynb", tmp_path / "smoke" / "04_tables_and_figures.ipynb",
                      {"profile": "smoke", "device": "cpu"})]
    with pytest.raises(MultiTuneError, match="02_multitune.ipynb failed in cell 7 .ZeroDivisionError") as err:
        notebooks.run_notebooks("smoke", {})
    assert str(tmp_path / "smoke" / "02_multitune.ipynb") in str(err.value)
    assert [c[0][:2] for c in calls[1:]] == ["00", "01", "02"]  # stops at the failure


def papermill_output() -> nbformat.NotebookNode:
    """A notebook as papermill leaves it: timestamps, durations, paths, a random id for the injected cell, and a
    progress bar redrawn after carriage returns."""
    book = nbformat.v4.new_notebook()
    book.metadata = {"kernelspec": {"name": "multitune", "display_name": "Python (multitune)", "language": "python"},
                     "language_info": {"name": "python", "version": "3.11.7"}, "widgets": {"state": {}},
                     "papermill": {"start_time": "2026-12-04T20:06:39", "end_time": "2026-12-04T20:06:48",
                                   "duration": 9.08, "input_path": "/work/main/notebooks/x.ipynb",
                                   "output_path": "/work/main/results/smoke/notebooks/x.ipynb",
                                   "parameters": {"profile": "smoke"}, "version": "2.7.0"}}
    timing = {"execution": {"iopub.status.busy": "2026-12-04T20:06:40.16Z"},
              "papermill": {"duration": 0.01, "start_time": "2026-12-04T20:06:40", "status": "completed"}}
    injected = nbformat.v4.new_code_cell('profile = "smoke"', metadata={"tags": ["injected-parameters"], **timing})
    injected.id = "6c6eb85d"
    run = nbformat.v4.new_code_cell("runs = study.run_all(...)", metadata=dict(timing), outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="spottune 0%|  | 0/2\rspottune 50%|# | 1/2"),
        nbformat.v4.new_output("stream", name="stdout", text="\rspottune 100%|##| 2/2\n1 run found in the store, "
                                                             "1 trained\n")])
    run.id = "run"
    book.cells = [injected, run]
    return book


def test_settled_keeps_what_a_rerun_on_an_unchanged_store_repeats(tmp_path):
    book = notebooks.settled(papermill_output())
    assert book.metadata["papermill"] == {"parameters": {"profile": "smoke"}}
    assert "widgets" not in book.metadata and "version" not in book.metadata["language_info"]
    assert book.metadata["kernelspec"]["name"] == "multitune"
    assert [c.id for c in book.cells] == ["injected-parameters", "run"]
    assert all(set(c.metadata) <= {"tags"} for c in book.cells)
    (out,) = book.cells[1].outputs
    assert out.text == "spottune 100%|##| 2/2\n1 run found in the store, 1 trained\n"
    nbformat.write(book, tmp_path / "once.ipynb")
    nbformat.write(notebooks.settled(nbformat.read(tmp_path / "once.ipynb", as_version=4)), tmp_path / "twice.ipynb")
    assert (tmp_path / "once.ipynb").read_bytes() == (tmp_path / "twice.ipynb").read_bytes()
    assert notebooks.flaws(book) == []


def test_settle_rewrites_the_executed_copy_the_same_from_two_runs(tmp_path):
    first, second = papermill_output(), papermill_output()
    second.metadata["papermill"]["duration"] = 12.5
    second.cells[0].id = "0a1b2c3d"
    for name, book in (("first.ipynb", first), ("second.ipynb", second)):
        nbformat.write(book, tmp_path / name)
        notebooks.settle(tmp_path / name)
    assert (tmp_path / "first.ipynb").read_bytes() == (tmp_path / "second.ipynb").read_bytes()


def test_portable_gives_paths_in_the_project_relative_to_the_notebooks(tmp_path):
    root = paths.project_root()
    given = {"source": str(root / "data" / "pretrained" / "x.pt"), "data_root": str(tmp_path), "seeds": [0, 1],
             "results": "results/smoke"}
    assert notebooks.portable(given, root / "notebooks") == {
        "source": "../data/pretrained/x.pt", "data_root": str(tmp_path), "seeds": [0, 1], "results": "results/smoke"}


def test_the_kernel_is_reached_over_local_sockets(tmp_path):
    config = notebooks.local_kernel(str(tmp_path))
    assert config.KernelManager.transport == "ipc" and config.KernelManager.ip == str(tmp_path / "kernel")


def test_every_notebook_takes_the_same_parameters_and_defaults_to_auto():
    for nb in notebooks.notebooks():
        params = pm.inspect_notebook(str(nb))
        assert {"profile", "train", "data_root", "source", "device", "seeds", "results"} <= set(params), nb.name
        assert params["train"]["default"] == "True", nb.name
        assert '"auto"' in params["profile"]["default"], nb.name


def test_source_notebooks_hold_outputs_only_where_nbval_checks_them():
    """A source notebook run in JupyterLab and saved keeps every output, and nbval would compare the checked
    cells against that run's profile: say so here, with the way back, rather than as nbval's cell diffs."""
    for path in notebooks.notebooks():
        book = nbformat.read(path, as_version=4)
        saved = [i for i, cell in enumerate(book.cells) if cell.cell_type == "code"
                 and not cell.source.startswith("# NBVAL_CHECK_OUTPUT") and (cell.outputs or cell.execution_count)]
        assert not saved, (
            f"notebooks/{path.name} was saved with the outputs of a run (cells {saved}): restore it with "
            f"`git checkout -- notebooks/{path.name}`, or keep your edits and remake the checked outputs with "
            "`python -m multitune_lib study --profile smoke --keep-checked-outputs`; to explore a profile, open its "
            "executed copies in results/<profile>/notebooks/ instead")
