"""A profile's training as one submitit job per run: `local` keeps N worker processes busy on this machine (N GPUs,
several runs per GPU, or N CPU workers), `slurm` submits a job array. Each job trains one config into its own run
folder (`fit`, under the run's lock) and rebuilds the store's tables from the run folders, so concurrent jobs never
corrupt them; the notebooks then find every run finished and only read.

Several runs share one GPU as separate processes: a few-shot run launches small kernels, and one process per run
keeps each launch queue busy without a shared Python interpreter (threads on CUDA streams would serialise on the GIL,
which is what bounds a small step) and without requiring runs to share an architecture (batched models would)."""
from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import shutil
import subprocess
import time
import tomllib
from pathlib import Path

import submitit
import torch

from .. import env, paths
from ..core.config import RunConfig
from ..core.fit import fit
from ..errors import ConfigError, MultiTuneError, one_line
from ..study import Study
from . import plan

EXECUTORS = ("inline", "local", "slurm")
POLL_S = 1.0
LEAST = {"workers": 1, "gpus_per_job": 0, "timeout_min": 1, "array_parallelism": 1, "cpus_per_task": 1}
NO_LIMIT_MIN = 60 * 24 * 365  # submitit's local jobs die at their timeout: a local run has none


@dataclasses.dataclass(frozen=True)
class Cluster:
    """Where the jobs run. Every field is a `study` option (`--gpus-per-job`) and a key of `--executor-config`
    (a TOML file; options given on the command line win)."""
    workers: int = 1  # local: jobs at once (several per GPU share it)
    gpus_per_job: int = 0  # slurm: GPUs each job asks for (local: 1 where there are GPUs)
    partition: str | None = None
    timeout_min: int | None = None  # per job (slurm: the partition's default); a job past it is requeued and resumes
    array_parallelism: int = 64  # slurm: array tasks at once
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    account: str | None = None
    qos: str | None = None
    setup: tuple[str, ...] = ()  # shell lines before each job, e.g. "module load cuda", "source .venv/bin/activate"
    folder: Path | None = None  # submitit's scripts, pickles and logs (slurm: on a shared filesystem)


def cluster_from(file: Path | None, **given) -> Cluster:
    """The options given on the command line over the config file's keys over the defaults."""
    keys = {}
    if file is not None:
        try:
            keys = tomllib.loads(Path(file).read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"--executor-config {file}: cannot read it as TOML ({e}): fix or drop it") from None
        valid = [f.name for f in dataclasses.fields(Cluster)]
        if unknown := sorted(set(keys) - set(valid)):
            raise ConfigError(f"--executor-config {file}: unknown key {unknown[0]!r}; valid keys: {', '.join(valid)}")
    keys = {**keys, **{k: v for k, v in given.items() if v is not None}}
    for name, least in LEAST.items():
        if (v := keys.get(name)) is not None and (type(v) is not int or v < least):
            raise ConfigError(f"{name} must be a whole number of at least {least}, got {v!r}: fix the option "
                              f"--{name.replace('_', '-')} or the key {name} of --executor-config")
    return Cluster(**{**keys, "setup": tuple(keys.get("setup", ())),
                      "folder": Path(keys["folder"]) if keys.get("folder") else None})


def pending(study: Study, datasets: list[str] | None = None, rows=None, methods=None) -> list[RunConfig]:
    """The configs still to train: with `datasets` None every run of the study's notebooks (Table 3's and the
    ablation's, each once), else Table 3's runs of those datasets (all of the profile's where the list is empty),
    rows and methods (None: all of the profile's). A finished run that a cancelled job left untidy (its lock or
    checkpoint, killed between run.json and the clean-up) is tidied here, since no job will ask for it again."""
    runs = plan.runs_to_plan(study) if datasets is None else study.planned(rows, datasets or None, methods)
    for r in runs[runs["done"]].itertuples():
        study.store.tidy(r.digest)
    return [r.config for r in runs.itertuples() if not r.done]


class TrainJob(submitit.helpers.Checkpointable):
    """One run in a job's own process. A job stopped at its time limit or preempted is submitted again with the same
    arguments (`Checkpointable`) and resumes from the run's checkpoint of its last epoch; a run that another process
    holds is waited for, then read."""

    def __call__(self, cfg: RunConfig, data_root: str, results: str, source: str | None, device: str,
                 threads: int | None, tags: dict) -> dict:
        if threads:
            torch.set_num_threads(threads)
        row = fit(cfg, data_root=data_root, results=results, source=source, device=device, tags=tags, wait=True)
        return {"digest": row["digest"], **row["metrics"]}


def job_args(study: Study, cfg: RunConfig, device: str, threads: int | None) -> tuple:
    source = str(study.source) if study.source is not None else None
    return (cfg, str(study.data_root.resolve()), str(study.results.resolve()), source, device, threads,
            {"profile": study.profile.name})


def folder(study: Study, cluster: Cluster) -> Path:
    return cluster.folder or paths.project_root() / "runs" / "submitit" / study.profile.name


def gpus_here(device: str) -> int:
    return torch.cuda.device_count() if device == "auto" or device.startswith("cuda") else 0


def run_local(study: Study, cfgs: list[RunConfig], cluster: Cluster) -> list[submitit.Job]:
    """Every config as its own job, `cluster.workers` at a time; worker slot i gets GPU i mod the GPU count (each
    job then sees one GPU, as `cuda`), or a CPU's share of threads. Returns the jobs, finished or failed."""
    gpus = gpus_here(study.device)
    device, threads = ("cuda", None) if gpus else (study.device, env.cpu_share(cluster.workers))
    ex = submitit.LocalExecutor(folder(study, cluster))
    queue, running, ended = list(cfgs), {}, []
    while queue or running:
        for slot in [s for s in range(cluster.workers) if s not in running][:len(queue)]:
            ex.update_parameters(timeout_min=cluster.timeout_min or NO_LIMIT_MIN, gpus_per_node=int(gpus > 0),
                                 visible_gpus=(slot % gpus,) if gpus else ())
            running[slot] = ex.submit(TrainJob(), *job_args(study, queue.pop(0), device, threads))
        time.sleep(POLL_S)
        for slot in [s for s, job in running.items() if job.done()]:
            ended.append(running.pop(slot))
    return ended


def submit_slurm(study: Study, cfgs: list[RunConfig], cluster: Cluster) -> list[submitit.Job]:
    """Every config as one task of a job array; returns at once (the tasks queue on the cluster). A job trains on
    `cluster.cpus_per_task` threads: where SLURM does not bind tasks to their CPUs, torch would take the node's."""
    if missing := [c for c in ("sbatch", "srun") if shutil.which(c) is None]:
        raise MultiTuneError(f"--executor slurm needs SLURM's sbatch and srun on PATH ({', '.join(missing)} not "
                             "found): run it on a login node of the cluster, or use --executor local")
    ex = submitit.AutoExecutor(folder(study, cluster), cluster="slurm")
    params = {"name": f"multitune-{study.profile.name}", "gpus_per_node": cluster.gpus_per_job,
              "timeout_min": cluster.timeout_min or partition_minutes(cluster.partition),
              "cpus_per_task": cluster.cpus_per_task, "mem_gb": cluster.mem_gb,
              "slurm_partition": cluster.partition, "slurm_array_parallelism": cluster.array_parallelism,
              "slurm_account": cluster.account, "slurm_qos": cluster.qos, "slurm_setup": list(cluster.setup)}
    ex.update_parameters(**{k: v for k, v in params.items() if v is not None})
    args = zip(*(job_args(study, c, study.device, cluster.cpus_per_task) for c in cfgs))
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # submitit echoes sbatch's refusal before raising it
            return ex.map_array(TrainJob(), *args)
    except submitit.core.utils.FailedJobError as e:  # its message: sbatch's error lines
        refusal = "; ".join(line.strip() for line in str(e).splitlines() if line.strip())
        raise MultiTuneError(f"SLURM refused the job array: {refusal} (fix the option it names, e.g. --partition, "
                             "or that key of --executor-config)") from None


def partition_minutes(partition: str | None) -> int:
    """The time limit of a job given no --timeout-min: the partition's default time, else its limit (submitit
    would ask for 5 minutes, and SLURM would stop a longer run there)."""
    try:
        out = subprocess.run(["sinfo", "--noheader", "--format", "%P|%L|%l"], capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise MultiTuneError(f"sinfo cannot tell the partition's time limit ({one_line(e)}): pass --timeout-min"
                             ) from None
    for name, default, limit in (line.split("|") for line in out.splitlines()):
        if (partition is None and name.endswith("*")) or name.rstrip("*") == partition:
            return slurm_minutes(default) or slurm_minutes(limit) or NO_LIMIT_MIN
    return NO_LIMIT_MIN  # no such partition: sbatch refuses it, naming it


def slurm_minutes(text: str) -> int | None:
    """sinfo's [days-][hours:]minutes:seconds in whole minutes; None for n/a (no default) and infinite."""
    if (match := re.fullmatch(r"(?:(\d+)-)?(\d+(?::\d+){1,2})", text)) is None:
        return None
    seconds, minutes, hours = ([int(p) for p in reversed(match[2].split(":"))] + [0])[:3]
    return max(1, (int(match[1] or 0) * 24 + hours) * 60 + minutes + (seconds > 0))


def earlier_failures(where: Path, cfgs: list[RunConfig]) -> dict[str, submitit.Job]:
    """Per run still missing, the latest job in `where` that ended in an error, latest first (a job that SLURM
    requeued or cancelled leaves no result, so it is not among them)."""
    digests, failed = {c.digest() for c in cfgs}, {}
    for result in sorted(where.glob("*_0_result.pkl"), key=lambda p: p.stat().st_mtime, reverse=True):
        job = submitit.SlurmJob(where, result.name.removesuffix("_0_result.pkl"))
        if job.exception() is not None and job.paths.submitted_pickle.exists():
            if (digest := job.submission().args[0].digest()) in digests:
                failed.setdefault(digest, job)
    return failed


def job_error(job: submitit.Job) -> str:
    """The job's own exception line ("DataError: ..."), found in the traceback submitit wraps it in."""
    text = str(job.exception())
    lines = re.findall(r"^[A-Za-z_][\w.]*(?:Error|Exception|Diverged|Busy|Interrupt)\b.*$", text, re.MULTILINE)
    return lines[-1] if lines else one_line(job.exception())


def train(study: Study, executor: str, cluster: Cluster, datasets=None, rows=None, methods=None) -> bool:
    """Train what the study still lacks (of `pending`'s selection) as jobs: True once all are in the store (local),
    False when they were submitted to a queue (slurm). A failed job leaves the others' runs finished; its error
    names its log."""
    cfgs = pending(study, datasets, rows, methods)
    where = folder(study, cluster)
    if not cfgs:
        print(f"{study.profile.name}: every run is in {study.results}, nothing to train")
        return True
    if executor == "slurm":
        if failed := earlier_failures(where, cfgs):
            last = next(iter(failed.values()))
            print(f"{len(failed)} of these runs failed in an earlier job, the last with {job_error(last)} (log: "
                  f"{last.paths.stderr}); they are submitted again")
        jobs = submit_slurm(study, cfgs, cluster)
        print(f"submitted {len(jobs)} runs as SLURM array job {jobs[0].job_id.split('_')[0]} (logs: {where}). When "
              f"it has ended, `python -m multitune_lib study --profile {study.profile.name}` makes the tables from "
              "the store; submitting again sends only the runs still missing, and names any that failed.")
        return False
    started = time.time()
    jobs = run_local(study, cfgs, cluster)
    study.store.export()
    if failed := [j for j in jobs if j.exception() is not None]:
        raise MultiTuneError(f"{len(failed)} of {len(jobs)} jobs failed, the first with {job_error(failed[0])} (log: "
                             f"{failed[0].paths.stderr}); the other runs are in the store: run again to retry")
    print(f"trained {len(jobs)} runs as local jobs, {cluster.workers} at a time, in "
          f"{(time.time() - started) / 60:.1f} minutes (logs: {where})")
    return True
