"""The new-method walk-through of docs/library.md, followed literally: its code, written to a file of its own and
imported, adds a method that the config, the command line, the trainer, the store and the study then know."""
import importlib.util
import re

import pytest

from multitune_lib import METHODS, ConfigError, RunConfig, fit, paths
from multitune_lib.backbones import resnet26
from multitune_lib.core.method import build
from multitune_lib.study.study import label
from multitune_lib.tools import cli


def readme_example() -> str:
    readme = (paths.project_root() / "docs" / "library.md").read_text()
    block = readme.split("<!-- method-example", 1)[1].split("<!-- end method-example -->", 1)[0]
    return re.search(r"```python\n(.*?)```", block, re.S).group(1)


@pytest.fixture
def linear_probe(tmp_path, monkeypatch):
    """The walk-through's file, imported as a module: the registry is restored afterwards."""
    monkeypatch.setattr(METHODS, "items", dict(METHODS.items))
    path = tmp_path / "linear_probe.py"
    path.write_text(readme_example())
    spec = importlib.util.spec_from_file_location("linear_probe", path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    return METHODS.get("linear_probe")


def test_the_readme_method_is_one_file_and_one_registration(linear_probe, toy_root, tmp_path, capsys):
    cfg = RunConfig(method="linear_probe", dataset="toy", epochs=2, batch_size=16).resolved()
    assert (cfg.lr, cfg.milestones, cfg.weight_decay, cfg.alpha) == (0.1, (20, 50, 80), 0.0, 0.0)
    assert label("linear_probe") == "Linear probe" and linear_probe.colour == "tab:olive"

    argv = ["run", "--method", "linear_probe", "--dataset", "toy", "--epochs", "2", "--batch-size", "16",
            "--data-root", str(toy_root), "--results", str(tmp_path / "r"), "--device", "cpu"]
    assert cli.main(argv) == 0
    row = fit(cfg, data_root=toy_root, results=tmp_path / "r", device="cpu")  # found in the store, not retrained
    assert "not recomputed" in capsys.readouterr().out
    assert row["config"]["method"] == "linear_probe" and row["metrics"]["best_val_acc"] >= 0


def test_the_readme_method_starts_from_a_zero_head_on_a_frozen_backbone(linear_probe):
    built, reg = build(RunConfig(method="linear_probe", dataset="toy"), lambda: resnet26(10), 4)
    assert reg is None and [g["name"] for g in built.groups] == ["head"]
    assert built.model.fc.weight.abs().sum() == 0 and built.model.fc.bias.abs().sum() == 0
    assert [n for n, p in built.model.named_parameters() if p.requires_grad] == ["fc.weight", "fc.bias"]


def test_an_unknown_method_names_the_registered_ones():
    with pytest.raises(ConfigError, match="choose one of finetune, l2sp, scratch, feature, spottune, multitune"):
        RunConfig(method="linear_probe", dataset="toy")
