"""`bench --concurrent`: K runs sharing the device in their own processes; a failing run is an error naming it."""
import multiprocessing as mp
import os

import pytest

from multitune_lib.errors import MultiTuneError
from multitune_lib.tools import bench, cli

SMALL = dict(batch=4, steps=2, backbone="resnet26", input_size=16)  # crops scaled to 16 px: a fast CPU step


def test_concurrent_runs_report_their_images_and_positive_speeds():
    got = bench.concurrent("finetune", "cpu", 2, **SMALL)
    assert [n for n, _, _ in got.runs] == [8, 8]  # steps x batch each
    assert all(end > start for _, start, end in got.runs)
    assert got.aggregate > 0 and got.per_run > 0


def test_a_failing_run_is_an_error_naming_it_not_a_hang():
    with pytest.raises(MultiTuneError, match=r"bench worker 1 of 2 \(nonesuch\) failed: ConfigError: unknown method"):
        bench.concurrent("nonesuch", "cpu", 2, timeout=60, **SMALL)


def test_a_failing_run_releases_the_runs_waiting_for_it():
    ctx = mp.get_context("spawn")
    barrier, reports = ctx.Barrier(2), ctx.Queue()
    bench.worker(0, barrier, reports, 60, 0, "nonesuch", "cpu", precision="auto", compile=False, **SMALL)
    assert barrier.broken  # the other run's wait ends now, not at the timeout
    rank, run, (kind, message) = reports.get(timeout=10)
    assert (rank, run, kind) == (0, None, "user") and "nonesuch" in message


def test_a_worker_dying_without_a_report_is_named():
    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=os._exit, args=(3,))
    proc.start()
    with pytest.raises(RuntimeError, match="bench worker 1 of 1 exited with status 3 without reporting"):
        bench.collect([proc], ctx.Queue(), timeout=60)
    proc.join()


@pytest.mark.parametrize("k", ["0", "-1", "two"])
def test_cli_rejects_a_concurrent_count_that_is_not_a_positive_integer(k, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["bench", "--concurrent", "1", k])
    assert exit.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        f"error: argument --concurrent: K must be an integer >= 1, got '{k}'")
