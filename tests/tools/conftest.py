"""The `slurm` marker: tests against a one-node SLURM cluster that tests/slurm_cluster.py starts on this machine once
per test session and stops at its end. Where it cannot start (SLURM not installed, no root), they skip saying why;
with MULTITUNE_SLURM=required (CI, which installs SLURM) they fail instead, so that a log of passes means they ran."""
import os

import pytest
from slurm_cluster import LocalSlurm, Unavailable

MARKER = "slurm"


def pytest_configure(config):
    config.addinivalue_line("markers", f"{MARKER}: runs against a one-node SLURM cluster on this machine "
                            "(tests/slurm_cluster.py); skipped where none can start")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except Unavailable as e:
        required = os.environ.get("MULTITUNE_SLURM") == "required"
        (pytest.fail if required else pytest.skip)(f"no SLURM cluster on this machine: {e}")
    yield cluster
    cluster.stop()


@pytest.fixture
def slurm(slurm_cluster, monkeypatch):
    """The cluster, with SLURM's commands (submitit's sbatch included) pointed at it; no job outlives the test."""
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    yield slurm_cluster
    slurm_cluster.cancel_all()


def pytest_terminal_summary(terminalreporter):
    """Name each test that ran against the scheduler and how it ended, so that a quiet log still shows them."""
    reports = [r for outcome in ("passed", "failed", "error", "skipped")
               for r in terminalreporter.stats.get(outcome, []) if MARKER in getattr(r, "keywords", {})]
    if reports:
        terminalreporter.write_sep("-", "tests against a one-node SLURM cluster")
        for r in reports:
            skipped = r.skipped and isinstance(r.longrepr, tuple)  # (file, line, reason)
            why = f": {r.longrepr[2].removeprefix('Skipped: ')}" if skipped else ""
            terminalreporter.write_line(f"{r.outcome.upper()} {r.nodeid} ({r.duration:.0f} s){why}")
