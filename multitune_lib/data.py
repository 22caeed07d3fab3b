"""Visual Decathlon datasets: annotations, seeded few-shot and class subsets, a uint8 cache, device-side augmentation.

Images are decoded once into an N x 3 x 72 x 72 uint8 tensor (the centre 72 x 72 of each image) and cached under a
key made from the list of source files, so a changed dataset rebuilds and an unchanged one loads at once.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms.v2 import functional as TF

from . import atomic, paths
from .errors import DataError

# torchvision 0.29 deprecates its JPEG decoder in favour of torchcodec; it works, and keeps our dependencies few.
warnings.filterwarnings("ignore", "The image decoding and encoding capabilities of TorchVision", DeprecationWarning)

SIZE = 72  # Decathlon images have a shorter side of 72 px
CROP = 64  # training crop
CACHE_VERSION = 1

# The paper's Table 2 (RGB, images scaled to [0, 1]); other datasets use stats of their train split.
TABLE2_STATS = {
    "aircraft": ((0.47983041, 0.51074066, 0.53437998), (0.21070221, 0.20508901, 0.23729657)),
    "cifar100": ((0.50705882, 0.48666667, 0.44078431), (0.26745098, 0.25647059, 0.27607843)),
}

HOW_TO_GET_DATA = (
    "Install the Decathlon data with `python -m multitune_lib data install --from ../shared/decathlon` "
    "(or `--download` for the official archives), or pass the folder that holds annotations/ and data/."
)


def available(root: str | Path) -> list[str]:
    """Dataset names with a train annotation file under `root` (a folder or a pack)."""
    return open_source(root).names()


def annotations(root: str | Path, name: str, split: str) -> pd.DataFrame:
    """One row per image: file_name (relative to root), label (category_id - min), class_id (1-based), width, height."""
    source = open_source(root)
    where = f"{source.root}:annotations/{name}_{split}.json"
    text = source.annotation(name, split)
    if text is None:
        names = source.names()
        if name not in names:
            raise DataError(f"unknown dataset {name!r}: no {where}. Datasets under {source.root}: {names or 'none'}. "
                            f"{HOW_TO_GET_DATA}")
        raise DataError(f"missing annotation file {where} (split {split!r}). {HOW_TO_GET_DATA}")
    try:
        ann = json.loads(text)
        images = pd.DataFrame(ann["images"]).set_index("id")
        labels = pd.DataFrame(ann["annotations"]).set_index("image_id")["category_id"]
        first = min(c["id"] for c in ann["categories"])
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"{where} is not a Decathlon (COCO-style) annotation file: {e!r}. "
                        f"Expected images[{{id,file_name,width,height}}], annotations[{{image_id,category_id}}], "
                        f"categories. {HOW_TO_GET_DATA}") from e
    df = images.join(labels, how="inner")
    if len(df) != len(images):
        raise DataError(f"{where}: {len(images) - len(df)} images have no annotation; re-install the devkit.")
    df["label"] = (df.pop("category_id") - first).astype("int64")
    df["class_id"] = df["label"] + 1
    df.attrs["num_classes"] = len(ann["categories"])
    df.attrs["class_names"] = [c["name"] for c in sorted(ann["categories"], key=lambda c: c["id"])]
    return df.reset_index(names="image_id")[["image_id", "file_name", "label", "class_id", "width", "height"]]


def parse_classes(spec: str | None) -> tuple[int, ...] | None:
    """'1-50' or '1,3,7-9' -> 1-based class ids (the Decathlon class folder numbers)."""
    if spec in (None, "", "all"):
        return None
    ids: list[int] = []
    try:
        for part in str(spec).split(","):
            lo, _, hi = part.strip().partition("-")
            ids.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise DataError(f"bad class list {spec!r}: use 1-based ids like '1-50' or '1,3,7-9'") from None
    return tuple(sorted(set(ids)))


def select(df: pd.DataFrame, shots: int | None = None, classes=None, seed: int = 0) -> pd.DataFrame:
    """Keep `classes` (1-based ids) and draw `shots` images per class, stratified and seeded.

    Labels are renumbered 0..k-1 in class order when a subset is taken.
    """
    n = df.attrs["num_classes"]
    if classes is not None:
        bad = [c for c in classes if not 1 <= c <= n]
        if bad:
            raise DataError(f"class ids {bad} out of range 1-{n}")
        df = df[df["class_id"].isin(classes)].copy()
        df["label"] = df["class_id"].map({c: i for i, c in enumerate(sorted(classes))})
        df.attrs["num_classes"] = len(classes)
        df.attrs["class_names"] = [df.attrs["class_names"][c - 1] for c in sorted(classes)]
    if shots is not None:
        if shots < 1:
            raise DataError(f"shots must be a positive number of images per class, got {shots}")
        df = df.sample(frac=1.0, random_state=seed).groupby("label").head(shots)
    return df.sort_values("image_id").reset_index(drop=True)


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

    def __len__(self):
        return len(self.labels)

    def to(self, device) -> "Split":
        return Split(self.images.to(device), self.labels.to(device), self.num_classes, self.files)

    def for_crop(self, crop: int) -> "Split":
        """The images scaled for a `crop` px training crop (low-res training) to `eval_side(crop)`."""
        if crop == CROP:
            return self
        side = eval_side(crop)
        return Split(TF.resize(self.images, [side, side], antialias=True), self.labels, self.num_classes, self.files)


class ImageSource:
    """An unpacked Decathlon root: annotations/<name>_<split>.json and the JPEGs under data/."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"Decathlon root {self.root} does not exist. {HOW_TO_GET_DATA}")

    def names(self) -> list[str]:
        return sorted(p.name[: -len("_train.json")] for p in (self.root / "annotations").glob("*_train.json"))

    def annotation(self, name: str, split: str) -> str | None:
        path = self.root / "annotations" / f"{name}_{split}.json"
        return path.read_text() if path.exists() else None

    def fingerprint(self, file_name: str) -> int:
        try:
            return (self.root / file_name).stat().st_size
        except FileNotFoundError:
            raise DataError(f"missing image {self.root / file_name}. {HOW_TO_GET_DATA}") from None

    def read(self, file_name: str) -> bytes:
        return (self.root / file_name).read_bytes()


def open_source(root: str | Path) -> ImageSource:
    """A folder is an unpacked Decathlon root; a file is a pack written by `data pack`."""
    if Path(root).is_file():
        from .pack import PackSource
        return PackSource(root)
    return ImageSource(root)


def decode(data: bytes, where: str) -> torch.Tensor:
    """JPEG bytes -> the centre 72 x 72 crop (after resizing the shorter side to 72 when it is not)."""
    try:
        img = decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
    except RuntimeError as e:
        raise DataError(f"cannot decode image {where}: {e}. The file is corrupt: re-install the data.") from None
    if min(img.shape[-2:]) != SIZE:
        img = TF.resize(img, SIZE, antialias=True)
    return TF.center_crop(img, [SIZE, SIZE])


def load(root: str | Path, name: str, split: str, shots: int | None = None, classes=None, seed: int = 0,
         cache: str | Path | None = None, source: ImageSource | None = None) -> Split:
    """Load one split (or its few-shot / class subset), decoding only the images it needs."""
    source = source or open_source(root)
    df = select(annotations(root, name, split), shots, classes, seed)
    files = df["file_name"].tolist()
    key = hashlib.sha1(json.dumps([CACHE_VERSION, SIZE, [(f, source.fingerprint(f)) for f in files]])
                       .encode()).hexdigest()[:16]
    path = Path(cache or paths.cache_dir()) / f"{name}_{split}_{len(files)}_{key}.pt"
    if path.exists():
        images = torch.load(path, mmap=True, weights_only=True)
    else:
        def one(f):
            return decode(source.read(f), str(Path(source.root) / f))
        with ThreadPoolExecutor(4) as pool:
            images = torch.stack(list(pool.map(one, files))) if files else torch.empty(0, 3, SIZE, SIZE, dtype=torch.uint8)
        atomic.torch_save(images, path)
    labels = torch.tensor(df["label"].to_numpy(), dtype=torch.int64)
    return Split(images, labels, df.attrs["num_classes"], files)


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images scaled to [0, 1]."""
    s = torch.zeros(3, dtype=torch.float64)
    s2 = torch.zeros(3, dtype=torch.float64)
    for i in range(0, len(images), chunk):
        x = images[i:i + chunk].to(torch.float64) / 255
        s += x.sum((0, 2, 3))
        s2 += (x * x).sum((0, 2, 3))
    n = len(images) * images.shape[-1] * images.shape[-2]
    mean = s / n
    return mean.tolist(), (s2 / n - mean * mean).sqrt().tolist()


def normalisation(name: str, train: Split) -> tuple[list[float], list[float]]:
    """The paper's Table 2 values where it gives them, else the train split's own statistics."""
    if name in TABLE2_STATS:
        return tuple(map(list, TABLE2_STATS[name]))
    return channel_stats(train.images)


class Normalise:
    """uint8 batches -> normalised float, channels_last, on the batch's device; random crop + flip when training."""

    def __init__(self, mean, std, device):
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(std, device=device).view(1, 3, 1, 1) * 255

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.float() - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last)

    def augment(self, x: torch.Tensor, gen: torch.Generator, crop: int = CROP) -> torch.Tensor:
        """Per-image random crop and horizontal flip as one gather, so it runs on the GPU with the model."""
        n, _, h, w = x.shape
        dev = x.device
        oy = torch.randint(0, h - crop + 1, (n, 1), generator=gen, device=dev)
        ox = torch.randint(0, w - crop + 1, (n, 1), generator=gen, device=dev)
        flip = torch.rand((n, 1), generator=gen, device=dev) < 0.5
        r = torch.arange(crop, device=dev).view(1, crop)
        iy = oy + r
        ix = ox + torch.where(flip, crop - 1 - r, r)
        out = x[torch.arange(n, device=dev).view(n, 1, 1), :, iy.view(n, crop, 1), ix.view(n, 1, crop)]
        return self(out.permute(0, 3, 1, 2))
