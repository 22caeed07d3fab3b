"""Study profiles: what each notebook trains."""
import pytest
import torch

from multitune_lib import paths
from multitune_lib.errors import ConfigError
from multitune_lib.study import profiles


def test_offline_profiles():
    off, cpu = profiles.get("offline"), profiles.get("offline-cpu")
    assert off.source == paths.default_source() and off.classes("cifar100") == tuple(range(51, 101))
    assert off.label("cifar100") == "CIFAR100 classes 51-100" and not off.paper_comparable
    assert off.milestones((20, 50, 80)) is None  # 110 epochs: the paper's own
    assert cpu.milestones((20, 50, 80)) == (3, 7, 11) and cpu.milestones((40, 60, 80)) == (5, 8, 11)


def test_rows_are_the_whole_dataset_then_fewer_images():
    smoke, paper, cpu = profiles.get("smoke"), profiles.get("paper"), profiles.get("offline-cpu")
    assert smoke.full_rows() == [6] and smoke.rows() == [6, 4, 2]
    assert paper.full_rows() == [None] and paper.rows() == [None, 20, 15, 10, 5]
    assert cpu.full_rows() == [] and cpu.rows() == [15, 10, 5] and not cpu.has_full_rows
    assert smoke.stats_classes("aircraft") is None and cpu.stats_classes("aircraft") is None
    assert profiles.Profile("x", {"a": (1, 2)}, None, (2,), 1).stats_classes("a") == (1, 2)


def test_whole_dataset_rows_for_some_datasets_only():
    p = profiles.Profile("x", {"a": None, "b": None}, None, (5,), 1, has_full_rows=("a",))
    assert p.rows() == [None, 5] and p.has_row("a", None) and not p.has_row("b", None) and p.has_row("b", 5)
    assert not profiles.get("offline-cpu").has_row("aircraft", None) and profiles.get("paper").has_row("cifar100", None)
    assert not p.has_row("a", 7)


def test_profile_by_name_environment_or_default(monkeypatch):
    monkeypatch.delenv("MULTITUNE_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert profiles.get().name == "imagenet-cpu"  # auto on a CPU
    monkeypatch.setenv("MULTITUNE_PROFILE", "paper")
    assert profiles.get().name == "paper" and profiles.get("offline").name == "offline"
    with pytest.raises(ConfigError, match="unknown profile 'nosuch': choose one of smoke, paper, offline"):
        profiles.get("nosuch")
