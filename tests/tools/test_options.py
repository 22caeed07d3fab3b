"""Command-line options derived from RunConfig: one per field, with its default, help and choices."""
import argparse
import dataclasses
import subprocess
import sys

import pytest

from multitune_lib.core.config import RunConfig
from multitune_lib.core.registry import BACKBONES, METHODS
from multitune_lib.tools.options import add_config_args, add_exec_args, config_from_args, method_defaults

CLI_FIELDS = [f for f in dataclasses.fields(RunConfig) if f.metadata.get("cli", True) is not False]


def parser():
    p = argparse.ArgumentParser()
    names = add_config_args(p)
    add_exec_args(p)
    return p, names


def test_every_cli_field_has_an_option_with_the_fields_default():
    p, names = parser()
    assert names == [f.name for f in CLI_FIELDS]
    assert "source_sha256" not in names and "extra" not in names and {"method", "dataset", "backbone"} <= set(names)
    actions = {a.dest: a for a in p._actions}
    for f in CLI_FIELDS:
        action = actions[f.name]
        assert action.option_strings[0] == "--" + f.name.replace("_", "-")  # (bool | None: also --no-NAME)
        assert action.help.startswith(f.metadata["help"])
        if f.default is dataclasses.MISSING:
            assert action.required and action.default is None
        else:
            assert action.default == f.default and not action.required, f.name
    assert actions["method"].choices == METHODS.names() and actions["backbone"].choices == BACKBONES.names()
    assert actions["reinit"].choices == ["block", "stage"]
    assert actions["milestones"].nargs == "+" and actions["classes"].type is str and actions["eta"].type is float


def test_overridden_defaults_and_a_subset_of_fields():
    p = argparse.ArgumentParser()
    names = add_config_args(p, ("dataset", "epochs", "classes"), {"epochs": 7})
    assert names == ["dataset", "classes", "epochs"]
    a = p.parse_args(["--dataset", "toy"])
    assert (a.dataset, a.epochs, a.classes) == ("toy", 7, None)


def test_config_from_args_round_trips():
    p, names = parser()
    cfg = RunConfig(method="multitune", dataset="cifar100", images_per_class=5, classes="51-60", seed=2, epochs=3,
                    batch_size=16, lr=0.05, lr_last=0.001, milestones=(1, 2), eta=0.25, reinit="stage",
                    sample_eval=True, weight_decay=0.0)
    argv = ["--method", "multitune", "--dataset", "cifar100", "--images-per-class", "5", "--classes", "51-60",
            "--seed", "2", "--epochs", "3", "--batch-size", "16", "--lr", "0.05", "--lr-last", "0.001",
            "--milestones", "1", "2", "--eta", "0.25", "--reinit", "stage", "--sample-eval", "--weight-decay", "0"]
    got = config_from_args(p.parse_args(argv), names)
    assert got == cfg and got.digest() == cfg.digest()
    plain = config_from_args(p.parse_args(["--method", "spottune", "--dataset", "aircraft"]), names)
    assert plain == RunConfig(method="spottune", dataset="aircraft")
    with pytest.raises(SystemExit):
        p.parse_args(["--method", "nosuch", "--dataset", "aircraft"])


def test_run_help_lists_the_registered_choices():
    out = subprocess.run([sys.executable, "-m", "multitune_lib", "run", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    assert "{" + ",".join(METHODS.names()) + "}" in text and "{" + ",".join(BACKBONES.names()) + "}" in text
    assert "--images-per-class" in text and "--shots" not in text
    for f in CLI_FIELDS:
        assert " ".join(f.metadata["help"].split())[:30] in text, f.name
    assert "(default: 110)" in text and "(default: resnet26)" in text


def test_a_switch_the_protocol_may_set_can_be_turned_off_on_the_command_line():
    p = argparse.ArgumentParser()
    names = add_config_args(p, ["method", "dataset", "protocol", "sample_eval"])
    cfg = lambda *args: config_from_args(p.parse_args(["--method", "spottune", "--dataset", "aircraft", *args]),  # noqa
                                         names).resolved()
    assert cfg("--protocol", "released").sample_eval is True
    assert cfg("--protocol", "released", "--no-sample-eval").sample_eval is False
    assert cfg().sample_eval is False and cfg("--sample-eval").sample_eval is True


def test_a_field_the_methods_fill_names_their_registered_defaults_in_its_help():
    assert method_defaults("lr", ["finetune", "spottune", "multitune"]) == " (default: 0.1)"  # every one's
    assert method_defaults("lr") == " (default by method: 0.01 for contribution, else 0.1)"
    spottune, other = METHODS.get("spottune").defaults["milestones"], METHODS.get("multitune").defaults["milestones"]
    contribution = " ".join(map(str, METHODS.get("contribution").defaults["milestones"]))
    assert method_defaults("milestones") == (f" (default by method: {' '.join(map(str, spottune))} for spottune; "
                                             f"{contribution} for contribution, else {' '.join(map(str, other))})")
    assert method_defaults("lr_last") == " (default by method: 0.01 for multitune, amf)"  # only where one sets it
    assert method_defaults("milestones", ["spottune"]) == " (default: 40 60 80)" and method_defaults("classes") == ""
    p = argparse.ArgumentParser()
    add_config_args(p, ["lr", "epochs"], {"lr": None}, methods=["scratch"])
    helps = {a.dest: a.help for a in p._actions}
    assert helps["lr"] == "learning rate" and helps["epochs"] == "training epochs"  # the caller's default: no note
