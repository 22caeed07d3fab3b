"""Visual Decathlon annotations (COCO-style) and the seeded few-shot and class subsets drawn from them."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..errors import DataError
from .sources import HOW_TO_GET_DATA, open_source


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


def select(df: pd.DataFrame, images_per_class: int | None = None, classes=None, seed: int = 0, *,
           allow_fewer: bool = False, where: str = "", draw: str = "seeded") -> pd.DataFrame:
    """Keep `classes` (1-based ids) and draw `images_per_class` images per class, stratified and seeded, or with
    draw="first_n" the first files of each class by name, as the authors' released code lists them.

    Labels are renumbered 0..k-1 in class order when a subset is taken. A kept class without images is an error, and
    so is one with fewer than `images_per_class` unless `allow_fewer` (then all of its images are taken). The smallest
    per-class count used lands in attrs["min_per_class"]; `where` (e.g. "aircraft train") names the split in errors.
    """
    n = df.attrs["num_classes"]
    ids = list(range(1, n + 1))
    if classes is not None:
        bad = [c for c in classes if not 1 <= c <= n]
        if bad:
            raise DataError(f"class ids {bad} out of range 1-{n}")
        ids = sorted(classes)
        df = df[df["class_id"].isin(classes)].copy()
        df["label"] = df["class_id"].map({c: i for i, c in enumerate(ids)})
        df.attrs["num_classes"] = len(ids)
        df.attrs["class_names"] = [df.attrs["class_names"][c - 1] for c in ids]
    if images_per_class is not None and images_per_class < 1:
        raise DataError(f"images_per_class must be positive, got {images_per_class}")
    counts = df["label"].value_counts().reindex(range(len(ids)), fill_value=0)
    check_counts(counts, ids, df.attrs["class_names"], images_per_class, allow_fewer, where or "this split")
    if images_per_class is not None:
        order = df.sort_values("file_name") if draw == "first_n" else df.sample(frac=1.0, random_state=seed)
        df = order.groupby("label").head(images_per_class)
    df = df.sort_values("image_id").reset_index(drop=True)
    df.attrs["min_per_class"] = int(min(counts.clip(upper=images_per_class), default=0))
    return df


def check_counts(counts: pd.Series, ids: list[int], names: list[str], wanted: int | None, allow_fewer: bool,
                 where: str) -> None:
    """Refuse a kept class without images, and (unless `allow_fewer`) one with fewer than `wanted`: a few-shot row
    that silently trains on less than it says would be reported as what it is not."""
    empty = counts.index[counts == 0]
    if len(empty):
        i = empty[0]
        raise DataError(f"{where}: class {ids[i]} {names[i]!r} has no images ({len(empty)} of the {len(ids)} kept "
                        "classes have none). Its annotation file is incomplete: re-install the data with `python -m "
                        "multitune_lib data install`, or leave the class out with --classes.")
    if wanted is None or allow_fewer:
        return
    short = counts[counts < wanted]
    if len(short):
        i = short.idxmin()
        raise DataError(f"{where}: {len(short)} of the {len(ids)} kept classes have fewer than the {wanted} images "
                        f"per class asked for (class {ids[i]} {names[i]!r} has {short[i]}). Ask for at most "
                        f"{counts.min()} images per class, or pass --allow-fewer to train on the images that exist "
                        "(the run records min_per_class).")
