"""`data install`: unpack the Decathlon archives, checking SHA256SUMS; installing again is a no-op."""
import shutil
import subprocess
import sys

import pytest

from multitune_lib import paths
from multitune_lib.errors import DataError
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
