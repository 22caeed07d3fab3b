"""A one-node SLURM cluster on this machine, for the tests marked `slurm` and for trying `study --executor slurm`
without a cluster: munged, slurmctld and slurmd (Debian's munge and slurm-wlm packages) on free localhost ports,
with their key, configuration, state, spool and logs in one folder, and no accounting database.

    python tests/slurm_cluster.py    # as root: starts one, prints the SLURM_CONF to export; Ctrl-C stops it
"""
from __future__ import annotations

import getpass
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAEMONS = ("mungekey", "munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "sinfo", "squeue", "scontrol", "scancel")
NODE, PARTITION = "localnode", "cpu"
DEFAULT_TIME = "00:30:00"  # the partition's time limit for a job that asks for none
START_S, STOP_S = 60, 60
ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE")

CONF = """\
ClusterName=multitune
SlurmctldHost=localhost(127.0.0.1)
SlurmUser={user}
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
# a requeued job may start again once its launch credential has expired: after 5 seconds rather than 2 minutes
AuthInfo=socket={root}/munge.socket,cred_expire=5
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# backfill every second, so that a job starts as soon as it may
SchedulerParameters=bf_interval=1
# submitit's jobs ignore SIGTERM: SIGKILL them 2 seconds after a cancel or requeue, not 30
KillWait=2
ReturnToService=2
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName={node} NodeHostname=localhost NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName={partition} Nodes={node} Default=YES DefaultTime={default_time} MaxTime=INFINITE State=UP
"""


class Unavailable(Exception):
    """Why no cluster can start on this machine."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binaries() -> dict[str, str]:
    """The daemons' and commands' paths (the daemons lie in sbin, off a user's PATH)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    found = {name: shutil.which(name, path=path) for name in DAEMONS + CLIENTS}
    if missing := [name for name, where in found.items() if where is None]:
        raise Unavailable(f"{', '.join(missing)} not installed (apt-get install slurm-wlm munge)")
    return found


class LocalSlurm:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.conf = self.root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.daemons: dict[str, subprocess.Popen] = {}

    def start(self) -> None:
        """munged, then slurmctld and slurmd, each in the foreground as a child of this process; returns once the
        node takes jobs. Raises Unavailable, having stopped what did start, where one does not come up."""
        bins = binaries()
        (self.root / "state").mkdir(parents=True, exist_ok=True)
        (self.root / "spool").mkdir(exist_ok=True)
        key, sock = self.root / "munge.key", self.root / "munge.socket"
        subprocess.run([bins["mungekey"], "--create", "--keyfile", str(key)], check=True, capture_output=True)
        # --force: munged otherwise refuses a socket folder that not everyone may enter (pytest's are private)
        self.spawn("munged", [bins["munged"], "--foreground", "--force", f"--key-file={key}", f"--socket={sock}",
                              f"--pid-file={self.root / 'munged.pid'}", f"--log-file={self.root / 'munged.log'}",
                              f"--seed-file={self.root / 'munged.seed'}"])
        self.until(sock.exists, "munged", self.root / "munged.log")
        self.conf.write_text(CONF.format(user=getpass.getuser(), ctld_port=free_port(), slurmd_port=free_port(),
                                         root=self.root, node=NODE, cpus=os.cpu_count(), partition=PARTITION,
                                         default_time=DEFAULT_TIME))
        self.spawn("slurmctld", [bins["slurmctld"], "-D", "-i", "-f", str(self.conf)])
        self.spawn("slurmd", [bins["slurmd"], "-D", "-f", str(self.conf), "-N", NODE])
        self.until(lambda: self.node_state() == "idle", "slurmd", self.root / "slurmd.log")

    def spawn(self, name: str, cmd: list[str]) -> None:
        with open(self.root / f"{name}.out", "w") as out:
            self.daemons[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                                  start_new_session=True)  # Ctrl-C reaches stop(), not them

    def until(self, ready, name: str, log: Path) -> None:
        deadline = time.monotonic() + START_S
        while not ready():
            ended = [n for n, p in self.daemons.items() if p.poll() is not None]
            if ended or time.monotonic() > deadline:
                self.stop()
                why = f"{ended[0]} exited" if ended else f"not ready after {START_S} s"
                raise Unavailable(f"{name} did not start ({why}; see {log} and {self.root}/*.out)")
            time.sleep(0.2)

    def node_state(self) -> str:
        out = subprocess.run(["sinfo", "--noheader", "--format", "%T", "--nodes", NODE], capture_output=True,
                             text=True, env=self.env)
        return out.stdout.strip()

    def run(self, *cmd: str) -> str:
        """A SLURM command against this cluster; its stdout."""
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env, check=True).stdout

    def job(self, job_id: str) -> list[dict[str, str]]:
        """`scontrol show job`'s fields, one dict per task (an array's pending tasks as one)."""
        return [dict(re.findall(r"([\w/:]+)=(\S*)", line))
                for line in self.run("scontrol", "--oneliner", "show", "job", job_id).splitlines()]

    def wait(self, job_id: str, timeout_s: float) -> list[dict[str, str]]:
        """The job's tasks once every one has ended."""
        deadline = time.monotonic() + timeout_s
        while True:
            tasks = self.job(job_id)
            if all(t["JobState"] in ENDED for t in tasks):
                return tasks
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still running after {timeout_s} s: {self.run('squeue')}")
            time.sleep(1)

    def cancel_all(self) -> None:
        """Cancel every job, and return once none is left running."""
        if jobs := self.run("squeue", "--noheader", "--format", "%A").split():
            subprocess.run(["scancel", *jobs], env=self.env, capture_output=True)
        deadline = time.monotonic() + STOP_S
        while self.run("squeue", "--noheader") and time.monotonic() < deadline:
            time.sleep(0.5)

    def stop(self) -> None:
        """Cancel the jobs, then stop the daemons; nothing of the cluster keeps running."""
        if "slurmd" in self.daemons and self.daemons["slurmd"].poll() is None:
            self.cancel_all()
        for proc in reversed(self.daemons.values()):
            proc.terminate()
            try:
                proc.wait(STOP_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.daemons.clear()


def main() -> None:
    cluster = LocalSlurm(Path(tempfile.mkdtemp(prefix="multitune-slurm-")))
    cluster.root.chmod(0o755)  # other users may submit: they read slurm.conf and reach munged's socket
    try:
        cluster.start()
    except Unavailable as e:
        sys.exit(f"no SLURM cluster: {e}")
    print(f"a one-node SLURM cluster runs (partition {PARTITION}, {os.cpu_count()} CPUs); in another shell:\n"
          f"    export SLURM_CONF={cluster.conf}\nCtrl-C stops it.", flush=True)
    try:
        while all(p.poll() is None for p in cluster.daemons.values()):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    cluster.stop()
    shutil.rmtree(cluster.root)


if __name__ == "__main__":
    main()
