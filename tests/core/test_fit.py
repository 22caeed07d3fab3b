"""`fit`: one configuration through the results store, resumable, never recomputed."""
import dataclasses
import json
import threading
import time

import pytest
import torch

import multitune_lib.core.fit
from multitune_lib import data
from multitune_lib.core.config import RunConfig
from multitune_lib.core.fit import fit, load_splits, with_source
from multitune_lib.core.trainer import Trainer
from multitune_lib.errors import CheckpointError, ConfigError, DataError, RunBusy, TrainingDiverged
from multitune_lib.store.files import sha256
from multitune_lib.store.results import ResultsStore
from multitune_lib.tools.pretrain import pretrain, pretrain_config


class Interrupt(Exception):
    pass


def fit_cpu(cfg, root, results, **kw):
    return fit(cfg, data_root=root, results=results, device="cpu", cache=results / "cache", **kw)


def test_separable_fixture_beats_chance(toy_root, tmp_path):
    cfg = RunConfig(method="finetune", dataset="toy", epochs=4, batch_size=16, lr=0.05, milestones=(3,))
    row = fit_cpu(cfg, toy_root, tmp_path)
    assert row["metrics"]["best_val_acc"] >= 0.75  # chance is 0.25
    assert row["metrics"]["train_images"] == 48 and row["metrics"]["val_images"] == 24


def test_multitune_on_real_5_shot_aircraft_records_its_history(decathlon_root, tmp_path):
    cfg = RunConfig(method="multitune", dataset="aircraft", images_per_class=5, classes=tuple(range(1, 11)), epochs=2)
    row = fit_cpu(cfg, decathlon_root, tmp_path)
    hist = ResultsStore(tmp_path).history()
    assert len(hist) == 2 and hist["epoch"].tolist() == [1, 2]
    assert hist["train_loss"].notna().all() and hist["val_acc"].between(0, 1).all()
    assert {"lr.a", "lr.b", "lr.b_last", "lr.head", "penalty"} <= set(hist.columns)
    assert (hist["lr.b_last"] == 0.01).all()
    m = row["metrics"]
    assert m["train_images"] == 50 and m["val_images"] == 333 and m["num_classes"] == 10
    assert m["train_minutes"] > 0 and m["images_per_s"] > 0
    assert row["env"]["torch"] == torch.__version__ and row["env"]["git_commit"]
    assert row["config"]["milestones"] == [20, 50, 80] and row["config"]["alpha"] == 0.01
    runs = ResultsStore(tmp_path).runs()
    assert len(runs) == 1 and runs.loc[0, "method"] == "multitune"
    assert (tmp_path / "runs.csv").exists() and not (tmp_path / "runs" / row["digest"] / "checkpoint.pt").exists()


def test_interrupted_run_resumes_to_the_same_history(toy_root, tmp_path):
    cfg = RunConfig(method="spottune", dataset="toy", images_per_class=4, epochs=3, batch_size=8)
    whole = fit_cpu(cfg, toy_root, tmp_path / "a")

    def stop_after_first(row):
        if row["epoch"] == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit_cpu(cfg, toy_root, tmp_path / "b", on_epoch=stop_after_first)
    store = ResultsStore(tmp_path / "b")
    assert store.finished(whole["digest"]) is None
    assert (store.run_dir(whole["digest"]) / "checkpoint.pt").exists()
    resumed = fit_cpu(cfg, toy_root, tmp_path / "b")
    a = ResultsStore(tmp_path / "a").history()
    b = store.history()
    cols = ["epoch", "train_loss", "val_acc"] + [c for c in a.columns if c.startswith("usage.")]
    assert a[cols].equals(b[cols])
    assert resumed["metrics"]["best_val_acc"] == whole["metrics"]["best_val_acc"]


def test_a_checkpoint_resumes_only_the_config_that_wrote_it(toy_root, tmp_path):
    cfg = RunConfig(method="finetune", dataset="toy", images_per_class=4, epochs=2, batch_size=8)

    def stop_after_first(row):
        raise Interrupt

    with pytest.raises(Interrupt):
        fit_cpu(cfg, toy_root, tmp_path, on_epoch=stop_after_first)
    store = ResultsStore(tmp_path)
    path = store.run_dir(cfg.digest()) / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    assert state["config"] == cfg.resolved().to_dict()
    state["config"]["ratios"] = [0.5]  # as if a search had found other ratios when the run was set up then
    torch.save(state, path)
    with pytest.raises(ConfigError, match=r"trained another config .*\(ratios differ.*delete checkpoint.pt"):
        fit_cpu(cfg, toy_root, tmp_path)
    del state["config"]  # a checkpoint written before configs were kept resumes as it did
    torch.save(state, path)
    fit_cpu(cfg, toy_root, tmp_path)
    assert store.finished(cfg.digest()) is not None and store.history()["epoch"].tolist() == [1, 2]


def test_same_seed_same_history_and_finished_run_not_recomputed(toy_root, tmp_path, monkeypatch, capsys):
    cfg = RunConfig(method="l2sp", dataset="toy", images_per_class=3, epochs=2, batch_size=6, seed=3)
    first = fit_cpu(cfg, toy_root, tmp_path / "a")
    second = fit_cpu(cfg, toy_root, tmp_path / "b")
    cols = ["epoch", "train_loss", "val_acc", "penalty"]
    assert ResultsStore(tmp_path / "a").history()[cols].equals(ResultsStore(tmp_path / "b").history()[cols])
    assert first["digest"] == second["digest"]

    monkeypatch.setattr(multitune_lib.core.fit, "Trainer", lambda *a, **k: pytest.fail("a finished run was retrained"))
    again = fit_cpu(cfg, toy_root, tmp_path / "a")
    assert again == json.loads((tmp_path / "a" / "runs" / first["digest"] / "run.json").read_text())
    assert "not recomputed" in capsys.readouterr().out


def test_scratch_refuses_a_source(toy_root, tmp_path):
    src = tmp_path / "src.pt"
    pretrain(pretrain_config(dataset="toy", classes="all", epochs=1), out=src, data_root=toy_root,
             results=tmp_path / "r", device="cpu")
    with pytest.raises(ConfigError, match="scratch"):
        fit(RunConfig("scratch", "toy", epochs=1), data_root=toy_root, results=tmp_path / "r2", source=src,
            device="cpu")


def test_eval_every_validates_only_where_asked(toy_root, tmp_path):
    cfg = RunConfig("spottune", "toy", epochs=3, eval_every=2, batch_size=16)
    row = fit(cfg, data_root=toy_root, results=tmp_path, device="cpu", cache=tmp_path / "c")
    h = ResultsStore(tmp_path).history()
    assert h["val_acc"].isna().tolist() == [True, False, False]  # epoch 2, then the last
    assert h["usage.0"].isna().tolist() == [True, False, False]
    assert row["metrics"]["best_epoch"] in (2, 3)


def test_with_source_puts_the_source_digest_into_the_config(tmp_path):
    src = tmp_path / "src.pt"
    src.write_bytes(b"any bytes: only the digest counts here")
    cfg = RunConfig("finetune", "toy")
    assert with_source(cfg, None) is cfg
    sourced = with_source(cfg, src)
    assert sourced.source_sha256 == sha256(src) and sourced.digest() != cfg.digest()
    assert with_source(sourced, src) == sourced
    with pytest.raises(ConfigError, match="sha256"):
        with_source(RunConfig("finetune", "toy", source_sha256="0" * 64), src)
    with pytest.raises(CheckpointError, match="does not exist"):
        with_source(cfg, tmp_path / "missing.pt")


def test_load_splits_draws_the_train_rows_and_keeps_the_whole_val_split(toy_root, tmp_path):
    cfg = RunConfig("finetune", "toy", images_per_class=2, classes="2-3", seed=1)
    train, val = load_splits(cfg, toy_root, cache=tmp_path)
    assert len(train) == 4 and sorted(train.labels.tolist()) == [0, 0, 1, 1] and train.num_classes == 2
    assert len(val) == 12 and val.num_classes == 2
    assert all(f.split("/")[3] in ("0002", "0003") for f in train.files + val.files)


def test_draw_first_n_takes_the_first_files_of_train_and_of_val(toy_root, tmp_path):
    """The released code's few-shot sets: the first N files per class of both splits, so val shrinks too."""
    cfg = RunConfig("finetune", "toy", images_per_class=2, classes="2-3", draw="first_n")
    train, val = load_splits(cfg, toy_root, cache=tmp_path)
    every = data.annotations(toy_root, "toy", "val")
    first = every[every["class_id"].isin([2, 3])].sort_values("file_name").groupby("class_id").head(2)
    assert len(train) == len(val) == 4 and sorted(val.files) == sorted(first["file_name"])
    assert load_splits(dataclasses.replace(cfg, seed=5), toy_root, cache=tmp_path)[0].files == train.files


def test_a_diverged_run_stops_with_an_error_and_is_not_stored_as_finished(toy_root, tmp_path):
    """lr 1e4 used to end with a NaN loss, a run.json and best_val_acc at chance (the argmax of NaN logits)."""
    cfg = RunConfig(method="finetune", dataset="toy", epochs=2, batch_size=8, lr=1e4)
    with pytest.raises(TrainingDiverged, match=r"diverged in epoch 1: train loss nan"):
        fit_cpu(cfg, toy_root, tmp_path)
    store = ResultsStore(tmp_path)
    assert store.finished(cfg.resolved().digest()) is None and not (tmp_path / "runs.csv").exists()


def test_divergence_keeps_the_last_good_checkpoint_to_resume_from(toy_root, tmp_path, monkeypatch):
    cfg = RunConfig(method="feature", dataset="toy", epochs=3, batch_size=8)
    whole = fit_cpu(cfg, toy_root, tmp_path / "whole")
    real = Trainer.train_epoch

    def nan_in_epoch_2(self):
        loss, penalty = real(self)
        return (float("nan"), penalty) if len(self.history) == 1 else (loss, penalty)

    monkeypatch.setattr(Trainer, "train_epoch", nan_in_epoch_2)
    with pytest.raises(TrainingDiverged, match=r"epoch 2.*checkpoint after epoch 1 stays in"):
        fit_cpu(cfg, toy_root, tmp_path / "b")
    store = ResultsStore(tmp_path / "b")
    assert store.finished(whole["digest"]) is None
    assert [h["epoch"] for h in store.load_checkpoint(whole["digest"])["history"]] == [1]
    monkeypatch.setattr(Trainer, "train_epoch", real)  # other settings (here: none) and the run resumes
    resumed = fit_cpu(cfg, toy_root, tmp_path / "b")
    assert resumed["metrics"]["final_val_acc"] == whole["metrics"]["final_val_acc"]


def test_an_unwritable_results_folder_fails_before_any_data_loads(tmp_path):
    (tmp_path / "a-file").write_text("")
    cfg = RunConfig(method="feature", dataset="toy", epochs=1)
    with pytest.raises(ConfigError, match=r"results folder .*a-file/results is not writable"):
        fit(cfg, data_root=tmp_path / "no-data-here", results=tmp_path / "a-file" / "results", device="cpu")


def test_a_run_training_in_another_process_is_refused_or_waited_for(toy_root, tmp_path):
    cfg = RunConfig(method="feature", dataset="toy", epochs=1, batch_size=8)
    store, digest = ResultsStore(tmp_path), cfg.resolved().digest()
    with store.lock(digest):  # flock: a second lock on its own file description, as another process takes it
        with pytest.raises(RunBusy, match=rf"run {digest} is training in another process.*--wait"):
            fit_cpu(cfg, toy_root, tmp_path)
    assert store.finished(digest) is None

    def other_process_trains():
        with store.lock(digest):
            time.sleep(0.5)
            fit_cpu(cfg, toy_root, tmp_path / "elsewhere")
            store.finish(ResultsStore(tmp_path / "elsewhere").finished(digest),
                         ResultsStore(tmp_path / "elsewhere").history().drop(columns="digest").to_dict("records"))

    other = threading.Thread(target=other_process_trains)
    other.start()
    time.sleep(0.1)
    waited = fit_cpu(cfg, toy_root, tmp_path, wait=True)  # blocks on the lock, then finds the run finished
    other.join()
    assert waited["digest"] == digest and not (store.run_dir(digest) / ".lock").exists()


def test_a_few_shot_row_the_data_cannot_meet_is_refused_or_recorded_as_what_it_used(toy_root, tmp_path):
    """The toy train split has 12 images per class: asking 20 used to train on 12 and store images_per_class=20."""
    cfg = RunConfig(method="feature", dataset="toy", images_per_class=20, epochs=1, batch_size=16)
    with pytest.raises(DataError, match=r"toy train .*4 of the 4 kept classes have fewer than the 20 images .*"
                                        r"has 12\).*--allow-fewer"):
        fit_cpu(cfg, toy_root, tmp_path)
    row = fit_cpu(RunConfig(**{**cfg.to_dict(), "allow_fewer": True}), toy_root, tmp_path)
    assert row["metrics"]["min_images_per_class"] == 12 and row["metrics"]["train_images"] == 48
    assert row["config"]["allow_fewer"] is True and row["config"]["images_per_class"] == 20
