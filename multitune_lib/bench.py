"""`bench`: images/s of one training step at batch 128 and 64 px, ours against a reference loop written the way the
original code works (ImageFolder, PIL decoding every epoch, DataLoader, fp32). Prints figures; asserts nothing."""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision import datasets, transforms
from torchvision.io import encode_jpeg

from . import data, env, methods
from .config import RunConfig
from .models import resnet26
from .train import precision_for, sync

CLASSES = 10
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


def ours(method: str, device, batch: int, steps: int, precision: str, compile: bool) -> float:
    """Our step: uint8 images already on the device, augmentation there, autocast, channels_last, fused SGD."""
    cfg = RunConfig(method=method, dataset="aircraft", epochs=1).resolved()
    built, reg = methods.build(cfg, lambda: resnet26(CLASSES), CLASSES, device)
    model = torch.compile(built.model) if compile else built.model
    opt = torch.optim.SGD(built.groups, lr=0.1, momentum=0.9, fused=device.type == "cuda")
    images = torch.randint(0, 256, (4 * batch, 3, data.SIZE, data.SIZE), dtype=torch.uint8, device=device)
    labels = torch.randint(0, CLASSES, (4 * batch,), device=device)
    norm = data.Normalise(MEAN, STD, device)
    gen = torch.Generator(device).manual_seed(0)
    dtype = precision_for(device, precision)
    model.train()

    def step():
        idx = torch.randint(0, len(images), (batch,), generator=gen, device=device)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model(norm.augment(images[idx], gen))
        loss = F.cross_entropy(out.float(), labels[idx])
        if reg is not None:
            loss = loss + reg()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return batch / timed(step, steps, device)


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


def main(device=None, batch_size: int = 128, steps: int | None = None, precision: str = "auto",
         compile: bool = False, workers: int | None = None) -> dict:
    device = env.pick_device(device)
    steps = steps or (50 if device.type == "cuda" else 5)
    workers = min(os.cpu_count() or 1, 8) if workers is None else workers
    resolved = "bf16" if precision_for(device, precision) == torch.bfloat16 else "fp32"  # what auto chose here
    print(f"bench on {env.device_name(device)} ({device}), torch {torch.__version__}, batch {batch_size}, "
          f"{steps} timed steps, precision {resolved} (asked: {precision})")
    figures = {}
    for method in ("finetune", "spottune", "multitune"):
        figures[method] = ours(method, device, batch_size, steps, precision, compile)
        print(f"  ours      {method:10s} {figures[method]:9.1f} images/s", flush=True)
    figures["reference"] = reference(device, batch_size, steps, workers)
    print(f"  reference finetune   {figures['reference']:9.1f} images/s  (ImageFolder + PIL + DataLoader "
          f"with {workers} workers, fp32)")
    print(f"  ratio ours / reference (finetune): {figures['finetune'] / figures['reference']:.2f}x")
    return figures
