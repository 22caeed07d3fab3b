"""Batches on the device: uint8 -> normalised float (channels_last), and the training crop and flip as one gather,
so augmentation runs on the GPU with the model."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .images import CROP


class Normalise:
    """uint8 batches -> (x / 255 - mean) / std as float, channels_last, on the batch's device; resized bilinearly
    to `size` x `size` px where a size is given (antialiased when shrinking)."""

    def __init__(self, mean, std, device, size: int | None = None):
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(std, device=device).view(1, 3, 1, 1) * 255
        self.size = size

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.float() - self.mean) / self.std
        if self.size is not None and tuple(x.shape[-2:]) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        return x.contiguous(memory_format=torch.channels_last)


def augmentation(kind: str, crop: int, side: int) -> tuple["RandomCropFlip", "RandomCropFlip | None"]:
    """(training augmentation, evaluation flip or None) for the config's `augment`:
    crop_flip: random crop and flip, the whole image at evaluation (SpotTune's Decathlon practice; the paper is silent);
    flip_both: the whole image flipped at random in training and at evaluation (MultiTune's released code);
    none: the whole image as it is (SpotTune's released code)."""
    if kind == "crop_flip":
        return RandomCropFlip(crop), None
    if kind == "flip_both":
        return RandomCropFlip(side), RandomCropFlip(side)
    if kind == "none":
        return RandomCropFlip(side, flip=False), None
    raise ValueError(f"augment must be crop_flip, flip_both or none, got {kind!r}")


class RandomCropFlip:
    """Per-image random `crop` x `crop` window and (with `flip`) horizontal flip of a uint8 batch, seeded by `gen`.
    A crop the size of the image keeps it whole."""

    def __init__(self, crop: int = CROP, flip: bool = True):
        self.crop, self.flip = crop, flip

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        crop, dev = self.crop, x.device
        if crop == h == w and not self.flip:
            return x
        oy = torch.randint(0, h - crop + 1, (n, 1), generator=gen, device=dev)
        ox = torch.randint(0, w - crop + 1, (n, 1), generator=gen, device=dev)
        flip = torch.rand((n, 1), generator=gen, device=dev) < 0.5
        flip &= self.flip
        r = torch.arange(crop, device=dev).view(1, crop)
        iy = oy + r
        ix = ox + torch.where(flip, crop - 1 - r, r)
        out = x[torch.arange(n, device=dev).view(n, 1, 1), :, iy.view(n, crop, 1), ix.view(n, 1, crop)]
        return out.permute(0, 3, 1, 2)
