"""`bench`: images/s of the training step at batch 128 (ResNet-26 at 64 px, EfficientNet-Lite0 at the CPU
profile's input size) and of evaluation, ours against a reference loop written the way the original code works
(ImageFolder, PIL decoding every epoch, DataLoader, fp32). Ours is the trainer's own `train_epoch` over synthetic
images already on the device. With --concurrent, images/s of K runs sharing the device instead, each in its
own process. Prints figures; asserts nothing."""
from __future__ import annotations

import multiprocessing as mp
import os
import queue as queues
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torchvision import datasets, transforms
from torchvision.io import encode_jpeg

from .. import data, env
from ..backbones.resnet26 import resnet26
from ..core.config import BATCH_SIZE, RunConfig
from ..core.registry import METHODS
from ..core.trainer import Trainer, precision_for, sync
from ..errors import MultiTuneError, one_line
from ..study import profiles

CLASSES = 10
COMPARED = ("finetune", "spottune", "multitune", "amf")
# (backbone, input size, methods): the paper's network at 64 px crops, and Lite0 at the CPU profile's input size.
ROWS = (("resnet26", None, COMPARED),
        ("efficientnet_lite0", profiles.get("imagenet-cpu").input_size, COMPARED))


def size(input_size: int | None) -> str:
    return "64 px" if input_size is None else f"{input_size} px"
MEAN, STD = data.TABLE2_STATS["aircraft"]


def timed(step, steps: int, device) -> float:
    """Seconds per step after two warm-up steps."""
    for _ in range(2):
        step()
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return (time.perf_counter() - t) / steps


def trainer_on_noise(method: str, device, batch: int, images: int, precision: str, compile: bool,
                     backbone: str = "resnet26", input_size: int | None = None) -> Trainer:
    """A trainer on `images` random Decathlon-sized uint8 images already on the device, as training holds them."""
    if compile:  # every row compiles the one `Trainer.losses` anew: past dynamo's recompile limit it would run eager
        torch._dynamo.reset()
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (images, 3, data.SIZE, data.SIZE), dtype=torch.uint8, generator=g)
    split = data.Split(pixels, torch.arange(images) % CLASSES, CLASSES, [])
    cfg = RunConfig(method=method, dataset="aircraft", batch_size=batch, backbone=backbone, input_size=input_size,
                    **METHODS.get(method).timed)
    return Trainer(cfg, split, split, device=device, precision=precision, compile=compile)


def ours(method: str, device, batch: int, steps: int, precision: str, compile: bool, backbone: str = "resnet26",
         input_size: int | None = None) -> tuple[float, float]:
    """Images/s of our step as training runs it (uint8 images on the device, augmentation there, autocast,
    channels_last, fused SGD): `steps` batches make one `train_epoch`, timed after two warm-up steps; and of
    `evaluate` on the same images (whole images, resized as the config says)."""
    trainer = trainer_on_noise(method, device, batch, steps * batch, precision, compile, backbone, input_size)
    warm_up(trainer, batch)
    t = time.perf_counter()
    trainer.train_epoch()
    sync(device)
    train = len(trainer.train) / (time.perf_counter() - t)
    t = time.perf_counter()
    trainer.evaluate()
    return train, len(trainer.val) / (time.perf_counter() - t)


def warm_up(trainer: Trainer, batch: int) -> None:
    """Two steps on one batch, so that timing starts after the first steps' costs (allocation, kernel choice)."""
    x, y = trainer.norm(trainer.augment(trainer.train.images[:batch], trainer.gen)), trainer.train.labels[:batch]
    for _ in range(2):
        trainer.step(x, y)
    sync(trainer.device)


class Shared(NamedTuple):
    """`concurrent`'s outcome: each run's (images, start, end) and images/s of all runs together and of one run."""
    runs: list[tuple[int, float, float]]
    aggregate: float
    per_run: float


def worker(rank: int, barrier, reports, timeout: float, threads: int, method: str, device, batch: int, steps: int,
           precision: str, compile: bool, backbone: str, input_size: int | None) -> None:
    """One of `concurrent`'s runs, in its own process: built and warmed up as in `ours`, then one `train_epoch`
    timed from the moment every run is ready. Reports (rank, (images, start, end), None) or (rank, None, (kind,
    message)) once, whatever happens."""
    try:
        if threads:
            torch.set_num_threads(threads)
        trainer = trainer_on_noise(method, device, batch, steps * batch, precision, compile, backbone, input_size)
        warm_up(trainer, batch)
        barrier.wait(timeout)
        start = time.time()  # wall clock, not perf_counter: the one clock whose readings compare across processes
        trainer.train_epoch()
        sync(trainer.device)
        reports.put((rank, (len(trainer.train), start, time.time()), None))
    except threading.BrokenBarrierError:
        reports.put((rank, None, ("broken", "another run failed, or not all were ready within "
                                            f"{timeout:.0f} s")))
    except Exception as e:
        traceback.print_exc()  # the whole story on stderr; the report carries one line
        barrier.abort()  # the runs waiting for this one stop now, not at the timeout
        reports.put((rank, None, ("user" if isinstance(e, MultiTuneError) else "bug", one_line(e))))


def collect(procs: list, reports, timeout: float) -> dict:
    """Each worker's one report by rank, waiting at most `timeout` s in all; a worker that died without one (killed,
    out of memory, a crash in native code) is an error naming it, not a wait for a report that never comes."""
    got, deadline = {}, time.monotonic() + timeout
    while len(got) < len(procs):
        try:
            rank, run, error = reports.get(timeout=1)
            got[rank] = run, error
        except queues.Empty:
            # A worker that reports exits 0, so a non-zero status means no report is on its way.
            dead = [r for r, p in enumerate(procs) if r not in got and p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"bench worker {dead[0] + 1} of {len(procs)} exited with status "
                                   f"{procs[dead[0]].exitcode} without reporting")
            if time.monotonic() > deadline:
                missing = [r + 1 for r in range(len(procs)) if r not in got]
                raise TimeoutError(f"bench workers {missing} of {len(procs)} reported nothing within {timeout:.0f} s")
    return got


def concurrent(method: str, device, k: int, batch: int, steps: int, precision: str = "auto", compile: bool = False,
               backbone: str = "resnet26", input_size: int | None = None, timeout: float = 600.0) -> Shared:
    """K runs of `method` sharing `device`, each in its own process (on a GPU its own CUDA context, on the CPU
    cpu_count // K threads), each timing one `train_epoch` of `steps` batches from a common start."""
    device = env.pick_device(device)
    ctx = mp.get_context("spawn")  # fork would copy the parent's CUDA state and thread pools into the children
    barrier, reports = ctx.Barrier(k), ctx.Queue()
    threads = env.cpu_share(k) if device.type == "cpu" else 0
    procs = [ctx.Process(target=worker, args=(rank, barrier, reports, timeout, threads, method, device, batch, steps,
                                              precision, compile, backbone, input_size)) for rank in range(k)]
    for p in procs:
        p.start()
    try:
        got = collect(procs, reports, timeout)
    finally:
        for p in procs:  # after a failure the others may still be building or training: stop them
            p.join(5)
            if p.is_alive():
                p.terminate()
                p.join()
    failed = {r: error for r, (_, error) in got.items() if error}
    if failed:  # the run that failed, rather than those it left waiting at the barrier
        rank, (kind, message) = min({r: e for r, e in failed.items() if e[0] != "broken"}.items() or failed.items())
        raise (MultiTuneError if kind == "user" else RuntimeError)(
            f"bench worker {rank + 1} of {k} ({method}) failed: {message}")
    runs = [got[r][0] for r in range(k)]
    aggregate = sum(n for n, _, _ in runs) / (max(end for _, _, end in runs) - min(start for _, start, _ in runs))
    return Shared(runs, aggregate, sum(n / (end - start) for n, start, end in runs) / k)


def shared(device, batch: int, steps: int, precision: str, compile: bool, ks: list[int]) -> dict:
    """Images/s of one run and of K runs together on ResNet-26 for each K, and the speed-up over one run alone
    (K = 1 is always measured: it is the baseline)."""
    backbone, input_size, methods = ROWS[0]
    figures = {}
    for k in sorted({1, *ks}):
        for method in methods:
            got = figures[f"{backbone}/{method}/{k}"] = concurrent(method, device, k, batch, steps, precision,
                                                                   compile, backbone, input_size)
            alone = figures[f"{backbone}/{method}/1"].aggregate
            print(f"  shared K={k:<3d} {backbone:18s} {method:10s} {size(input_size):>6s} {got.per_run:9.1f} "
                  f"images/s per run, {got.aggregate:9.1f} in all ({got.aggregate / alone:.2f}x K=1)", flush=True)
    return figures


def write_jpegs(folder: Path, n: int) -> None:
    """Smooth random images of Decathlon aircraft size (72 x 108) as JPEGs in ImageFolder layout."""
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        low = torch.randint(0, 256, (3, 9, 14), generator=g, dtype=torch.uint8)
        img = F.interpolate(low[None].float(), size=(72, 108), mode="bilinear")[0].to(torch.uint8)
        d = folder / f"{i % CLASSES:04d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{i:06d}.jpg").write_bytes(encode_jpeg(img, quality=90).numpy().tobytes())


def reference(device, batch: int, steps: int, workers: int) -> float:
    """The original recipe: PIL decoding and transforms in DataLoader workers every step, fp32 NCHW, plain SGD."""
    model = resnet26(CLASSES).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    tf = transforms.Compose([transforms.CenterCrop(72), transforms.RandomCrop(64), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    with tempfile.TemporaryDirectory() as tmp:
        write_jpegs(Path(tmp), 4 * batch)
        loader = torch.utils.data.DataLoader(datasets.ImageFolder(tmp, tf), batch_size=batch, shuffle=True,
                                             num_workers=workers, pin_memory=device.type == "cuda", drop_last=True,
                                             persistent_workers=workers > 0)
        batches = iter(())

        def step():
            nonlocal batches
            try:
                x, y = next(batches)
            except StopIteration:
                batches = iter(loader)
                x, y = next(batches)
            loss = F.cross_entropy(model(x.to(device)), y.to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()

        return batch / timed(step, steps, device)


def main(device=None, batch_size: int | None = None, steps: int | None = None, precision: str = "auto",
         compile: bool = False, workers: int | None = None, concurrent: list[int] | None = None) -> dict:
    """Images/s of finetune, SpotTune, MultiTune and AMF and of the reference, or with `concurrent` (a list of K) of
    K runs sharing the device; batch size: the config's default."""
    device = env.pick_device(device)
    batch_size = batch_size or BATCH_SIZE
    steps = steps or (50 if device.type == "cuda" else 5)
    workers = min(os.cpu_count() or 1, 8) if workers is None else workers
    resolved = "bf16" if precision_for(device, precision) == torch.bfloat16 else "fp32"  # what auto chose here
    print(f"bench on {env.device_name(device)} ({device}), torch {torch.__version__}, batch {batch_size}, "
          f"{steps} timed steps, precision {resolved} (asked: {precision})")
    if concurrent:
        threads = "" if device.type == "cuda" else f", {os.cpu_count()} CPUs // K threads each"
        print(f"  K runs at once, each its own process{threads}")
        return shared(device, batch_size, steps, precision, compile, concurrent)
    figures = {}
    for backbone, input_size, methods in ROWS:
        for method in methods:
            train, evaluate = ours(method, device, batch_size, steps, precision, compile, backbone, input_size)
            figures[f"{backbone}/{method}"] = train
            print(f"  ours      {backbone:18s} {method:10s} {size(input_size):>6s} {train:9.1f} images/s "
                  f"(evaluation {evaluate:7.1f})", flush=True)
    figures["reference"] = reference(device, batch_size, steps, workers)
    print(f"  reference finetune   {figures['reference']:9.1f} images/s  (ImageFolder + PIL + DataLoader "
          f"with {workers} workers, fp32)")
    print(f"  ratio ours / reference (ResNet-26 finetune): "
          f"{figures['resnet26/finetune'] / figures['reference']:.2f}x")
    return figures
