"""`data install`: unpack the Decathlon archives into the ignored data folder, checking what they unpacked.

Layout produced (the official one): <dest>/decathlon-1.0/annotations/*.json and <dest>/decathlon-1.0/data/<name>/.
Each archive is checked against SHA256SUMS where that lists it (a warning on stderr names those it cannot check),
and what it unpacked against its own member list and every image the devkit's annotations list for its dataset:
a truncated tar may end silently at a block boundary. Only then is it marked installed (dest/.installed/<archive>).
Installing again is a no-op for archives whose checksum matches the marker and whose files are still there.
"""
from __future__ import annotations

import json
import os
import sys
import tarfile
import tempfile
import urllib.request
import zlib
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


def warn(message: str) -> None:
    """One line on stderr: the CLI shows it once, without the source line warnings.warn would add."""
    print(f"warning: {message}", file=sys.stderr)


def extract(archive: Path, into: Path) -> tuple[list[str], str]:
    """Unpack `archive` into `into`: the names of the regular files it holds, and why tarfile stopped early ('' when
    it read the archive to its end). A truncated archive raises when cut inside a member or a gzip stream, but ends
    silently when cut at a 512-byte block boundary: only `absent` and `missing_images` notice that."""
    into.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(into, filter="data")
            return [m.name for m in tar.getmembers() if m.isfile()], ""
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        return [], str(e) or type(e).__name__


def absent(into: Path, names: list[str]) -> str:
    """What is wrong when some of the files an archive holds are not on disk after unpacking ('' when all are)."""
    gone = [n for n in names if not os.path.isfile(os.path.join(into, n))]
    return f"{len(gone):,} of the {len(names):,} files it holds are not on disk (e.g. {gone[0]})" if gone else ""


def annotated(root: Path, name: str) -> tuple[list[str], list[str]]:
    """The images that dataset `name`'s annotation files list (the devkit has train, val and test_stripped), and the
    names of those files."""
    images, anns = [], sorted((root / "annotations").glob(f"{name}_*.json"))
    for ann in anns:
        try:
            images += [image["file_name"] for image in json.loads(ann.read_text())["images"]]
        except (ValueError, KeyError, TypeError) as e:
            raise DataError(f"{ann} is not a Decathlon annotation file ({e!r}): copy {DEVKIT} again and run "
                            "`data install` again.") from None
    return images, [a.name for a in anns]


def missing_images(root: Path, name: str) -> str | None:
    """What is wrong when images the annotations of dataset `name` list are not under `root` ('' when all are
    there, None when the devkit has no annotations for `name` to check by)."""
    images, anns = annotated(root, name)
    if not anns:
        return None
    gone = [f for f in images if not os.path.isfile(os.path.join(root, f))]  # str paths: stat 60,000 at half the cost
    return (f"{len(gone):,} of the {len(images):,} images listed in annotations/{{{','.join(anns)}}} are missing "
            f"(e.g. {gone[0]})") if gone else ""


def fail_if(archive: str | Path, *problems: str | None) -> None:
    """One DataError naming the archive and everything found wrong with what it unpacked."""
    found = [p for p in problems if p]
    if found:
        raise DataError(f"cannot unpack {archive}: {'; '.join(found)}. The archive is truncated or damaged: copy or "
                        "download it again, then run `data install` again (it was not marked installed).")


def unpack_dataset(tar: Path, root: Path, label: str = "") -> str | None:
    """Unpack a per-dataset tar (<name>.tar) into root/data and check it against the annotations of <name>.
    Returns <name>, or None when the devkit has no annotations to check it by."""
    name = tar.name.split(".")[0]
    held, stopped = extract(tar, root / "data")
    problem = missing_images(root, name)
    if problem is None:
        warn(f"the devkit has no annotations/{name}_*.json: cannot check which images {label or tar} lacks")
    fail_if(label or tar, stopped, absent(root / "data", held), problem)
    return name if problem is not None else None


def unpack(archive: Path, dest: Path, root: Path) -> list[str]:
    """Unpack and check one archive. Returns what its marker records beside the digest: the datasets the outer tar
    supplied (a per-dataset tar's dataset is its name; the devkit is checked by its own member list)."""
    if archive.name == DEVKIT:
        held, stopped = extract(archive, dest)
        fail_if(archive, stopped, absent(dest, held))
        return []
    if archive.name != OUTER:
        unpack_dataset(archive, root)
        return []
    # The official outer tar holds one tar per dataset: unpack it aside, then each inner tar.
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        held, stopped = extract(archive, Path(tmp))
        fail_if(archive, stopped, absent(Path(tmp), held))
        names = [unpack_dataset(inner, root, f"{archive}:{inner.name}") for inner in sorted(Path(tmp).rglob("*.tar"))]
    return [n for n in names if n]


def installed(archive: Path, digest: str, dest: Path, root: Path) -> bool:
    """The marker records this digest and what the archive unpacked is still there (stats only: deleted images
    make it install again)."""
    marker = dest / ".installed" / archive.name
    if not marker.exists():
        return False
    recorded, *datasets = marker.read_text().split() or [""]
    if recorded != digest:
        return False
    if archive.name == DEVKIT:
        with tarfile.open(archive) as tar:
            return not absent(dest, [m.name for m in tar if m.isfile()])
    # A dataset tar's dataset is its name; the outer tar's are recorded in its marker.
    datasets = datasets if archive.name == OUTER else [archive.name.split(".")[0]]
    return not any(missing_images(root, name) for name in datasets)


def warn_unchecked(src: Path, archives: list[Path], sums: dict[str, str]) -> None:
    unchecked = [a.name for a in archives if a.name not in sums]
    if unchecked:
        why = "no entry in" if sums else "no"
        warn(f"{why} {src / 'SHA256SUMS'}: cannot check {', '.join(unchecked)} against a checksum "
             "(checking what they unpack against the annotations only)")


def install(src: str | Path, dest: str | Path) -> Path:
    """Unpack the devkit and the per-dataset tars (or the official outer data tar) found in `src` into `dest`.

    Returns the Decathlon root (`dest/decathlon-1.0`)."""
    src, dest = Path(src), Path(dest)
    if not src.is_dir():
        raise DataError(f"{src} is not a folder. Give the folder holding {DEVKIT} and the dataset tars "
                        "(aircraft.tar, cifar100.tar), or use --download.")
    if not (src / DEVKIT).exists():
        raise DataError(f"{src / DEVKIT} is missing: the devkit holds the annotations. "
                        f"Get it from {OFFICIAL[DEVKIT]}.")
    sums = read_sums(src)
    root = dest / "decathlon-1.0"
    # The devkit first: the checks of the dataset tars read its annotations.
    archives = [src / DEVKIT] + sorted(p for p in src.glob("*.tar") if p.is_file())
    if (src / OUTER).exists():
        archives.append(src / OUTER)
    warn_unchecked(src, archives, sums)
    for archive in archives:
        digest = verify(archive, sums)
        if installed(archive, digest, dest, root):
            continue
        marker = dest / ".installed" / archive.name
        marker.unlink(missing_ok=True)  # a failed unpack must not leave an old marker claiming it
        datasets = unpack(archive, dest, root)
        files.write_text(marker, "\n".join([digest, *datasets]))
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

