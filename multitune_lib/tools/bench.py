"""`bench`: images/s of the training step at batch 128 (ResNet-26 at 64 px, EfficientNet-Lite0 at the CPU
profile's input size) and of evaluation, ours against a reference loop written the way the original code works
(ImageFolder, PIL decoding every epoch, DataLoader, fp32). Ours is the trainer's own `train_epoch` over synthetic
images already on the device. Prints figures; asserts nothing."""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision import datasets, transforms
from torchvision.io import encode_jpeg

from .. import data, env
from ..backbones.resnet26 import resnet26
from ..core.config import BATCH_SIZE, RunConfig
from ..core.trainer import Trainer, precision_for, sync
from ..study import profiles

CLASSES = 10
COMPARED = ("finetune", "spottune", "multitune")
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
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (images, 3, data.SIZE, data.SIZE), dtype=torch.uint8, generator=g)
    split = data.Split(pixels, torch.arange(images) % CLASSES, CLASSES, [])
    cfg = RunConfig(method=method, dataset="aircraft", batch_size=batch, backbone=backbone, input_size=input_size)
    return Trainer(cfg, split, split, device=device, precision=precision, compile=compile)


def ours(method: str, device, batch: int, steps: int, precision: str, compile: bool, backbone: str = "resnet26",
         input_size: int | None = None) -> tuple[float, float]:
    """Images/s of our step as training runs it (uint8 images on the device, augmentation there, autocast,
    channels_last, fused SGD): `steps` batches make one `train_epoch`, timed after two warm-up steps; and of
    `evaluate` on the same images (whole images, resized as the config says)."""
    trainer = trainer_on_noise(method, device, batch, steps * batch, precision, compile, backbone, input_size)
    x, y = trainer.norm(trainer.augment(trainer.train.images[:batch], trainer.gen)), trainer.train.labels[:batch]
    for _ in range(2):
        trainer.step(x, y)
    sync(device)
    t = time.perf_counter()
    trainer.train_epoch()
    sync(device)
    train = len(trainer.train) / (time.perf_counter() - t)
    t = time.perf_counter()
    trainer.evaluate()
    return train, len(trainer.val) / (time.perf_counter() - t)


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
         compile: bool = False, workers: int | None = None) -> dict:
    """Images/s of finetune, SpotTune and MultiTune and of the reference; batch size: the config's default."""
    device = env.pick_device(device)
    batch_size = batch_size or BATCH_SIZE
    steps = steps or (50 if device.type == "cuda" else 5)
    workers = min(os.cpu_count() or 1, 8) if workers is None else workers
    resolved = "bf16" if precision_for(device, precision) == torch.bfloat16 else "fp32"  # what auto chose here
    print(f"bench on {env.device_name(device)} ({device}), torch {torch.__version__}, batch {batch_size}, "
          f"{steps} timed steps, precision {resolved} (asked: {precision})")
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
