"""Atomic writes and digests."""
import hashlib
import os
import stat

import pytest
import torch

from multitune_lib.store.files import atomic_path, sha256, torch_save, write_text


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "deep" / "out.txt"
    write_text(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old" and sorted(p.name for p in path.parent.iterdir()) == ["out.txt"]
    write_text(path, "new")
    assert path.read_text() == "new" and len(list(path.parent.iterdir())) == 1


def test_torch_save_and_sha256(tmp_path):
    torch_save({"x": torch.arange(3)}, tmp_path / "a.pt")
    assert torch.equal(torch.load(tmp_path / "a.pt")["x"], torch.arange(3))
    data = bytes(range(256)) * 5000  # over one read chunk
    (tmp_path / "b.bin").write_bytes(data)
    assert sha256(tmp_path / "b.bin") == hashlib.sha256(data).hexdigest()


def test_atomic_files_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
        torch_save({"x": 1}, tmp_path / "b.pt")
        os.umask(0o077)
        write_text(tmp_path / "c.txt", "x")
    finally:
        os.umask(old)
    mode = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert mode == {"a.txt": 0o644, "b.pt": 0o644, "c.txt": 0o600}
