"""Executors: the smoke profile's training as submitit jobs into one store, a failed job named with its log, and the
SLURM job array's submission script, written by submitit against stand-ins for sbatch and srun."""
import os
import stat
import sys
from pathlib import Path

import pytest

from multitune_lib.errors import ConfigError, MultiTuneError
from multitune_lib.study import Study, tables
from multitune_lib.study.study import label
from multitune_lib.tools import cli, executors
from multitune_lib.tools.executors import Cluster


def test_options_win_over_the_config_file_and_unknown_keys_are_named(tmp_path):
    f = tmp_path / "cluster.toml"
    f.write_text('partition = "gpu"\ngpus_per_job = 1\nsetup = ["module load cuda"]\nworkers = 3\n')
    c = executors.cluster_from(f, workers=None, partition="debug")
    assert (c.partition, c.gpus_per_job, c.setup, c.workers) == ("debug", 1, ("module load cuda",), 3)
    assert executors.cluster_from(None) == Cluster()
    f.write_text('partiton = "gpu"\n')
    with pytest.raises(ConfigError, match="unknown key 'partiton'; valid keys: workers, gpus_per_job, partition"):
        executors.cluster_from(f)
    f.write_text("partition = gpu\n")
    with pytest.raises(ConfigError, match="cannot read it as TOML"):
        executors.cluster_from(f)
    with pytest.raises(ConfigError, match="workers must be a whole number of at least 1, got 0: fix the option "
                                          "--workers"):
        executors.cluster_from(None, workers=0)
    f.write_text('gpus_per_job = "one"\n')
    with pytest.raises(ConfigError, match="gpus_per_job must be a whole number of at least 0, got 'one'"):
        executors.cluster_from(f)


def test_local_jobs_train_the_smoke_runs_into_one_store_and_table3_regenerates(decathlon_root, tmp_path, capsys):
    study = Study("smoke", results=tmp_path / "store")
    wanted = executors.pending(study, ["aircraft"])
    assert len(wanted) == len(study.methods) * len(study.profile.rows()) * len(study.seeds)
    cluster = Cluster(workers=2, folder=tmp_path / "jobs")
    assert executors.train(study, "local", cluster, ["aircraft"])
    runs = study.runs()
    assert sorted(runs["digest"]) == sorted(c.digest() for c in wanted) and runs["main"].all()
    assert len(list((tmp_path / "jobs").glob("*_result.pkl"))) == len(wanted)  # one job, one process per run
    assert len(study.store.history()) == len(wanted) * study.profile.epochs
    table = tables.table3(study)
    assert set(table["method"]) == {label(m) for m in study.methods} and len(table) == len(wanted)
    assert table["ours_final_pct"].notna().all()
    assert executors.pending(study, ["aircraft"]) == []
    assert executors.train(study, "local", cluster, ["aircraft"])
    assert "nothing to train" in capsys.readouterr().out


def test_a_finished_run_a_killed_job_left_locked_is_tidied_when_the_store_is_read_for_what_to_send(tmp_path, finish):
    study = Study("smoke", results=tmp_path / "store")
    cfg = executors.pending(study, ["aircraft"])[0]
    d = study.store.run_dir(finish(study, cfg))
    (d / ".lock").write_text("")  # a job cancelled after run.json, before its lock went: nothing will ask for it
    (d / "checkpoint.pt").write_bytes(b"resumable state")
    assert cfg not in executors.pending(study, ["aircraft"])
    assert sorted(p.name for p in d.iterdir()) == ["history.csv", "run.json"]


def test_a_failed_job_names_its_error_and_log_and_leaves_the_store_clean(tmp_path, monkeypatch):
    study = Study("smoke", data_root=tmp_path / "nowhere", results=tmp_path / "store")
    monkeypatch.setattr(executors, "pending", lambda s, d=None, rows=None, methods=None:
                        executors.plan.runs_to_plan(s)["config"][:1].tolist())
    with pytest.raises(MultiTuneError, match=r"1 of 1 jobs failed, the first with .*DataError.*nowhere.*log: .*"
                                             r"_log\.err"):
        executors.train(study, "local", Cluster(folder=tmp_path / "jobs"), None)
    assert study.runs().empty


def fake_slurm(bin_dir: Path, script_copy: Path) -> None:
    """sbatch that keeps the submission script and answers like SLURM; srun so that submitit sees a cluster."""
    bin_dir.mkdir()
    for name, body in {"sbatch": f'cp "$1" {script_copy}\necho "Submitted batch job 4242"\n',
                       "srun": "exit 0\n"}.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod((bin_dir / name).stat().st_mode | stat.S_IEXEC)


def test_slurm_submits_one_array_task_per_run_with_the_options_asked(tmp_path, monkeypatch, capsys):
    fake_slurm(tmp_path / "bin", tmp_path / "submitted.sh")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "cluster.toml").write_text(f'setup = ["module load cuda/12.4"]\nfolder = "{tmp_path / "jobs"}"\n'
                                           'array_parallelism = 32\n')
    args = ["study", "--profile", "smoke", "-p", "results", str(tmp_path / "store"), "--executor", "slurm",
            "--executor-config", str(tmp_path / "cluster.toml"), "--partition", "gpu", "--gpus-per-job", "1",
            "--timeout-min", "30", "--array-parallelism", "8", "--account", "lab"]
    assert cli.main(args) == 0
    n = len(executors.pending(Study("smoke", results=tmp_path / "store")))
    script = (tmp_path / "submitted.sh").read_text()
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=1", "#SBATCH --time=30",
                 f"#SBATCH --array=0-{n - 1}%8", "#SBATCH --account=lab", "#SBATCH --job-name=multitune-smoke",
                 "module load cuda/12.4", f"{sys.executable} -u -m submitit.core._submit {tmp_path / 'jobs'}"):
        assert line in script
    out = capsys.readouterr().out
    assert f"submitted {n} runs as SLURM array job 4242" in out and "== 0" not in out  # no notebook ran
    assert len(list((tmp_path / "jobs").glob("*_submitted.pkl"))) == n


def test_slurm_without_a_cluster_is_one_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun anywhere
    assert cli.main(["study", "--profile", "smoke", "-p", "results", str(tmp_path / "store"),
                     "--executor", "slurm"]) == cli.USER_ERROR
    assert "needs SLURM's sbatch and srun on PATH" in capsys.readouterr().err


def test_the_study_command_trains_through_the_executor_then_runs_the_notebooks(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(executors, "train", lambda study, kind, cluster, datasets=None, rows=None, methods=None:
                        calls.append(("train", kind, cluster.workers, datasets)) or kind == "local")
    monkeypatch.setattr(cli, "run_notebooks", lambda profile, params, only: calls.append(("notebooks", only))
                        or tmp_path)
    store = ["-p", "results", str(tmp_path / "store")]
    assert cli.main(["study", "--profile", "smoke", *store, "--executor", "local", "--workers", "3"]) == 0
    assert calls == [("train", "local", 3, None), ("notebooks", None)]
    calls.clear()
    assert cli.main(["study", "--profile", "smoke", *store, "--executor", "local", "--train-only", "aircraft"]) == 0
    assert cli.main(["study", "--profile", "smoke", *store, "--executor", "slurm"]) == 0
    assert calls == [("train", "local", 1, ["aircraft"]), ("train", "slurm", 1, None)]  # no notebooks: not all done
    calls.clear()
    monkeypatch.setattr(executors, "train", lambda study, kind, cluster, **chosen: calls.append(chosen))
    assert cli.main(["study", "--profile", "smoke", *store, "--executor", "local", "--train-only", "--rows", "4",
                     "--methods", "multitune"]) == 0
    assert calls == [{"datasets": ["aircraft", "cifar100"], "rows": [4], "methods": ["multitune"]}]
