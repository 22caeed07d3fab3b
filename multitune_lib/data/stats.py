"""The paper's Table 2: per-channel mean and std over every pixel of the whole Decathlon images.

The image cache (images.py) holds each image's centre 72 x 72, which leaves out the sides of the wider aircraft
images (about 107 x 72); Table 2 is over the images as stored, so they are decoded again here, neither cropped nor
resized. Images differ in size, so the sums are pooled pixel by pixel, not averaged image by image.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from ..errors import DataError
from .decathlon import annotations, select
from .images import decode_rgb, mean_std
from .sources import open_source


def pixel_sums(data: bytes, where: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """One whole image's per-channel sum and sum of squares (RGB in [0, 1], float64) and its pixel count."""
    img = decode_rgb(data, where)
    x = img.to(torch.float64) / 255
    return x.sum((1, 2)), (x * x).sum((1, 2)), img.shape[-1] * img.shape[-2]


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
