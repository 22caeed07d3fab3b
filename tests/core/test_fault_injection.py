"""Fault injection: a training run killed with SIGKILL at random points resumes to the history of an uninterrupted
run, and after every kill the store holds nothing half-written that it reads and no run wrongly marked finished."""
import io
import random
import subprocess
import sys
import time

import pandas as pd
import pytest

from multitune_lib.core.config import RunConfig
from multitune_lib.store.results import ResultsStore

CFG = dict(method="spottune", dataset="toy", images_per_class=4, epochs=6, batch_size=8)
CHILD = f"""
import sys
from multitune_lib.core.config import RunConfig
from multitune_lib.core.fit import fit
print("ready", flush=True)
fit(RunConfig(**{CFG!r}), data_root=sys.argv[1], results=sys.argv[2], device="cpu", cache=sys.argv[3])
"""
COMPARED = ["epoch", "train_loss", "penalty", "val_acc"]  # and SpotTune's block usage; not the timings
RUN_FILES = {"history.csv", "run.json"}


def start(toy_root, store, cache) -> tuple[subprocess.Popen, float]:
    """A training process, and the time it finished importing (what the kill delay counts from)."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(toy_root), str(store), str(cache)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n", proc.stderr.read()
    return proc, time.monotonic()


def compared(history: pd.DataFrame) -> pd.DataFrame:
    return history[COMPARED + sorted(c for c in history.columns if c.startswith("usage."))].reset_index(drop=True)


def check_store_after_kill(store: ResultsStore, digest: str, reference: pd.DataFrame) -> None:
    """Whatever the moment of the kill: a finished run is complete, a checkpoint loads and holds a prefix of the
    uninterrupted history, and nothing else but temporary files (removed on the next start) is in the folder."""
    d = store.run_dir(digest)
    if store.finished(digest) is not None:
        assert compared(pd.read_csv(d / "history.csv")).equals(reference)
    elif (d / "checkpoint.pt").exists():
        done = pd.DataFrame(store.load_checkpoint(digest)["history"])
        assert 1 <= len(done) <= len(reference)
        assert compared(pd.read_csv(io.StringIO(done.to_csv(index=False)))).equals(
            reference.iloc[:len(done)].reset_index(drop=True))
    leftovers = {p.name for p in d.iterdir()} - RUN_FILES - {"checkpoint.pt", ".lock"} if d.exists() else set()
    assert all(name.startswith(".") and name.endswith(".tmp") for name in leftovers), leftovers
    if (store.root / "runs.csv").exists():
        pd.read_csv(store.root / "runs.csv")


@pytest.mark.parametrize("trial", range(10))
def test_a_run_killed_at_a_random_point_resumes_to_the_uninterrupted_history(trial, toy_root, tmp_path_factory):
    shared = tmp_path_factory.getbasetemp() / "fault-injection"
    digest = RunConfig(**CFG).resolved().digest()
    reference_store = ResultsStore(shared / "reference")
    if not (shared / "seconds").exists():  # the uninterrupted run, once for all trials
        proc, t0 = start(toy_root, reference_store.root, shared / "cache")
        assert proc.wait(timeout=600) == 0, proc.stderr.read()
        (shared / "seconds").write_text(str(time.monotonic() - t0))
    reference = compared(reference_store.history())
    seconds = float((shared / "seconds").read_text())

    store = ResultsStore(tmp_path_factory.mktemp("killed"))
    proc, t0 = start(toy_root, store.root, shared / "cache")
    time.sleep(max(0.0, t0 + random.Random(trial).uniform(0, seconds) - time.monotonic()))
    proc.kill()
    proc.wait(timeout=60)
    check_store_after_kill(store, digest, reference)

    proc, _ = start(toy_root, store.root, shared / "cache")
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    assert compared(store.history()).equals(reference)
    assert {p.name for p in store.run_dir(digest).iterdir()} == RUN_FILES
    assert store.runs()["digest"].tolist() == [digest] and len(pd.read_csv(store.root / "runs.csv")) == 1
