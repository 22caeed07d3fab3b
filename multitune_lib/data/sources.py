"""Where images come from: an unpacked Decathlon root, or a pack written by `data pack` (one zip)."""
from __future__ import annotations

import zipfile
from pathlib import Path

from ..errors import DataError

HOW_TO_GET_DATA = (
    "Install the Decathlon data with `python -m multitune_lib data install --from DIR` (DIR holding the Decathlon archives) "
    "(or `--download` for the official archives), or pass the folder that holds annotations/ and data/."
)


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

    def fingerprint(self, file_name: str) -> tuple[int, int]:
        """Size and mtime: a file rewritten in place with the same size still changes the decode cache's key."""
        try:
            st = (self.root / file_name).stat()
            return st.st_size, st.st_mtime_ns
        except FileNotFoundError:
            raise DataError(f"missing image {self.root / file_name}. {HOW_TO_GET_DATA}") from None

    def read(self, file_name: str) -> bytes:
        return (self.root / file_name).read_bytes()


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

    def fingerprint(self, file_name: str) -> tuple[int, int]:
        """Size and CRC-32, both read from the zip's directory (no need to read the bytes)."""
        try:
            info = self.members[file_name]
            return info.file_size, info.CRC
        except KeyError:
            raise DataError(f"{file_name} is not in the pack {self.root}: it was written for other runs. "
                            "Write a pack for this part with `python -m multitune_lib data pack`.") from None

    def read(self, file_name: str) -> bytes:
        return self.zip.read(file_name)  # ZipFile reads are safe from the decoder's threads


def open_source(root: str | Path) -> ImageSource | PackSource:
    """A folder is an unpacked Decathlon root; a file is a pack written by `data pack`."""
    return PackSource(root) if Path(root).is_file() else ImageSource(root)
