"""`data install`: unpack the Decathlon archives, checking SHA256SUMS and what they unpacked against the annotations;
installing again is a no-op while the installed files are there."""
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import write_decathlon

from multitune_lib import paths
from multitune_lib.errors import DataError
from multitune_lib.store.files import sha256
from multitune_lib.tools import install


def cli(*args):
    return subprocess.run([sys.executable, "-m", "multitune_lib", *args], capture_output=True, text=True,
                          timeout=120)


def test_install_checks_checksums(tmp_path):
    shared = paths.shared_decathlon()
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(shared / "decathlon-1.0-devkit.tar.gz", src)
    (src / "SHA256SUMS").write_text("0" * 64 + "  decathlon-1.0-devkit.tar.gz\n")
    out = cli("data", "install", "--from", str(src), "--dest", str(tmp_path / "dest"))
    assert out.returncode == 2 and "checksum mismatch" in out.stderr
    (src / "SHA256SUMS").unlink()
    out = cli("data", "install", "--from", str(src), "--dest", str(tmp_path / "dest"))
    assert out.returncode == 0
    assert (tmp_path / "dest" / "decathlon-1.0" / "annotations" / "aircraft_train.json").exists()


def test_installing_again_skips_what_is_installed(tmp_path, monkeypatch, capsys):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(paths.shared_decathlon() / "decathlon-1.0-devkit.tar.gz", src)
    root = install.install(src, tmp_path / "dest")
    assert root == tmp_path / "dest" / "decathlon-1.0" and "installed decathlon-1.0-devkit" in capsys.readouterr().out
    monkeypatch.setattr(install, "extract", lambda *a: pytest.fail("an installed archive was unpacked again"))
    assert install.install(src, tmp_path / "dest") == root and capsys.readouterr().out == ""


def test_install_names_what_is_missing(tmp_path):
    with pytest.raises(DataError, match="is not a folder"):
        install.install(tmp_path / "nowhere", tmp_path / "dest")
    with pytest.raises(DataError, match="decathlon-1.0-devkit.tar.gz is missing"):
        install.install(tmp_path, tmp_path / "dest")
    (tmp_path / "bad.tar").write_bytes(b"not a tar")
    shutil.copy(paths.shared_decathlon() / "decathlon-1.0-devkit.tar.gz", tmp_path)
    with pytest.raises(DataError, match="cannot unpack .*bad.tar"):
        install.install(tmp_path, tmp_path / "dest")
    assert install.read_sums(tmp_path) == {}


def tiny_src(tmp_path, sums: bool = True) -> Path:
    """A devkit holding the annotations of a tiny dataset `toy` (train, val and a test_stripped file) and toy.tar,
    laid out like ../shared/decathlon; with SHA256SUMS when `sums`."""
    built = write_decathlon(tmp_path / "built" / "decathlon-1.0", classes=2, train=4, val=2)
    test = [{"id": 900 + i, "file_name": f"data/toy/test/{i:06d}.jpg", "width": 90, "height": 72} for i in (1, 2)]
    (built / "data" / "toy" / "test").mkdir()
    for image in test:
        shutil.copy(next((built / "data" / "toy" / "val").rglob("*.jpg")), built / image["file_name"])
    (built / "annotations" / "toy_test_stripped.json").write_text(
        json.dumps({"images": test, "annotations": [], "categories": []}))
    src = tmp_path / "src"
    src.mkdir()
    with tarfile.open(src / install.DEVKIT, "w:gz") as tar:
        tar.add(built / "annotations", "decathlon-1.0/annotations")
    with tarfile.open(src / "toy.tar", "w") as tar:
        tar.add(built / "data" / "toy", "toy")
    if sums:
        write_sums(src)
    return src


def write_sums(src):
    (src / "SHA256SUMS").write_text("".join(f"{sha256(p)}  {p.name}\n" for p in sorted(src.glob("*.tar*"))))


def cut(path, at: str) -> bytes:
    """Truncate a tar halfway: inside the middle member's data (tarfile raises), at its header (a 512-byte block
    boundary: tarfile stops silently) or, for any archive, at half its bytes. Returns the whole archive."""
    whole = path.read_bytes()
    with tarfile.open(path) as tar:
        held = [m for m in tar.getmembers() if m.isfile()]
    middle = held[len(held) // 2]
    size = {"data": middle.offset_data + middle.size // 2, "block": middle.offset, "bytes": len(whole) // 2}[at]
    path.write_bytes(whole[:size])
    return whole


@pytest.mark.parametrize("at", ["data", "block"])
def test_a_truncated_dataset_tar_is_refused_and_not_marked(tmp_path, at, capsys):
    src = tiny_src(tmp_path, sums=False)
    whole = cut(src / "toy.tar", at)
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match=r"cannot unpack .*toy.tar: .*\d+ of the 14 images listed in annotations/"
                                        r"\{toy_test_stripped.json,toy_train.json,toy_val.json\} are missing "
                                        r"\(e.g. data/toy/.*jpg\).*copy or download it again") as info:
        install.install(src, dest)
    assert (at == "data") == ("unexpected end of data" in str(info.value))
    assert not (dest / ".installed" / "toy.tar").exists() and (dest / ".installed" / install.DEVKIT).exists()
    (src / "toy.tar").write_bytes(whole)
    capsys.readouterr()
    install.install(src, dest)
    assert capsys.readouterr().out == f"installed toy.tar into {dest}\n"
    assert (dest / "decathlon-1.0" / "data" / "toy" / "test" / "000002.jpg").exists()


def test_a_truncated_devkit_is_refused(tmp_path):
    src = tiny_src(tmp_path, sums=False)
    cut(src / install.DEVKIT, "bytes")  # a gzip stream cut short: tarfile raises EOFError
    with pytest.raises(DataError, match=f"cannot unpack .*{install.DEVKIT}: "):
        install.install(src, tmp_path / "dest")
    assert not (tmp_path / "dest" / ".installed").exists()


def test_archives_without_a_checksum_are_named_in_one_warning(tmp_path, capsys):
    src = tiny_src(tmp_path, sums=False)
    with tarfile.open(src / "extra.tar", "w") as tar:  # a dataset the devkit has no annotations for
        tar.add(tmp_path / "built" / "decathlon-1.0" / "data" / "toy", "extra")
    install.install(src, tmp_path / "dest")
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (f"warning: no {src / 'SHA256SUMS'}: cannot check {install.DEVKIT}, extra.tar, toy.tar against "
                      "a checksum (checking what they unpack against the annotations only)")
    assert err[1].startswith("warning: the devkit has no annotations/extra_*.json: cannot check") and len(err) == 2
    (src / "SHA256SUMS").write_text(f"{sha256(src / 'toy.tar')}  toy.tar\n")
    install.install(src, tmp_path / "dest2")
    assert f"no entry in {src / 'SHA256SUMS'}: cannot check {install.DEVKIT}, extra.tar against" in \
        capsys.readouterr().err


def test_a_checked_install_is_a_no_op_when_repeated(tmp_path, monkeypatch, capsys):
    src = tiny_src(tmp_path)
    root = install.install(src, tmp_path / "dest")
    out = capsys.readouterr()
    assert out.err == "" and out.out.count("installed") == 2
    assert (root / "data" / "toy" / "test" / "000001.jpg").exists()
    monkeypatch.setattr(install, "extract", lambda *a: pytest.fail("an installed archive was unpacked again"))
    assert install.install(src, tmp_path / "dest") == root and capsys.readouterr().out == ""


def test_deleted_images_are_installed_again(tmp_path, monkeypatch, capsys):
    src = tiny_src(tmp_path)
    root = install.install(src, tmp_path / "dest")
    victim = next((root / "data" / "toy" / "val").rglob("*.jpg"))
    victim.unlink()
    unpacked = []
    real = install.extract
    monkeypatch.setattr(install, "extract", lambda archive, into: unpacked.append(archive.name) or real(archive, into))
    capsys.readouterr()
    install.install(src, tmp_path / "dest")
    assert unpacked == ["toy.tar"] and victim.exists()
    assert capsys.readouterr().out == f"installed toy.tar into {tmp_path / 'dest'}\n"


def test_the_official_outer_tar_is_checked_dataset_by_dataset(tmp_path):
    src = tiny_src(tmp_path)
    with tarfile.open(src / install.OUTER, "w:gz") as tar:
        tar.add(src / "toy.tar", "decathlon-1.0/data/toy.tar")
    (src / "toy.tar").unlink()
    write_sums(src)
    root = install.install(src, tmp_path / "dest")
    assert (tmp_path / "dest" / ".installed" / install.OUTER).read_text().split()[1:] == ["toy"]
    victim = next((root / "data" / "toy" / "train").rglob("*.jpg"))
    victim.unlink()
    install.install(src, tmp_path / "dest")
    assert victim.exists()
