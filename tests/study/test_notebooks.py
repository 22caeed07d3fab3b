"""The notebook runner: the numbered notebooks in order, a failure named by notebook and cell."""
import papermill as pm
import pytest

from multitune_lib import paths
from multitune_lib.errors import MultiTuneError
from multitune_lib.study import notebooks


def test_the_numbered_notebooks_in_order():
    assert [nb.name for nb in notebooks.notebooks()] == [
        "00_data_stats.ipynb", "01_spottune_baseline.ipynb", "02_multitune.ipynb", "03_few_shot_sweep.ipynb",
        "04_tables_and_figures.ipynb", "05_efficientnet_lite0.ipynb", "06_ablation.ipynb", "07_spottune_on_lite0.ipynb",
        "08_amf.ipynb"]


def test_run_notebooks_passes_the_profile_and_names_a_failing_cell(tmp_path, monkeypatch):
    calls = []

    def execute(nb, out, parameters, **kw):
        calls.append((nb.name, out, parameters))
        if nb.name.startswith("02"):
            raise pm.PapermillExecutionError(3, 7, "x = 1 / 0", "ZeroDivisionError", "division by zero", [])

    monkeypatch.setattr(paths, "executed_dir", lambda profile: tmp_path / profile)
    monkeypatch.setattr(pm, "execute_notebook", execute)
    assert notebooks.run_notebooks("smoke", {"device": "cpu"}, only=["04"]) == tmp_path / "smoke"
    assert calls == [("04_tables_and_figures.ipynb", tmp_path / "smoke" / "04_tables_and_figures.ipynb",
                      {"profile": "smoke", "device": "cpu"})]
    with pytest.raises(MultiTuneError, match="02_multitune.ipynb failed in cell 7 .ZeroDivisionError") as err:
        notebooks.run_notebooks("smoke", {})
    assert str(tmp_path / "smoke" / "02_multitune.ipynb") in str(err.value)
    assert [c[0][:2] for c in calls[1:]] == ["00", "01", "02"]  # stops at the failure
