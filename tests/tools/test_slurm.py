"""`study --executor slurm` against a real scheduler, the one-node cluster of tests/slurm_cluster.py: the smoke
profile's Aircraft runs as one job array, cancelled and submitted again; a task requeued mid-run and a task that
fails; and one clear line for a partition SLURM refuses and for a machine without sbatch."""
import dataclasses
import json
import re
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from slurm_cluster import DEFAULT_TIME, PARTITION

from multitune_lib.study import Study
from multitune_lib.tools import cli, executors
from multitune_lib.tools.executors import Cluster

ARRAY_S = 900  # the longest wait for an array of smoke runs on a busy 2-core machine
REQUEUED_EPOCHS = 12  # the requeued run's: seconds of training left after its first checkpoint
TIMING = ["seconds", "train_seconds"]  # history columns that time an epoch rather than describe it
OPTIONS = ("--partition", PARTITION, "--array-parallelism", "2", "--cpus-per-task", "1", "--timeout-min", "10")


def study_args(store: Path, jobs: Path) -> list[str]:
    config = jobs.parent / "cluster.toml"
    config.write_text(f'folder = "{jobs}"\n')
    return ["study", "--profile", "smoke", "-p", "results", str(store), "--executor-config", str(config)]


def submit(store: Path, jobs: Path, capsys, *options: str) -> str:
    """`study --executor slurm --train-only aircraft` on the smoke profile: what it printed."""
    assert cli.main([*study_args(store, jobs), "--executor", "slurm", "--train-only", "aircraft", *options]) == 0
    return capsys.readouterr().out


def array_id(out: str) -> str:
    return re.search(r"as SLURM array job (\d+)", out).group(1)


def wait_for(ready, what: str, timeout_s: float = ARRAY_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert time.monotonic() < deadline, f"no {what} after {timeout_s} s"
        time.sleep(0.1)


def assert_whole(store: Path) -> None:
    """Every file in the run folders reads whole (a write cut short leaves only a .tmp file beside the real one),
    and the table lists exactly the finished runs."""
    for path in store.glob("runs/*/*"):
        if path.suffix == ".pt":
            torch.load(path, weights_only=True)
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".csv":
            pd.read_csv(path)
    if finished := sorted(p.parent.name for p in store.glob("runs/*/run.json")):
        assert sorted(pd.read_csv(store / "runs.csv")["digest"]) == finished


def mid_run(store: Path) -> list[str]:
    """The runs with a checkpoint but not finished."""
    return [p.parent.name for p in store.glob("runs/*/checkpoint.pt") if not (p.parent / "run.json").exists()]


def leftovers(store: Path) -> list[Path]:
    """What only an unfinished run keeps: its checkpoint, its lock, a half-written file."""
    return [p for p in store.glob("runs/*/*") if p.name in ("checkpoint.pt", ".lock") or p.suffix == ".tmp"]


def logs(jobs: Path, job_id: str) -> str:
    return "".join(p.read_text() for p in sorted(jobs.glob(f"{job_id}_*_log.out")))


@pytest.mark.slurm
def test_the_aircraft_array_cancelled_then_submitted_again_trains_each_run_once(slurm, decathlon_root, tmp_path,
                                                                                capsys):
    """The options reach the job; scancel of the whole array leaves whole files; submitting again sends only the
    runs still missing and finishes them, resuming the one cut short; then nothing trains or is sent again."""
    store, jobs = tmp_path / "store", tmp_path / "jobs"
    study = Study("smoke", results=store)
    wanted = sorted(c.digest() for c in executors.pending(study, ["aircraft"]))
    first = array_id(submit(store, jobs, capsys, *OPTIONS))
    assert {(t["Partition"], t["ArrayTaskThrottle"], t["CPUs/Task"], t["TimeLimit"]) for t in slurm.job(first)} \
        == {(PARTITION, "2", "1", "00:10:00")}
    wait_for(lambda: any(store.glob("runs/*/run.json")) and mid_run(store), "run finished beside one mid-run")
    slurm.run("scancel", first)
    assert "CANCELLED" in {t["JobState"] for t in slurm.wait(first, 60)}
    assert_whole(store)
    missing, cut_short = [d for d in wanted if study.store.finished(d) is None], mid_run(store)
    out = submit(store, jobs, capsys, *OPTIONS)
    assert f"submitted {len(missing)} runs" in out and 0 < len(missing) < len(wanted)
    second = array_id(out)
    assert {t["JobState"] for t in slurm.wait(second, ARRAY_S)} == {"COMPLETED"}
    assert sorted(study.runs()["digest"]) == wanted and not leftovers(store)
    assert len(study.store.history()) == len(wanted) * study.profile.epochs
    assert all(f"resuming run {d} after epoch 1" in logs(jobs, second) for d in cut_short)
    assert_nothing_trains_or_is_sent_again(slurm, store, jobs, capsys, len(wanted))


def assert_nothing_trains_or_is_sent_again(slurm, store: Path, jobs: Path, capsys, runs: int) -> None:
    """`study --train-only` without an executor reads every run back; submitting again sends no job."""
    written = {p: p.stat().st_mtime_ns for p in store.glob("runs/*/*")}
    assert cli.main([*study_args(store, jobs), "--train-only", "aircraft"]) == 0
    assert capsys.readouterr().out.count(" aircraft ") == runs  # its table of the runs, read from the store
    assert "nothing to train" in submit(store, jobs, capsys, *OPTIONS)
    assert slurm.run("squeue", "--noheader") == ""
    assert {p: p.stat().st_mtime_ns for p in store.glob("runs/*/*")} == written


def history(study: Study, digest: str) -> pd.DataFrame:
    return pd.read_csv(study.store.run_dir(digest) / "history.csv").drop(columns=TIMING)


@pytest.mark.slurm
def test_a_requeued_task_resumes_to_the_uninterrupted_history_and_a_failed_one_is_named(slurm, decathlon_root,
                                                                                       tmp_path, monkeypatch, capsys):
    """An array of two tasks: one requeued mid-run (as preemption does) comes back, resumes after its last epoch
    and ends with the history of the same run never interrupted; the other, of a dataset that does not exist,
    fails, and submitting again names its error and log. Without --timeout-min a task gets the partition's time."""
    store, jobs = tmp_path / "store", tmp_path / "jobs"
    study, reference = Study("smoke", results=store), Study("smoke", results=tmp_path / "reference")
    cfg = min(executors.pending(study, ["aircraft"]), key=lambda c: (c.images_per_class, c.method != "multitune"))
    # a smoke run's 2 epochs can end before the requeue lands: enough epochs after the first that it lands mid-run
    cfg = dataclasses.replace(cfg, epochs=REQUEUED_EPOCHS)
    cfgs = [cfg, dataclasses.replace(cfg, dataset="nosuchset")]
    cluster = Cluster(cpus_per_task=1, folder=jobs)
    task, failing = executors.submit_slurm(study, cfgs, cluster)
    [whole] = executors.submit_slurm(reference, [cfg], cluster)
    assert {t["TimeLimit"] for t in slurm.job(task.job_id)} == {DEFAULT_TIME}
    wait_for(study.store.run_dir(cfg.digest()).joinpath("checkpoint.pt").exists, "checkpoint after epoch 1")
    slurm.run("scontrol", "requeue", task.job_id)
    for job in (task, failing, whole):
        slurm.wait(job.job_id, ARRAY_S)
    assert slurm.job(task.job_id)[0]["Restarts"] == "1"
    # the requeue lands after the first checkpoint, at whichever epoch the run has reached by then
    resumed = re.search(rf"resuming run {cfg.digest()} after epoch (\d+)", Path(task.paths.stdout).read_text())
    assert resumed and 1 <= int(resumed[1]) < REQUEUED_EPOCHS
    pd.testing.assert_frame_equal(history(study, cfg.digest()), history(reference, cfg.digest()), check_exact=True)
    monkeypatch.setattr(executors, "pending",
                        lambda s, *selection: [c for c in cfgs if not s.store.finished(c.digest())])
    assert cli.main([*study_args(store, jobs), "--executor", "slurm"]) == 0
    out = capsys.readouterr().out
    assert ("1 of these runs failed in an earlier job, the last with multitune_lib.errors.DataError: unknown "
            "dataset 'nosuchset'") in out
    assert f"(log: {failing.paths.stderr}); they are submitted again" in out and "submitted 1 runs" in out


@pytest.mark.slurm
def test_a_partition_slurm_refuses_is_one_line_quoting_slurm(slurm, tmp_path, capsys):
    args = [*study_args(tmp_path / "store", tmp_path / "jobs"), "--executor", "slurm", "--train-only", "aircraft",
            "--partition", "nosuch"]
    assert cli.main(args) == cli.USER_ERROR
    assert capsys.readouterr().err == ("error: SLURM refused the job array: sbatch: error: invalid partition "
                                       "specified: nosuch; sbatch: error: Batch job submission failed: Invalid "
                                       "partition name specified (fix the option it names, e.g. --partition, or "
                                       "that key of --executor-config)\n")
    assert slurm.run("squeue", "--noheader") == ""


def test_a_partitions_time_reads_as_whole_minutes():
    assert [executors.slurm_minutes(t) for t in ("30:00", "0:30", "2:00:00", "1-00:00:01", "infinite", "n/a")] \
        == [30, 1, 120, 24 * 60 + 1, None, None]


def test_slurm_where_sbatch_is_missing_is_one_clear_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "srun").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "bin" / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # srun, but no sbatch
    assert cli.main([*study_args(tmp_path / "store", tmp_path / "jobs"), "--executor", "slurm"]) == cli.USER_ERROR
    assert capsys.readouterr().err == ("error: --executor slurm needs SLURM's sbatch and srun on PATH (sbatch not "
                                       "found): run it on a login node of the cluster, or use --executor local\n")
