import json

import pytest
import torch
import torch.nn.functional as F

from multitune_lib import methods, train
from multitune_lib.config import RunConfig
from multitune_lib.models import resnet26
from multitune_lib.results import ResultsStore


class Interrupt(Exception):
    pass


def fit(cfg, root, results, **kw):
    return train.run(cfg, data_root=root, results=results, device="cpu", cache=results / "cache", **kw)


def test_loss_falls_when_one_batch_is_fitted_repeatedly():
    torch.manual_seed(0)
    built, reg = methods.build(RunConfig(method="l2sp", dataset="aircraft", lr=0.05), lambda: resnet26(4), 4)
    opt = torch.optim.SGD(built.groups, lr=0.05, momentum=0.9)
    x, y = torch.randn(16, 3, 64, 64), torch.arange(16) % 4
    losses = []
    for _ in range(15):
        loss = F.cross_entropy(built.model(x), y) + reg()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_separable_fixture_beats_chance(toy_root, tmp_path):
    cfg = RunConfig(method="finetune", dataset="toy", epochs=4, batch_size=16, lr=0.05, milestones=(3,))
    row = fit(cfg, toy_root, tmp_path)
    assert row["metrics"]["best_val_acc"] >= 0.75  # chance is 0.25
    assert row["metrics"]["train_images"] == 48 and row["metrics"]["val_images"] == 24


def test_multitune_on_real_5_shot_aircraft_records_its_history(decathlon_root, tmp_path):
    cfg = RunConfig(method="multitune", dataset="aircraft", shots=5, classes=tuple(range(1, 11)), epochs=2)
    row = fit(cfg, decathlon_root, tmp_path)
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
    cfg = RunConfig(method="spottune", dataset="toy", shots=4, epochs=3, batch_size=8)
    whole = fit(cfg, toy_root, tmp_path / "a")

    def stop_after_first(row):
        if row["epoch"] == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(cfg, toy_root, tmp_path / "b", on_epoch=stop_after_first)
    store = ResultsStore(tmp_path / "b")
    assert store.finished(whole["digest"]) is None
    assert (store.run_dir(whole["digest"]) / "checkpoint.pt").exists()
    resumed = fit(cfg, toy_root, tmp_path / "b")
    a = ResultsStore(tmp_path / "a").history()
    b = store.history()
    cols = ["epoch", "train_loss", "val_acc"] + [c for c in a.columns if c.startswith("usage.")]
    assert a[cols].equals(b[cols])
    assert resumed["metrics"]["best_val_acc"] == whole["metrics"]["best_val_acc"]


def test_same_seed_same_history_and_finished_run_not_recomputed(toy_root, tmp_path, monkeypatch, capsys):
    cfg = RunConfig(method="l2sp", dataset="toy", shots=3, epochs=2, batch_size=6, seed=3)
    first = fit(cfg, toy_root, tmp_path / "a")
    second = fit(cfg, toy_root, tmp_path / "b")
    cols = ["epoch", "train_loss", "val_acc", "penalty"]
    assert ResultsStore(tmp_path / "a").history()[cols].equals(ResultsStore(tmp_path / "b").history()[cols])
    assert first["digest"] == second["digest"]

    monkeypatch.setattr(train.methods, "build", lambda *a, **k: pytest.fail("a finished run was retrained"))
    again = fit(cfg, toy_root, tmp_path / "a")
    assert again == json.loads((tmp_path / "a" / "runs" / first["digest"] / "run.json").read_text())
    assert "not recomputed" in capsys.readouterr().out


def test_config_hash_tells_settings_apart():
    a = RunConfig(method="multitune", dataset="aircraft")
    assert a.digest() == RunConfig(method="multitune", dataset="aircraft", lr=0.1, milestones=(20, 50, 80)).digest()
    assert a.digest() != RunConfig(method="multitune", dataset="aircraft", shots=5).digest()
    assert a.digest() != RunConfig(method="multitune", dataset="aircraft", source_sha256="ab").digest()
    assert RunConfig(method="spottune", dataset="cifar100").resolved().weight_decay == 0.0
    assert RunConfig(method="spottune", dataset="aircraft").resolved().weight_decay == 5e-4
    assert RunConfig.from_dict(a.resolved().to_dict()).digest() == a.digest()


def test_merge_is_idempotent(toy_root, tmp_path):
    cfg = RunConfig(method="feature", dataset="toy", shots=2, epochs=1, batch_size=8)
    row = fit(cfg, toy_root, tmp_path / "gpu")
    local = ResultsStore(tmp_path / "local")
    assert local.merge(tmp_path / "gpu") == [row["digest"]]
    before = (tmp_path / "local" / "runs.csv").read_text()
    assert local.merge(tmp_path / "gpu") == []
    assert (tmp_path / "local" / "runs.csv").read_text() == before
    assert len(local.runs()) == 1
