"""Decathlon images as uint8 tensors: decoded once, cached, and the statistics they are normalised with.

Images are decoded once into an N x 3 x 72 x 72 uint8 tensor (the centre 72 x 72 of each image) and cached under a
key made from the resolved data root (folder or pack) and, per file, its name and fingerprint: size and mtime in a
folder, size and CRC-32 in a pack. A file changed in place, or another root with the same file names, decodes again;
an unchanged split loads at once.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms.v2 import functional as TF

from .. import paths
from ..core.config import share_count
from ..errors import DataError
from ..store import files
from .decathlon import annotations, select
from .sources import ImageSource, PackSource, open_source

# torchvision 0.29 deprecates its JPEG decoder in favour of torchcodec; it works, and keeps our dependencies few.
warnings.filterwarnings("ignore", "The image decoding and encoding capabilities of TorchVision", DeprecationWarning)

SIZE = 72  # Decathlon images have a shorter side of 72 px
CROP = 64  # training crop
CACHE_VERSION = 2  # 2: the key holds the data root and per-file mtime or CRC, not only sizes

# The paper's Table 2 (RGB, images scaled to [0, 1]); other datasets use stats of their train split.
TABLE2_STATS = {
    "aircraft": ((0.47983041, 0.51074066, 0.53437998), (0.21070221, 0.20508901, 0.23729657)),
    "cifar100": ((0.50705882, 0.48666667, 0.44078431), (0.26745098, 0.25647059, 0.27607843)),
}


def eval_side(crop: int) -> int:
    """The whole-image side for a training crop: crop * 72/64, rounded up to a multiple of 8 so that the three
    stride-2 stages divide it evenly (72 for 64, 40 for 32)."""
    return -(-crop * SIZE // CROP // 8) * 8


@dataclass
class Split:
    images: torch.Tensor  # uint8, N x 3 x 72 x 72
    labels: torch.Tensor  # int64, N
    num_classes: int
    files: list[str]
    min_per_class: int | None = None  # the fewest images a class contributes (< images_per_class only if allowed)

    def __len__(self):
        return len(self.labels)

    def to(self, device) -> "Split":
        return Split(self.images.to(device), self.labels.to(device), self.num_classes, self.files, self.min_per_class)

    def for_crop(self, crop: int) -> "Split":
        """The images scaled for a `crop` px training crop (low-res training) to `eval_side(crop)`."""
        if crop == CROP:
            return self
        side = eval_side(crop)
        return Split(TF.resize(self.images, [side, side], antialias=True), self.labels, self.num_classes, self.files,
                     self.min_per_class)


def subset(split: Split, index: torch.Tensor) -> Split:
    """The images of `split` at `index`, in that order."""
    counts = torch.bincount(split.labels[index], minlength=split.num_classes)
    fewest = int(counts[counts > 0].min()) if len(index) else None
    return Split(split.images[index], split.labels[index], split.num_classes, [split.files[i] for i in index.tolist()],
                 fewest)


def hold_out(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """(the rest, the held-out part): max(1, floor(fraction x n)) of each class's n images, drawn seeded, held out
    for tuning that never sees val. A class left without a training image is an error naming it."""
    n = len(split)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    by_class = perm[split.labels[perm].argsort(stable=True)]  # grouped by class, in random order within each
    labels = split.labels[by_class]
    counts = torch.bincount(split.labels, minlength=split.num_classes)
    held = torch.tensor([max(1, share_count(fraction, c)) for c in counts.tolist()], device=counts.device)
    empty = ((counts > 0) & (counts - held < 1)).nonzero().flatten().tolist()
    if empty:
        n = int(counts[empty[0]])
        raise DataError(f"holdout {fraction} leaves class {empty[0] + 1} ({n} image{'s' * (n != 1)}) without a "
                        "training image: hold out less, or take more images per class")
    rank = torch.arange(n) - (counts.cumsum(0) - counts)[labels]
    keep = rank < held[labels]
    return subset(split, by_class[~keep].sort().values), subset(split, by_class[keep].sort().values)


def decode_rgb(data: bytes, where: str) -> torch.Tensor:
    """Image bytes -> the whole image, uint8 RGB, as stored; a corrupt file is a DataError naming `where`."""
    try:
        return decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
    except RuntimeError as e:
        raise DataError(f"cannot decode image {where}: {e}. The file is corrupt: re-install the data.") from None


def decode(data: bytes, where: str) -> torch.Tensor:
    """JPEG bytes -> the centre 72 x 72 crop (after resizing the shorter side to 72 when it is not)."""
    img = decode_rgb(data, where)
    if min(img.shape[-2:]) != SIZE:
        img = TF.resize(img, SIZE, antialias=True)
    return TF.center_crop(img, [SIZE, SIZE])


def load(root: str | Path, name: str, split: str, images_per_class: int | None = None, classes=None, seed: int = 0,
         cache: str | Path | None = None, source: ImageSource | PackSource | None = None, *,
         allow_fewer: bool = False, draw: str = "seeded") -> Split:
    """Load one split (or its few-shot / class subset), decoding only the images it needs.

    `allow_fewer` takes all the images of a class that has fewer than `images_per_class`, and `draw` picks them
    seeded or as the first files by name (see `select`)."""
    source = source or open_source(root)
    df = select(annotations(root, name, split), images_per_class, classes, seed, allow_fewer=allow_fewer, draw=draw,
                where=f"{name} {split} (annotations/{name}_{split}.json in {root})")
    names = df["file_name"].tolist()
    path = Path(cache or paths.cache_dir()) / f"{name}_{split}_{len(names)}_{cache_key(source, names)}.pt"
    if path.exists():
        images = torch.load(path, mmap=True, weights_only=True)
    else:
        def one(f):
            return decode(source.read(f), str(Path(source.root) / f))
        with ThreadPoolExecutor(4) as pool:
            decoded = list(pool.map(one, names))
        images = torch.stack(decoded) if decoded else torch.empty(0, 3, SIZE, SIZE, dtype=torch.uint8)
        files.torch_save(images, path)
    labels = torch.tensor(df["label"].to_numpy(), dtype=torch.int64)
    return Split(images, labels, df.attrs["num_classes"], names, df.attrs["min_per_class"])


def cache_key(source: ImageSource | PackSource, names: list[str]) -> str:
    """What the decoded tensor depends on: the root it was read from and each file's name and fingerprint."""
    fingerprints = [(f, source.fingerprint(f)) for f in names]
    text = json.dumps([CACHE_VERSION, SIZE, str(Path(source.root).resolve()), fingerprints])
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images scaled to [0, 1]."""
    s = torch.zeros(3, dtype=torch.float64)
    s2 = torch.zeros(3, dtype=torch.float64)
    for i in range(0, len(images), chunk):
        x = images[i:i + chunk].to(torch.float64) / 255
        s += x.sum((0, 2, 3))
        s2 += (x * x).sum((0, 2, 3))
    return mean_std(s, s2, len(images) * images.shape[-1] * images.shape[-2])


def mean_std(s: torch.Tensor, s2: torch.Tensor, n: int) -> tuple[list[float], list[float]]:
    """Mean and (population) std from pooled sums; the variance is clamped at 0, as rounding can take a constant
    channel's s2/n - mean^2 a hair below it and its square root to NaN."""
    mean = s / n
    return mean.tolist(), (s2 / n - mean * mean).clamp(min=0).sqrt().tolist()


def normalisation(name: str, train: Split) -> tuple[list[float], list[float]]:
    """The paper's Table 2 values where it gives them, else the train split's own statistics."""
    if name in TABLE2_STATS:
        return tuple(map(list, TABLE2_STATS[name]))
    return channel_stats(train.images)
