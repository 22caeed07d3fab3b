"""Several processes finishing different runs into one store at once, as executor jobs do: no half-written run, no
half-written table, and the tables rebuilt from the run folders hold every run once."""
import json
import subprocess
import sys
import time

import pandas as pd

from multitune_lib.store.results import ResultsStore

WRITERS, RUNS_EACH, EPOCHS = 4, 6, 3
CHILD = """
import sys
from multitune_lib.core.config import RunConfig
from multitune_lib.store.results import ResultsStore
store, worker = ResultsStore(sys.argv[1]), int(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()  # every writer starts at once
for i in range(int(sys.argv[3])):
    cfg = RunConfig(method="finetune", dataset="aircraft", images_per_class=5, seed=100 * worker + i).resolved()
    row = {"digest": cfg.digest(), "config": cfg.to_dict(), "metrics": {"final_val_acc": 0.5}, "env": {},
           "source": None, "tags": {"worker": worker}, "finished_at": "2026-01-01T00:00:00+00:00"}
    store.finish(row, [{"epoch": e, "train_loss": 1.0 / e, "val_acc": 0.5} for e in range(1, int(sys.argv[4]) + 1)])
"""


def read_tables(root) -> int | None:
    """The number of runs runs.csv lists; every one of them finished. None before the first export."""
    if not (root / "runs.csv").exists():
        return None
    runs = pd.read_csv(root / "runs.csv")
    assert all((root / "runs" / d / "run.json").exists() for d in runs["digest"])
    return len(runs)


def test_concurrent_writers_leave_every_run_whole_and_the_tables_complete(tmp_path):
    root = tmp_path / "store"
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(w), str(RUNS_EACH), str(EPOCHS)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in range(WRITERS)]
    for p in procs:
        assert p.stdout.readline() == "ready\n", p.stderr.read()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    seen = []  # what a reader sees while they write: whole tables, never fewer runs than before
    while any(p.poll() is None for p in procs):
        if (n := read_tables(root)) is not None:
            seen.append(n)
        time.sleep(0.01)
    assert all(p.wait() == 0 for p in procs), [p.stderr.read() for p in procs]
    assert seen == sorted(seen)

    total = WRITERS * RUNS_EACH
    assert read_tables(root) == total
    assert len(pd.read_csv(root / "history.csv")) == total * EPOCHS
    for run in (root / "runs").iterdir():
        assert {p.name for p in run.iterdir()} == {"run.json", "history.csv"}
        assert json.loads((run / "run.json").read_text())["digest"] == run.name
        assert len(pd.read_csv(run / "history.csv")) == EPOCHS
    assert not list(root.glob("**/*.tmp"))
    assert len(ResultsStore(root).runs()) == total
