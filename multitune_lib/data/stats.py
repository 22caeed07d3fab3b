"""The paper's Table 2: per-channel mean and std over every pixel of the whole Decathlon images.

The image cache (images.py) holds each image's centre 72 x 72, which leaves out the sides of the wider aircraft
images (about 107 x 72); Table 2 is over the images as stored, so they are decoded again here, neither cropped nor
resized. Images differ in size, so the sums are pooled pixel by pixel, not averaged image by image.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torchvision.io import ImageReadMode, decode_image

from ..errors import DataError
from .decathlon import annotations, select
from .sources import open_source


def pixel_sums(data: bytes, where: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """One whole image's per-channel sum and sum of squares (RGB in [0, 1], float64) and its pixel count."""
    try:
        img = decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
    except RuntimeError as e:
        raise DataError(f"cannot decode image {where}: {e}. The file is corrupt: re-install the data.") from None
    x = img.to(torch.float64) / 255
    return x.sum((1, 2)), (x * x).sum((1, 2)), img.shape[-1] * img.shape[-2]


def mean_std(s: torch.Tensor, s2: torch.Tensor, n: int) -> tuple[list[float], list[float]]:
    """Mean and (population) std from pooled sums; the variance is clamped at 0, as rounding can take a constant
    channel's s2/n - mean^2 a hair below it and its square root to NaN."""
    mean = s / n
    return mean.tolist(), (s2 / n - mean * mean).clamp(min=0).sqrt().tolist()


def whole_image_stats(root: str | Path, name: str, split: str = "train", images_per_class: int | None = None,
                      classes=None, seed: int = 0) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of RGB scaled to [0, 1] over every pixel of the whole images of a split, or of its
    seeded subset (`select`): what the paper's Table 2 gives."""
    source = open_source(root)
    where = f"{name} {split} (annotations/{name}_{split}.json in {root})"
    df = select(annotations(root, name, split), images_per_class, classes, seed, where=where)
    names = df["file_name"].tolist()
    if not names:
        raise DataError(f"{where}: no images to compute a mean and std over. Choose other classes or another split.")

    def one(f):
        return pixel_sums(source.read(f), str(Path(source.root) / f))
    with ThreadPoolExecutor(4) as pool:
        sums = list(pool.map(one, names))
    s, s2 = (torch.stack(part).sum(0) for part in list(zip(*sums))[:2])
    return mean_std(s, s2, sum(n for _, _, n in sums))
