"""`data install`: unpack the Decathlon archives into the ignored data folder, checking SHA256SUMS.

Layout produced (the official one): <dest>/decathlon-1.0/annotations/*.json and <dest>/decathlon-1.0/data/<name>/.
Installing again is a no-op for archives whose checksum matches what was installed.
"""
from __future__ import annotations

import tarfile
import tempfile
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import DataError
from ..store import files
from ..store.files import sha256

OFFICIAL = {  # the Visual Decathlon release (Rebuffi et al. 2017)
    "decathlon-1.0-devkit.tar.gz": "http://www.robots.ox.ac.uk/~vgg/share/decathlon-1.0-devkit.tar.gz",
    "decathlon-1.0-data.tar.gz": "http://www.robots.ox.ac.uk/~vgg/share/decathlon-1.0-data.tar.gz",
}
DEVKIT = "decathlon-1.0-devkit.tar.gz"
OUTER = "decathlon-1.0-data.tar.gz"


def read_sums(src: Path) -> dict[str, str]:
    path = src / "SHA256SUMS"
    if not path.exists():
        return {}
    return {name.strip().lstrip("*"): digest for digest, name in
            (line.split(None, 1) for line in path.read_text().splitlines() if line.strip())}


def verify(path: Path, sums: dict[str, str]) -> str:
    digest = sha256(path)
    if path.name in sums and sums[path.name] != digest:
        raise DataError(f"checksum mismatch for {path}: SHA256SUMS says {sums[path.name]}, the file has {digest}. "
                        "The archive is damaged or incomplete: copy or download it again.")
    return digest


def extract(archive: Path, into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as e:
        raise DataError(f"cannot unpack {archive}: {e}. Copy or download it again.") from None


def install(src: str | Path, dest: str | Path) -> Path:
    """Unpack the devkit and the per-dataset tars (or the official outer data tar) found in `src` into `dest`.

    Returns the Decathlon root (`dest/decathlon-1.0`)."""
    src, dest = Path(src), Path(dest)
    if not src.is_dir():
        raise DataError(f"{src} is not a folder. Give the folder holding {DEVKIT} and the dataset tars "
                        "(e.g. ../shared/decathlon), or use --download.")
    if not (src / DEVKIT).exists():
        raise DataError(f"{src / DEVKIT} is missing: the devkit holds the annotations. "
                        f"Get it from {OFFICIAL[DEVKIT]}.")
    sums = read_sums(src)
    root = dest / "decathlon-1.0"
    archives = [src / DEVKIT] + sorted(p for p in src.glob("*.tar") if p.is_file())
    if (src / OUTER).exists():
        archives.append(src / OUTER)
    for archive in archives:
        marker = dest / ".installed" / archive.name
        digest = verify(archive, sums)
        if marker.exists() and marker.read_text() == digest:
            continue
        if archive.name == DEVKIT:
            extract(archive, dest)
        elif archive.name == OUTER:
            # The official outer tar holds one tar per dataset: unpack it aside, then each inner tar.
            with tempfile.TemporaryDirectory(dir=dest) as tmp:
                extract(archive, Path(tmp))
                for inner in sorted(Path(tmp).rglob("*.tar")):
                    extract(inner, root / "data")
        else:
            extract(archive, root / "data")
        files.write_text(marker, digest)
        print(f"installed {archive.name} into {dest}")
    return root


def download(dest: str | Path, names=(DEVKIT, OUTER)) -> Path:
    """Fetch the official archives into `dest` (for users with internet; several GB for the data tar)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = dest / name
        if target.exists():
            continue
        with files.atomic_path(target) as tmp, urllib.request.urlopen(OFFICIAL[name]) as r, open(tmp, "wb") as f:
            bar = tqdm(total=int(r.headers.get("Content-Length") or 0), unit="B", unit_scale=True, desc=name)
            while chunk := r.read(1 << 20):
                f.write(chunk)
                bar.update(len(chunk))
            bar.close()
    return dest

