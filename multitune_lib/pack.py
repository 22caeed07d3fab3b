"""`data pack`: exactly the images one part of a profile needs, as one zip in an ignored folder, so the part can
travel to a machine without the Decathlon archives (the GPU machine takes 64 MiB at most). JPEG bytes are stored as
they are (no recompression, no tar padding); the annotation files ride along deflated. The data layer reads a pack
as a Decathlon root: pass its path wherever a data root goes."""
from __future__ import annotations

import zipfile
from pathlib import Path

from . import atomic, data, paths, profiles
from .errors import DataError

CARRY_LIMIT = 64 * 2**20  # what the device tool carries in all


class PackSource:
    """Reads annotations and JPEG bytes from a pack."""

    def __init__(self, path: str | Path):
        self.root = Path(path)
        try:
            self.zip = zipfile.ZipFile(self.root)
        except (zipfile.BadZipFile, OSError) as e:
            raise DataError(f"{self.root} is not a data pack ({e}); write one with `python -m multitune_lib data "
                            "pack`, or pass a Decathlon folder") from None
        self.members = {i.filename: i for i in self.zip.infolist()}

    def names(self) -> list[str]:
        return sorted(n[len("annotations/"): -len("_train.json")] for n in self.members
                      if n.startswith("annotations/") and n.endswith("_train.json"))

    def annotation(self, name: str, split: str) -> str | None:
        member = f"annotations/{name}_{split}.json"
        return self.zip.read(member).decode() if member in self.members else None

    def fingerprint(self, file_name: str) -> int:
        try:
            return self.members[file_name].file_size
        except KeyError:
            raise DataError(f"{file_name} is not in the pack {self.root}: it was written for other runs. "
                            "Write a pack for this part with `python -m multitune_lib data pack`.") from None

    def read(self, file_name: str) -> bytes:
        return self.zip.read(file_name)  # ZipFile reads are safe from the decoder's threads


# The pretraining part: the source model of the offline profile.
PRETRAIN = {"cifar100": tuple(range(1, 51))}


def parts(profile: profiles.Profile) -> dict[str, list[tuple]]:
    """Part name -> the (dataset, split, shots, classes) selections it serves: one part per dataset of the profile,
    plus `pretrain` for profiles that start from our source model."""
    out = {}
    for d, classes in profile.datasets.items():
        train = [(d, "train", profile.full_shots, classes)] if profile.full_rows else []
        train += [(d, "train", s, classes) for s in profile.shots]
        out[d] = train + [(d, "val", None, classes)]
    if profile.source is not None:
        out["pretrain"] = [(d, split, None, c) for d, c in PRETRAIN.items() for split in ("train", "val")]
    return out


def pack(root: str | Path, selections: list[tuple], out: str | Path, seeds=(0,)) -> dict:
    """Write the images of `selections` (few-shot draws for every seed) and their annotation files to `out`."""
    files, splits = set(), set()
    for dataset, split, shots, classes in selections:
        splits.add((dataset, split))
        for seed in seeds if shots else (0,):
            files.update(data.select(data.annotations(root, dataset, split), shots, classes, seed)["file_name"])
    source = data.open_source(root)
    with atomic.atomic_path(Path(out)) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
        for dataset, split in sorted(splits):
            z.writestr(f"annotations/{dataset}_{split}.json", source.annotation(dataset, split),
                       compress_type=zipfile.ZIP_DEFLATED)
        for f in sorted(files):
            z.writestr(f, source.read(f))
    size = Path(out).stat().st_size
    return {"path": str(out), "images": len(files), "bytes": size, "fits_carry": size <= CARRY_LIMIT}


def pack_part(profile: str, part: str, out: str | Path | None = None, root=None, seeds=None) -> dict:
    p = profiles.get(profile)
    available = parts(p)
    if part not in available:
        raise DataError(f"the {p.name} profile has no part {part!r}: choose one of {', '.join(available)}")
    out = Path(out or paths.data_dir() / "packs" / f"{p.name}-{part}.zip")
    info = pack(root or paths.default_data_root(), available[part], out, seeds or p.seeds)
    print(f"{out}: {info['images']} images, {info['bytes'] / 2**20:.1f} MiB"
          + ("" if info["fits_carry"] else " (over the 64 MiB the device tool carries: split the part)"))
    return info
