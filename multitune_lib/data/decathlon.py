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


def select(df: pd.DataFrame, images_per_class: int | None = None, classes=None, seed: int = 0) -> pd.DataFrame:
    """Keep `classes` (1-based ids) and draw `images_per_class` images per class, stratified and seeded.

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
    if images_per_class is not None:
        if images_per_class < 1:
            raise DataError(f"images_per_class must be positive, got {images_per_class}")
        df = df.sample(frac=1.0, random_state=seed).groupby("label").head(images_per_class)
    return df.sort_values("image_id").reset_index(drop=True)
