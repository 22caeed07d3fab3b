"""`data pack`: the images one part of a profile needs, as one zip the data layer reads as a Decathlon root."""
import zipfile

import pytest
import torch

from multitune_lib import data
from multitune_lib.errors import DataError
from multitune_lib.study import profiles
from multitune_lib.tools import pack


def test_pack_serves_the_same_images_as_the_folder(toy_root, tmp_path):
    out = tmp_path / "toy.zip"
    info = pack.pack(toy_root, [("toy", "train", 2, None), ("toy", "val", None, (1, 2))], out, seeds=(0, 1))
    ref_train = data.load(toy_root, "toy", "train", 2, None, 1, cache=tmp_path / "c1")
    ref_val = data.load(toy_root, "toy", "val", None, (1, 2), 0, cache=tmp_path / "c1")
    # Two seeds of 2 images per class over 4 classes draw up to 16 train images; val keeps classes 1-2 (12 images).
    assert info["images"] == len(set(ref_val.files) | set(ref_train.files) |
                                 set(data.load(toy_root, "toy", "train", 2, None, 0, cache=tmp_path / "c1").files))
    with zipfile.ZipFile(out) as z:
        assert z.getinfo(ref_val.files[0]).compress_type == zipfile.ZIP_STORED  # JPEG bytes as they are
        assert z.read(ref_val.files[0]) == (toy_root / ref_val.files[0]).read_bytes()
    got = data.load(out, "toy", "train", 2, None, 1, cache=tmp_path / "c2")
    assert got.files == ref_train.files and torch.equal(got.images, ref_train.images)
    assert torch.equal(got.labels, ref_train.labels)
    assert data.available(out) == ["toy"]
    with pytest.raises(DataError, match="not in the pack"):
        data.load(out, "toy", "val", cache=tmp_path / "c2")  # classes 3-4 of val were not packed


def test_offline_profile_parts():
    off = profiles.get("offline")
    parts = pack.parts(off)
    assert set(parts) == {"aircraft", "cifar100", "pretrain"}
    assert ("cifar100", "val", None, tuple(range(51, 101))) in parts["cifar100"]
    assert parts["pretrain"] == [("cifar100", "train", None, tuple(range(1, 51))),
                                 ("cifar100", "val", None, tuple(range(1, 51)))]
    assert pack.parts(profiles.get("offline-cpu"))["aircraft"] == [
        ("aircraft", "train", n, None) for n in (15, 10, 5)] + [("aircraft", "val", None, None)]
    assert "pretrain" not in pack.parts(profiles.get("smoke"))  # trains from scratch


def test_pack_part_writes_the_profiles_part(toy_root, tmp_path, monkeypatch, capsys):
    p = profiles.Profile("tiny", {"toy": (1, 2)}, full_row=3, few_shot_rows=(1,), epochs=1, seeds=(0, 1))
    monkeypatch.setitem(profiles.PROFILES, "tiny", p)
    info = pack.pack_part("tiny", "toy", tmp_path / "tiny.zip", root=toy_root)
    assert info["fits_carry"] and info["images"] <= 2 * 3 * 2 + 12 and "tiny.zip" in capsys.readouterr().out
    train = data.load(tmp_path / "tiny.zip", "toy", "train", 3, (1, 2), 1, cache=tmp_path / "c")
    val = data.load(tmp_path / "tiny.zip", "toy", "val", None, (1, 2), cache=tmp_path / "c")
    assert len(train) == 6 and len(val) == 12
    with pytest.raises(DataError, match="no part 'cifar100': choose one of toy"):
        pack.pack_part("tiny", "cifar100", tmp_path / "x.zip", root=toy_root)
