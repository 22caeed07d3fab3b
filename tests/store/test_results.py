"""The results store: one folder per run named by its config hash, tables of all finished runs, merging."""
import json
import pathlib

import pandas as pd
import pytest
import torch
from filelock import FileLock

from multitune_lib import paths
from multitune_lib.core.config import RunConfig
from multitune_lib.core.fit import fit
from multitune_lib.errors import CheckpointError, RunBusy, StoreError
from multitune_lib.store.results import ResultsStore, read_row

ENV = {"device": "cpu", "device_name": "test", "torch": "x"}


def fake_row(cfg: RunConfig, acc: float = 0.5) -> dict:
    return {"digest": cfg.digest(), "config": cfg.resolved().to_dict(), "metrics": {"final_val_acc": acc},
            "env": ENV, "source": None, "tags": {}, "finished_at": "2026-01-01T00:00:00+00:00"}


def fake_history(epochs: int = 2) -> list[dict]:
    return [{"epoch": e, "train_loss": 1.0 / e, "val_acc": 0.1 * e} for e in range(1, epochs + 1)]


def test_merge_is_idempotent(toy_root, tmp_path):
    cfg = RunConfig(method="feature", dataset="toy", images_per_class=2, epochs=1, batch_size=8)
    row = fit(cfg, data_root=toy_root, results=tmp_path / "gpu", device="cpu", cache=tmp_path / "gpu" / "cache")
    local = ResultsStore(tmp_path / "local")
    assert local.merge(tmp_path / "gpu") == [row["digest"]]
    before = (tmp_path / "local" / "runs.csv").read_text()
    assert local.merge(tmp_path / "gpu") == []
    assert (tmp_path / "local" / "runs.csv").read_text() == before
    assert len(local.runs()) == 1


def test_finish_writes_the_run_and_rebuilds_the_tables(tmp_path):
    store = ResultsStore(tmp_path)
    assert store.rows() == [] and store.runs().empty and store.history().empty
    a, b = RunConfig("finetune", "toy", seed=0), RunConfig("spottune", "toy", images_per_class=3)
    store.save_checkpoint(a.digest(), {"epoch": 1})
    assert store.load_checkpoint(a.digest()) == {"epoch": 1} and store.finished(a.digest()) is None
    store.finish(fake_row(a, 0.25), fake_history(2), weights={"w": torch.ones(2)})
    store.finish(fake_row(b, 0.75), fake_history(3))
    assert store.finished(a.digest()) == fake_row(a, 0.25)
    assert not (store.run_dir(a.digest()) / "checkpoint.pt").exists() and store.load_checkpoint(a.digest()) is None
    assert torch.equal(store.weights(a.digest())["w"], torch.ones(2))
    with pytest.raises(FileNotFoundError, match="keep_weights=True"):
        store.weights(b.digest())
    assert [r["digest"] for r in store.rows()] == sorted([a.digest(), b.digest()])
    runs = store.runs().set_index("digest")
    assert runs.loc[b.digest(), "method"] == "spottune" and runs.loc[b.digest(), "images_per_class"] == 3
    assert runs.loc[a.digest(), "final_val_acc"] == 0.25 and runs.loc[a.digest(), "env.device_name"] == "test"
    h = store.history()
    assert len(h) == 5 and h.groupby("digest").size().to_dict() == {a.digest(): 2, b.digest(): 3}
    # the exported tables are what the store reads
    assert (tmp_path / "runs.csv").read_text() == store.runs().to_csv(index=False)
    assert (tmp_path / "history.csv").read_text() == store.history().to_csv(index=False)


def test_exported_history_header_does_not_depend_on_which_run_sorts_first(tmp_path):
    """A run with extra columns (a method's own learning rates) whose digest sorts first must not reorder the header."""
    plain = [{"epoch": 1, "val_acc": 0.1, "lr.net": 0.01}]
    routed = [{"epoch": 1, "val_acc": 0.2, "lr.net": 0.01, "lr.policy": 0.1, "usage.0": 0.5}]
    a, b = sorted((RunConfig("finetune", "toy", seed=s) for s in range(2)), key=RunConfig.digest)
    headers = []
    for first, second in ((plain, routed), (routed, plain)):
        store = ResultsStore(tmp_path / str(len(headers)))
        store.finish(fake_row(a), first)
        store.finish(fake_row(b), second)
        headers.append((tmp_path / str(len(headers)) / "history.csv").read_text().splitlines()[0])
    assert headers[0] == headers[1] == "digest,epoch,val_acc,lr.net,lr.policy,usage.0"


def test_merge_copies_finished_runs_only_and_keeps_what_is_here(tmp_path):
    there, here = ResultsStore(tmp_path / "there"), ResultsStore(tmp_path / "here")
    a, b, c = (RunConfig("finetune", "toy", seed=s) for s in (0, 1, 2))
    there.finish(fake_row(a, 0.1), fake_history())
    there.finish(fake_row(b, 0.2), fake_history())
    there.save_checkpoint(c.digest(), {"unfinished": True})
    here.finish(fake_row(a, 0.9), fake_history())  # the same run, already here: left as it is
    here.save_checkpoint(b.digest(), {"local attempt": True})
    assert here.merge(there.root) == [b.digest()]
    assert here.finished(a.digest())["metrics"]["final_val_acc"] == 0.9
    assert here.finished(b.digest())["metrics"]["final_val_acc"] == 0.2
    assert not (here.run_dir(b.digest()) / "checkpoint.pt").exists() and here.finished(c.digest()) is None
    assert len(pd.read_csv(tmp_path / "here" / "runs.csv")) == 2
    assert here.merge(there.root) == []


def test_read_row_upgrades_the_legacy_shots_key(tmp_path):
    cfg = RunConfig("multitune", "aircraft", images_per_class=5)
    legacy = fake_row(cfg)
    legacy["config"] = {("shots" if k == "images_per_class" else k): v for k, v in legacy["config"].items()}
    legacy["config"].pop("backbone")
    store = ResultsStore(tmp_path)
    path = store.run_dir(cfg.digest()) / "run.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(legacy))
    got = read_row(path)
    assert got["config"]["images_per_class"] == 5 and "shots" not in got["config"]
    assert RunConfig.from_dict(got["config"]).digest() == cfg.digest() == got["digest"]
    assert store.finished(cfg.digest()) == got and store.rows() == [got]
    assert store.runs().loc[0, "images_per_class"] == 5 and "shots" not in store.runs().columns


def test_the_committed_store_reads_in_todays_field_names():
    store = ResultsStore(paths.project_root() / "results" / "offline-cpu")
    runs = store.runs()
    assert len(runs) == 12 and "shots" not in runs.columns
    assert sorted(runs["images_per_class"].unique().tolist()) == [5, 10, 15]
    assert all(RunConfig.from_dict(r["config"]).digest() == r["digest"] for r in store.rows())


def test_a_half_written_file_left_by_a_kill_is_removed_and_never_merged(tmp_path):
    there, here = ResultsStore(tmp_path / "there"), ResultsStore(tmp_path / "here")
    a, b = RunConfig("finetune", "toy", seed=0), RunConfig("finetune", "toy", seed=1)
    there.finish(fake_row(a), fake_history())
    stale = there.run_dir(a.digest()) / ".checkpoint.pt.1a2b3c4d.tmp"  # a kill during the save of a checkpoint
    stale.write_bytes(b"half")
    (there.run_dir(a.digest()) / ".lock").write_text("")
    assert here.merge(there.root) == [a.digest()]
    assert sorted(p.name for p in here.run_dir(a.digest()).iterdir()) == ["history.csv", "run.json"]
    there.save_checkpoint(b.digest(), {"epoch": 1})
    (there.run_dir(b.digest()) / ".checkpoint.pt.5e6f7a8b.tmp").write_bytes(b"half")
    there.finish(fake_row(b), fake_history())  # the run ends: its folder holds no temporary or resumable state
    assert sorted(p.name for p in there.run_dir(b.digest()).iterdir()) == ["history.csv", "run.json"]


def test_a_lock_left_by_a_kill_after_the_run_finished_goes_when_the_run_is_asked_for_again(toy_root, tmp_path):
    store = ResultsStore(tmp_path / "store")
    cfg = RunConfig(method="feature", dataset="toy", images_per_class=2, epochs=1, batch_size=8)
    row = fit(cfg, data_root=toy_root, results=store.root, device="cpu", cache=tmp_path / "cache")
    lock = store.run_dir(row["digest"]) / ".lock"
    lock.write_text("")  # killed after run.json, its tables and tidy, before the lock was removed
    with FileLock(lock, timeout=0):  # held: a waiter that will find the run finished; not taken from it
        store.tidy(row["digest"])
        assert lock.exists()
    assert fit(cfg, data_root=toy_root, results=store.root, device="cpu") == row
    assert sorted(p.name for p in store.run_dir(row["digest"]).iterdir()) == ["history.csv", "run.json"]


def test_a_run_being_trained_here_is_not_replaced_by_a_merge(tmp_path):
    there, here = ResultsStore(tmp_path / "there"), ResultsStore(tmp_path / "here")
    a = RunConfig("finetune", "toy")
    there.finish(fake_row(a), fake_history())
    with here.lock(a.digest()), pytest.raises(RunBusy, match="training in another process"):
        here.merge(there.root)
    assert here.finished(a.digest()) is None and here.merge(there.root) == [a.digest()]


def test_a_resumable_checkpoint_loads_without_running_code(tmp_path):
    marker = tmp_path / "ran"
    store, cfg = ResultsStore(tmp_path / "store"), RunConfig("finetune", "toy")
    store.run_dir(cfg.digest()).mkdir(parents=True)
    torch.save({"history": [], "evil": Evil(marker)}, store.run_dir(cfg.digest()) / "checkpoint.pt")
    with pytest.raises(CheckpointError, match=r"checkpoint.pt cannot be loaded as a resumable state.*delete it"):
        store.load_checkpoint(cfg.digest())
    assert not marker.exists()


class Evil:
    """Unpickling this would create `marker`: what a planted pickle could do with os.system."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


BAD_FILES = {  # how a store file ends up unreadable: a full disk or a cut copy, a bad git merge, garbage
    "run.json": {"cut short": lambda text: text[: len(text) // 2], "garbage": lambda text: "\udcff\udc80" * 10,
                 "merged badly": lambda text: f"<<<<<<< HEAD\n{text}\n=======\n{text}\n>>>>>>> gpu\n",
                 "no metrics": lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "metrics"})},
    "history.csv": {"cut short": lambda text: text[:-3], "empty": lambda text: "",
                    "merged badly": lambda text: f"<<<<<<< HEAD\n{text}=======\n{text}>>>>>>> gpu\n",
                    "missing": None},
}


@pytest.mark.parametrize("name, how", [(n, h) for n, hows in BAD_FILES.items() for h in hows])
def test_an_unreadable_run_file_is_one_line_naming_the_run_folder_and_the_fix(name, how, tmp_path):
    store, cfg = ResultsStore(tmp_path / "store"), RunConfig("finetune", "toy")
    store.finish(fake_row(cfg), fake_history(3))
    path = store.run_dir(cfg.digest()) / name
    if BAD_FILES[name][how] is None:
        path.unlink()
    else:
        path.write_bytes(BAD_FILES[name][how](path.read_text()).encode("utf-8", "surrogateescape"))
    read = (lambda: store.finished(cfg.digest())) if name == "run.json" else store.history
    for call in (read, store.runs if name == "run.json" else store.export):
        with pytest.raises(StoreError) as err:
            call()
        message = str(err.value)
        assert len(message.splitlines()) == 1 and message.startswith(f"{path} cannot be read")
        assert f"delete its run folder {path.parent} to train that run again, or restore the file from git" in message
    other = ResultsStore(tmp_path / "other")
    with pytest.raises(StoreError, match="cannot be read"):  # nor is it merged into another store
        other.merge(store.root)
    assert other.rows() == []
