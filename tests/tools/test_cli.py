"""The command line: one entry point, user errors as one line and exit status 2."""
import argparse
import os
import re
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest
import torch

from multitune_lib import paths
from multitune_lib.core.config import RunConfig
from multitune_lib.core.fit import fit
from multitune_lib.store.results import ResultsStore
from multitune_lib.study import profiles
from multitune_lib.tools import cli as cli_module
from multitune_lib.tools.cli import parse_value


def cli(*args, module="multitune_lib"):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120)


def test_cli_help_explains_every_option():
    out = cli("run", "--help")
    assert out.returncode == 0
    for option in ("--method", "--dataset", "--images-per-class", "--classes", "--epochs", "--seed", "--source",
                   "--eta", "--lr-last", "--milestones", "--alpha", "--beta", "--device", "--precision"):
        assert option in out.stdout
    assert cli("data", "install", "--help").returncode == 0
    assert "reference" in cli("bench", "--help").stdout


def test_version_is_the_one_pyproject_declares():
    version = tomllib.loads((paths.project_root() / "pyproject.toml").read_text())["project"]["version"]
    out = cli("--version")
    assert out.returncode == 0 and out.stdout.split() == ["python", "-m", "multitune_lib", version]


def subcommand_parsers(parser=None, name="python -m multitune_lib"):
    """(name, parser) of the command line and of every subcommand, nested ones (data install) included."""
    parser = parser or cli_module.parser()
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, p in action.choices.items():
                yield from subcommand_parsers(p, f"{name} {sub}")


def test_help_shows_each_default_once_and_no_folder_of_this_machine():
    helps = {name.removeprefix("python -m multitune_lib").strip(): p.format_help() for name, p in subcommand_parsers()}
    assert {"", "run", "study", "plan", "report", "data install", "data pack", "results merge"} <= set(helps)
    for name, text in helps.items():
        for folder in {str(Path.cwd()), str(Path.home()), str(paths.project_root())}:
            assert folder not in text, f"`{name} --help` prints {folder}"
        for option in re.split(r"\n  (?=-)", text):
            assert option.count("(default") <= 1, f"`{name} --help`: {option}"
    pretrain = " ".join(helps["pretrain"].split())
    assert "(default: data/pretrained/resnet26_cifar100_1-50.pt in the project)" in pretrain


@pytest.mark.parametrize("environment, cuda, expected", [(None, False, "imagenet-cpu"), (None, True, "imagenet"),
                                                         ("smoke", True, "smoke")])
def test_study_and_plan_default_to_auto_unless_the_environment_names_a_profile(environment, cuda, expected,
                                                                              monkeypatch, tmp_path):
    if environment:
        monkeypatch.setenv("MULTITUNE_PROFILE", environment)
    else:
        monkeypatch.delenv("MULTITUNE_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    ran = []
    monkeypatch.setattr(cli_module, "run_notebooks", lambda profile, params, only: ran.append(profile) or tmp_path)
    monkeypatch.setattr(cli_module.plan, "main", lambda profile, *a, **kw: ran.append(profiles.get(profile).name))
    assert cli_module.main(["study", "--only", "00"]) == 0 and cli_module.main(["plan"]) == 0
    assert ran == [expected, expected]


def test_cli_bad_input_is_one_clear_line(tmp_path):
    out = cli("run", "--method", "multitune", "--dataset", "aircraft", "--data-root", str(tmp_path / "none"),
              "--results", str(tmp_path / "r"), "--epochs", "1")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "does not exist" in out.stderr and "data install" in out.stderr
    out = cli("run", "--method", "multitune", "--dataset", "aircraft", "--source", str(tmp_path / "x.t7"))
    assert out.returncode == 2 and "resnet26_pretrained.t7" in out.stderr and "Traceback" not in out.stderr
    out = cli("data", "install", "--from", str(tmp_path))
    assert out.returncode == 2 and "decathlon-1.0-devkit.tar.gz" in out.stderr


@pytest.mark.parametrize("module, args", [("multitune_lib", ["study"]), ("multitune_lib.study", [])],
                         ids=["multitune_lib study", "multitune_lib.study"])
def test_an_unknown_profile_is_one_error_line_and_exit_2(module, args):
    out = cli(*args, "--profile", "nosuch", module=module)
    assert out.returncode == 2
    assert out.stderr.splitlines() == [out.stderr.strip()] and out.stderr.startswith("error: ")
    assert "unknown profile 'nosuch'" in out.stderr and "Traceback" not in out.stderr
    assert all(name in out.stderr for name in profiles.PROFILES)


def test_config_errors_exit_2_in_process(capsys):
    assert cli_module.main(["run", "--method", "finetune", "--dataset", "aircraft", "--crop", "36"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "multiple of 8" in err
    assert cli_module.main(["study", "--profile", "smoke", "--train-only", "-p", "seeds", "'0 1'"]) == 2
    assert "seeds='0 1'" in capsys.readouterr().err


def test_merge_from_the_command_line_is_idempotent(toy_root, tmp_path, capsys):
    cfg = RunConfig("feature", "toy", epochs=1)
    fit(cfg, data_root=toy_root, results=tmp_path / "gpu", device="cpu", cache=tmp_path / "c")
    argv = ["results", "merge", str(tmp_path / "gpu"), "--into", str(tmp_path / "local")]
    assert cli_module.main(argv) == 0 and "1 new runs" in capsys.readouterr().out
    before = sorted(p.stat().st_mtime_ns for p in (tmp_path / "local").rglob("*") if p.is_file())
    assert cli_module.main(argv) == 0 and "0 new runs" in capsys.readouterr().out
    assert sorted(p.stat().st_mtime_ns for p in (tmp_path / "local").rglob("*") if p.is_file()) == before
    with tarfile.open(tmp_path / "gpu.tgz", "w:gz") as tar:
        tar.add(tmp_path / "gpu", arcname="results/offline")
    argv = ["results", "merge", str(tmp_path / "gpu.tgz"), "--into", str(tmp_path / "fromtar")]
    assert cli_module.main(argv) == 0 and "1 new runs" in capsys.readouterr().out
    assert ResultsStore(tmp_path / "fromtar").runs().equals(ResultsStore(tmp_path / "local").runs())
    assert cli_module.main(["results", "merge", str(tmp_path), "--into", str(tmp_path / "x")]) == 2
    assert "is not a results store" in capsys.readouterr().err


def test_study_parameters_from_the_command_line():
    assert parse_value("[0, 1]") == [0, 1] and parse_value("0.01") == 0.01 and parse_value("None") is None
    assert parse_value("cuda") == "cuda" and parse_value("/data/decathlon-1.0") == "/data/decathlon-1.0"


def test_run_trains_one_configuration(toy_root, tmp_path, capsys):
    argv = ["run", "--method", "finetune", "--dataset", "toy", "--images-per-class", "2", "--epochs", "1",
            "--batch-size", "8", "--crop", "16", "--data-root", str(toy_root), "--results", str(tmp_path),
            "--device", "cpu", "--precision", "fp32"]
    assert cli_module.main(argv) == 0
    out = capsys.readouterr().out
    row = ResultsStore(tmp_path).rows()[0]
    assert row["digest"] in out and row["config"]["images_per_class"] == 2 and row["config"]["crop"] == 16
    assert row["metrics"]["train_images"] == 8 and row["metrics"]["precision"] == "float32"


def test_study_train_only_runs_the_compared_methods_on_every_row(toy_root, tmp_path, monkeypatch, capsys):
    p = profiles.Profile("tiny", {"toy": (1, 2)}, full_row=None, few_shot_rows=(1,), epochs=1, has_full_rows=False)
    monkeypatch.setitem(profiles.PROFILES, "tiny", p)
    argv = ["study", "--profile", "tiny", "--train-only", "-p", "data_root", str(toy_root), "-p", "device", "cpu",
            "-p", "results", str(tmp_path / "store"), "-p", "seeds", "[0, 1]"]
    assert cli_module.main(argv) == 0
    rows = ResultsStore(tmp_path / "store").runs()
    assert sorted(zip(rows["method"], rows["seed"])) == [("multitune", 0), ("multitune", 1), ("spottune", 0),
                                                         ("spottune", 1)]
    assert (rows["images_per_class"] == 1).all() and "MultiTune" in capsys.readouterr().out


def test_study_train_only_trains_the_rows_and_methods_selected(toy_root, tmp_path, monkeypatch, capsys):
    p = profiles.Profile("tiny", {"toy": (1, 2)}, full_row=None, few_shot_rows=(2, 1), epochs=1, has_full_rows=False,
                         methods=("feature", "finetune"))
    monkeypatch.setitem(profiles.PROFILES, "tiny", p)
    argv = ["study", "--profile", "tiny", "--train-only", "--rows", "1", "--methods", "feature", "-p", "data_root",
            str(toy_root), "-p", "device", "cpu", "-p", "results", str(tmp_path / "store"), "-p", "seeds", "[0, 1]"]
    assert cli_module.main(argv) == 0
    rows = ResultsStore(tmp_path / "store").runs()
    assert sorted(zip(rows["method"], rows["images_per_class"], rows["seed"])) == [("feature", 1, 0), ("feature", 1, 1)]
    for extra, message in [(["--rows", "3"], "row '3' is not one of the tiny profile's rows: 2, 1"),
                           (["--methods", "amf"], "method 'amf' is not one of the tiny profile's methods: feature, "
                                                  "finetune")]:
        capsys.readouterr()
        assert cli_module.main([*argv[:4], *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert cli_module.main(["study", "--profile", "tiny", "--rows", "1"]) == 2
    assert "--rows and --methods choose what --train-only trains" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["-p", "lr", "-1"], "-p lr: the notebooks take no such parameter; they take ablation, data_root, device"),
    (["--profile", "smoke", "-p", "profile", "offline-cpu", "--only", "04"], "-p profile contradicts --profile"),
    (["--profile", "smoke", "-p", "seeds", "1.5"], "seeds=1.5: give an int or a list of ints"),
    (["--profile", "nosuch"], "unknown profile 'nosuch'"),
])
def test_study_refuses_what_the_notebooks_would_not_take_before_running_any(argv, message, monkeypatch, capsys):
    monkeypatch.setattr(cli_module, "run_notebooks", lambda *a: pytest.fail("a notebook ran"))
    assert cli_module.main(["study", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_study_takes_the_profile_from_p_when_no_profile_option_names_one(monkeypatch, tmp_path, capsys):
    ran = []
    monkeypatch.setattr(cli_module, "run_notebooks", lambda profile, params, only: ran.append(profile) or tmp_path)
    assert cli_module.main(["study", "-p", "profile", "offline-cpu", "--only", "00"]) == 0
    assert ran == ["offline-cpu"]


def test_study_no_train_runs_the_notebooks_read_only(monkeypatch, tmp_path, capsys):
    ran = []
    monkeypatch.setattr(cli_module, "run_notebooks", lambda profile, params, only: ran.append(params) or tmp_path)
    assert cli_module.main(["study", "--profile", "smoke", "--no-train", "--only", "04"]) == 0
    assert ran == [{"train": False}]
    assert cli_module.main(["study", "--profile", "smoke", "--no-train", "--train-only"]) == 2
    assert "--no-train reads the results store only" in capsys.readouterr().err and len(ran) == 1


def test_study_prints_only_the_paths_it_wrote(monkeypatch, tmp_path, capsys):
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "old.png").write_text("from an earlier run")
    os.utime(figures / "old.png", (0, 0))
    monkeypatch.setenv("MULTITUNE_FIGURES", str(figures))

    def notebooks_write_one(profile, params, only):
        (figures / "table3.md").write_text("new")
        return tmp_path / "executed"

    monkeypatch.setattr(cli_module, "run_notebooks", notebooks_write_one)
    assert cli_module.main(["study", "--profile", "smoke", "--only", "04"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {figures / 'table3.md'}" in out and "old.png" not in out and "fig2" not in out


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_merging_a_bad_tarball_is_one_error_line(kind, tmp_path, capsys):
    store = ResultsStore(tmp_path / "gpu")
    cfg = RunConfig("feature", "toy", epochs=1)
    store.finish({"digest": cfg.digest(), "config": cfg.to_dict(), "metrics": {}, "env": {}, "source": None,
                  "tags": {}, "finished_at": "x"}, [{"epoch": 1}])
    (store.root / "padding.bin").write_bytes(os.urandom(200_000))
    with tarfile.open(tmp_path / "gpu.tgz", "w:gz") as tar:
        tar.add(store.root, arcname="offline")
    data = (tmp_path / "gpu.tgz").read_bytes()
    bad = tmp_path / "bad.tgz"
    bad.write_bytes(os.urandom(5000) if kind == "garbage" else data[: len(data) // 2])
    assert cli_module.main(["results", "merge", str(bad), "--into", str(tmp_path / "local")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad} is not a readable tarball") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "local" / "runs.csv").exists()
