"""`data pack`: exactly the images one part of a profile needs, as one zip in an ignored folder, so the part can
travel to a machine without the Decathlon archives (a remote runner that copies a working tree may cap what it
carries: 64 MiB here). JPEG bytes are stored as
they are (no recompression, no tar padding); the annotation files ride along deflated. The data layer reads a pack
as a Decathlon root: pass its path wherever a data root goes."""
from __future__ import annotations

import zipfile
from pathlib import Path

from .. import data, paths
from ..errors import DataError
from ..store import files
from ..study import profiles
from .pretrain import pretrain_config

CARRY_LIMIT = 64 * 2**20  # a pack this size or smaller travels with a working tree to a remote GPU runner


def parts(profile: profiles.Profile) -> dict[str, list[tuple]]:
    """Part name -> the (dataset, split, images per class, classes) selections it serves: one part per dataset of
    the profile, plus `pretrain` for profiles that start from our source model."""
    out = {}
    for d, classes in profile.datasets.items():
        out[d] = [(d, "train", n, classes) for n in profile.rows()] + [(d, "val", None, classes)]
    if profile.source is not None:  # the data the profile's source model is pretrained on
        src = pretrain_config()
        out["pretrain"] = [(src.dataset, split, None, src.classes) for split in ("train", "val")]
    return out


def pack(root: str | Path, selections: list[tuple], out: str | Path, seeds=(0,)) -> dict:
    """Write the images of `selections` (few-shot draws for every seed) and their annotation files to `out`."""
    names, splits = set(), set()
    for dataset, split, images_per_class, classes in selections:
        splits.add((dataset, split))
        for seed in seeds if images_per_class else (0,):
            names.update(data.select(data.annotations(root, dataset, split), images_per_class, classes, seed)
                         ["file_name"])
    source = data.open_source(root)
    with files.atomic_path(Path(out)) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
        for dataset, split in sorted(splits):
            z.writestr(f"annotations/{dataset}_{split}.json", source.annotation(dataset, split),
                       compress_type=zipfile.ZIP_DEFLATED)
        for f in sorted(names):
            z.writestr(f, source.read(f))
    size = Path(out).stat().st_size
    return {"path": str(out), "images": len(names), "bytes": size, "fits_carry": size <= CARRY_LIMIT}


def pack_part(profile: str, part: str, out: str | Path | None = None, root=None, seeds=None) -> dict:
    p = profiles.get(profile)
    available = parts(p)
    if part not in available:
        raise DataError(f"the {p.name} profile has no part {part!r}: choose one of {', '.join(available)}")
    out = Path(out or paths.data_dir() / "packs" / f"{p.name}-{part}.zip")
    info = pack(root or paths.default_data_root(), available[part], out, seeds or p.seeds)
    print(f"{out}: {info['images']} images, {info['bytes'] / 2**20:.1f} MiB"
          + ("" if info["fits_carry"] else " (over the 64 MiB a working tree can carry to a remote runner: split the part)"))
    return info
