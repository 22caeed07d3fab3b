"""The Study: a profile's runs through the results store, and which of them are its main runs."""
import re

import pandas as pd
import pytest

from multitune_lib import paths
from multitune_lib.core.config import RunConfig
from multitune_lib.errors import ConfigError
from multitune_lib.store.files import sha256
from multitune_lib.store.results import ResultsStore
from multitune_lib.study import Study, profiles
from multitune_lib.study import study as study_module
from multitune_lib.tools.pretrain import pretrain, pretrain_config


def test_a_profile_run_uses_the_profile_schedule_and_skips_missing_full_rows(toy_root, tmp_path, monkeypatch):
    src = tmp_path / "src.pt"
    pretrain(pretrain_config(dataset="toy", classes="all", epochs=1), out=src, data_root=toy_root,
             results=tmp_path / "r", device="cpu")
    p = profiles.Profile("tiny", {"toy": None}, full_row=None, few_shot_rows=(2,), epochs=4, needs_source=True,
                         source=src, has_full_rows=False, eval_every=4, scale_schedule=True)
    monkeypatch.setitem(profiles.PROFILES, "tiny", p)
    study = Study("tiny", toy_root, results=tmp_path / "store", device="cpu")
    assert study.run_all(["multitune"], study.profile.full_rows()).empty  # no whole-dataset rows in this profile
    runs = study.run_all(["multitune"], (2,))
    row = ResultsStore(tmp_path / "store").rows()[0]
    assert len(runs) == 1 and row["config"]["milestones"] == [1, 2, 3] and row["config"]["eval_every"] == 4
    assert row["config"]["source_sha256"] and row["tags"]["profile"] == "tiny"


def test_study_seeds():
    assert Study("smoke", results="unused", seeds=[0, 1]).seeds == (0, 1)
    assert Study("smoke", results="unused", seeds=3).seeds == (3,)
    assert Study("offline-cpu", results="unused").seeds == (0, 1)
    with pytest.raises(ConfigError, match="seeds='0 1'"):
        Study("smoke", results="unused", seeds="0 1")


def test_an_eta_sweep_point_equal_to_the_main_setting_is_the_main_run(tmp_path, finish):
    study = Study("smoke", results=tmp_path)
    main = study.config("multitune", "aircraft", 4, 0)
    half = study.config("multitune", "aircraft", 4, 0, eta=0.5)
    quarter = study.config("multitune", "aircraft", 4, 0, eta=0.25)
    assert half.digest() == main.digest() != quarter.digest()
    finish(study, half)
    finish(study, quarter)
    finish(study, study.config("spottune", "aircraft", 6, 1))
    finish(study, study.config("spottune", "aircraft", 6, 1, lr=0.01))
    runs = study.runs().set_index("digest")
    assert runs.loc[main.digest(), "main"] and not runs.loc[quarter.digest(), "main"]
    assert runs.loc[quarter.digest(), "eta"] == 0.25 and runs.loc[main.digest(), "eta"] == 0.5
    spot = runs[runs["method"] == "spottune"]
    assert spot["main"].tolist().count(True) == 1 and spot["full_row"].all()  # 6 is the smoke whole-dataset row
    assert not runs[runs["method"] == "multitune"]["full_row"].any()
    assert set(runs["method_label"]) == {"MultiTune", "SpotTune"}
    assert set(runs["dataset_label"]) == {"Aircraft classes 1-3"}
    assert all(study.is_main(r) == r["main"] for _, r in study.runs().iterrows())
    h = study.history()
    assert len(h) == 4 and h.groupby("digest")["main"].first().to_dict() == runs["main"].to_dict()


def test_runs_elsewhere_are_not_main(tmp_path, finish):
    study = Study("smoke", results=tmp_path)
    finish(study, RunConfig("multitune", "toy", images_per_class=4, epochs=2))  # not one of the profile's datasets
    finish(study, study.config("multitune", "aircraft", 4, 0, source_sha256="ab" * 32))  # another source
    assert not study.runs()["main"].any()


def test_the_committed_offline_cpu_store():
    study = Study("offline-cpu")
    assert study.results == paths.results_dir("offline-cpu") and study.source == paths.default_source()
    runs = study.runs()
    assert len(runs) == 12 and runs["main"].all() and not runs["full_row"].any()
    assert runs["images_per_class"].dtype == pd.Int64Dtype()
    assert sorted(runs["images_per_class"].unique().tolist(), reverse=True) == [15, 10, 5]
    assert runs.groupby(["method", "images_per_class"]).size().eq(2).all()  # seeds 0 and 1
    assert (runs["source_sha256"] == sha256(paths.default_source())).all()
    assert set(runs["method_label"]) == {"SpotTune", "MultiTune"} and set(runs["dataset_label"]) == {"Aircraft"}
    h = study.history()
    assert len(h) == 12 * 15 and h["main"].all()
    assert h.dropna(subset=["val_acc"])["epoch"].eq(15).all()  # validated after the last epoch only
    assert h["val_acc"].notna().sum() == 12


def test_a_profile_that_needs_a_source_refuses_to_run_without_one(tmp_path):
    study = Study("offline-cpu", source=tmp_path / "missing.pt", results=tmp_path)
    with pytest.raises(ConfigError, match="starts from a source checkpoint"):
        study.run("spottune", "aircraft", 5)
    empty = Study("smoke", results=tmp_path / "s").run_all(["spottune"], [])
    assert empty.empty and {"method", "dataset", "images_per_class", "seed", "method_label"} <= set(empty.columns)


def test_a_profile_names_its_backbone_input_size_methods_and_settings(tmp_path, monkeypatch, finish):
    p = profiles.Profile("lite", {"aircraft": None, "cifar100": None}, full_row=None, few_shot_rows=(5,), epochs=3,
                         has_full_rows=("aircraft",), backbone="efficientnet_lite0", input_size=96,
                         methods=("finetune", "spottune"), settings={"finetune": {"lr": 0.02}})
    monkeypatch.setitem(profiles.PROFILES, "lite", p)
    study = Study("lite", results=tmp_path)
    cfg = study.config("finetune", "aircraft", 5)
    assert (cfg.backbone, cfg.input_size, cfg.lr) == ("efficientnet_lite0", 96, 0.02)
    assert study.config("finetune", "aircraft", 5, lr=0.3).lr == 0.3 and study.config("spottune", "aircraft", 5).lr is None
    assert study.methods == ["finetune", "spottune"]
    plan = study.planned()
    assert sorted(set(zip(plan["dataset"], plan["images_per_class"].fillna(0)))) == [("aircraft", 0), ("aircraft", 5),
                                                                                     ("cifar100", 5)]
    assert len(plan) == 6 and not plan["done"].any()
    finish(study, plan["config"][0])
    assert study.planned()["done"].tolist().count(True) == 1


def test_the_imagenet_profiles(monkeypatch):
    cpu, gpu = profiles.get("imagenet-cpu"), profiles.get("imagenet")
    assert cpu.backbone == gpu.backbone == "efficientnet_lite0" and len(cpu.seeds) >= 3
    assert set(cpu.methods) == {"finetune", "l2sp", "feature", "spottune", "multitune", "amf", "contribution",
                                "selective_joint"}
    ours = Study("imagenet-cpu", results="unused").config("contribution", "aircraft", 20, 0).resolved()
    assert (ours.lr, ours.milestones, ours.epochs) == (0.1, (8, 12), 15)  # fine-tuning's schedule on this profile
    assert cpu.few_shot_rows == (20, 15, 10, 5) and set(cpu.datasets) == {"aircraft", "cifar100"}
    assert cpu.classes("cifar100") is None  # all 100 classes: the ImageNet source never saw CIFAR
    assert cpu.source_path().name == "efficientnet-lite0-57934424.pth"
    assert cpu.has_row("aircraft", None) and gpu.has_row("cifar100", None) and gpu.epochs == 110
    monkeypatch.setattr(profiles.torch.cuda, "is_available", lambda: False)
    assert profiles.get("auto").name == "imagenet-cpu"


def test_both_imagenet_profiles_route_residual_units_and_the_gpu_one_validates_the_whole_split_at_each_lr_step():
    cpu, gpu = Study("imagenet-cpu", results="unused"), Study("imagenet", results="unused")
    spot = gpu.config("spottune", "cifar100", 5, 0).resolved()
    assert (spot.epochs, spot.milestones, spot.route, spot.eval_every, spot.curve_val_images) == (
        110, (40, 60, 80), "residual", 5, 1000)
    assert spot.validated_on_whole() == {40, 60, 80, 110} and len(spot.validated()) == 22
    assert gpu.config("multitune", "aircraft", 5, 0).resolved().validated_on_whole() == {20, 50, 80, 110}
    short = cpu.config("spottune", "cifar100", 5, 0).resolved()
    assert (short.route, short.whole_val, short.validated_on_whole()) == ("residual", None, {15})


def test_a_selection_names_what_the_profile_has_and_refuses_the_rest(monkeypatch):
    p = profiles.Profile("x", {"a": None, "b": None}, None, (5, 2), 1, has_full_rows=("a",), methods=("finetune",))
    monkeypatch.setitem(profiles.PROFILES, "x", p)
    study = Study("x", results="unused")
    assert study.selection() == {"datasets": ["a", "b"], "rows": [None, 5, 2], "methods": ["finetune"]}
    assert study.selection(["b"], ["2", 5, "2"], []) == {"datasets": ["b"], "rows": [2, 5], "methods": ["finetune"]}
    assert study.selection(None, ["all"])["rows"] == [None]
    for args, message in [((["c"],), "dataset 'c' is not one of the x profile's datasets: a, b"),
                          ((None, ["3"]), "row '3' is not one of the x profile's rows: all, 5, 2"),
                          ((None, None, ["amf"]), "method 'amf' is not one of the x profile's methods: finetune"),
                          ((["b"], ["all"]), "no run of the x profile is on the rows selected (datasets b; rows all); "
                                             "its rows per dataset: a all, 5, 2; b 5, 2")]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            study.selection(*args)
    assert len(study.planned(**study.selection(["a"], ["all", "5"]))) == 2


def test_read_only_reads_the_store_trains_nothing_and_counts_what_it_lacks(tmp_path, finish, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("a read-only study trained")
    monkeypatch.setattr(study_module, "fit", no_training)
    study = Study("smoke", results=tmp_path, train=False)
    finish(study, study.config("spottune", "aircraft", 6, 0), acc=0.4)
    assert study.run("spottune", "cifar100", 6) is None
    runs = study.run_all(["spottune", "multitune"], [6])  # both smoke datasets have the row of 6
    assert runs[["method", "dataset", "final_val_acc"]].values.tolist() == [["spottune", "aircraft", 0.4]]
    # SpotTune on cifar100 was asked for twice, by run and by run_all: one run lacking, counted once
    assert study.tally() == ("1 run found in the store, 0 trained; not in the store and not trained (train=False): "
                             "MultiTune 2, SpotTune 1")
    assert study.tally() == "0 runs found in the store, 0 trained"  # each tally counts afresh


def test_a_training_study_trains_only_what_the_store_lacks(tmp_path, finish, monkeypatch):
    trained = []

    def fit(cfg, **kwargs):
        trained.append(cfg.digest())
        return {"digest": cfg.digest(), "config": cfg.resolved().to_dict(), "metrics": {"final_val_acc": 0.3}}
    monkeypatch.setattr(study_module, "fit", fit)
    study = Study("smoke", results=tmp_path)
    found = finish(study, study.config("spottune", "aircraft", 6, 0))
    assert study.run("spottune", "aircraft", 6)["digest"] == found and not trained
    assert study.run("spottune", "aircraft", 4)["digest"] == trained[0]
    assert trained == [study.config("spottune", "aircraft", 4).digest()]
    dry = study.read_only()
    assert dry.run("multitune", "aircraft", 4) is None and not dry.train and study.train
    assert dry.tally().endswith("(train=False): MultiTune 1")
    assert study.tally() == "1 run found in the store, 1 trained"  # the read-only copy counts on its own
