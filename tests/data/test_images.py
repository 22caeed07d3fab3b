"""Decathlon images as uint8 tensors: decoding, the cache, few-shot loads and channel statistics."""
import json
import os
import shutil
import time
import zipfile

import pytest
import torch
from torchvision.io import encode_jpeg

from multitune_lib import data
from multitune_lib.data import images
from multitune_lib.errors import DataError


def test_real_aircraft_few_shot_subset(decathlon_root, tmp_path):
    split = data.load(decathlon_root, "aircraft", "train", images_per_class=5, classes=(1, 2, 3), seed=0,
                      cache=tmp_path)
    assert split.images.shape == (15, 3, 72, 72) and split.images.dtype == torch.uint8
    assert sorted(split.labels.tolist()) == [0] * 5 + [1] * 5 + [2] * 5
    assert split.num_classes == 3
    assert all(f.startswith("data/aircraft/train/000") for f in split.files)
    assert split.images.float().std() > 10  # real pixels, not a blank


def test_cache_loads_unchanged_and_rebuilds_changed(toy_root, tmp_path, monkeypatch):
    calls = []
    real = images.decode
    monkeypatch.setattr(images, "decode", lambda b, w: calls.append(w) or real(b, w))
    first = data.load(toy_root, "toy", "train", cache=tmp_path / "c")
    assert len(calls) == 48
    t = time.perf_counter()
    again = data.load(toy_root, "toy", "train", cache=tmp_path / "c")
    assert time.perf_counter() - t < 1.0 and len(calls) == 48
    assert torch.equal(first.images, again.images)
    # Changing one source file changes the key: the split is decoded again.
    victim = toy_root / first.files[0]
    victim.write_bytes(victim.read_bytes() + b"\0")
    data.load(toy_root, "toy", "train", cache=tmp_path / "c")
    assert len(calls) == 96


def same_size_jpeg(original: bytes, grey: int) -> bytes:
    """A flat grey JPEG padded with a comment segment to exactly len(original) bytes: same size, other pixels."""
    flat = encode_jpeg(torch.full((3, 72, 90), grey, dtype=torch.uint8), quality=95).numpy().tobytes()
    pad = len(original) - len(flat)
    assert pad >= 4, "the flat image must be the smaller"
    return flat[:2] + b"\xff\xfe" + (pad - 2).to_bytes(2, "big") + bytes(pad - 4) + flat[2:]


def test_another_root_with_the_same_names_sizes_and_times_is_decoded_from_that_root(toy_root, tmp_path):
    first = data.load(toy_root, "toy", "val", cache=tmp_path / "c")
    other = shutil.copytree(toy_root, tmp_path / "elsewhere" / "decathlon-1.0")
    for f in first.files:
        (other / f).write_bytes(same_size_jpeg((toy_root / f).read_bytes(), 128))
        st = (toy_root / f).stat()
        os.utime(other / f, ns=(st.st_atime_ns, st.st_mtime_ns))  # only the root tells them apart
    assert data.open_source(other).fingerprint(first.files[0]) == data.open_source(toy_root).fingerprint(
        first.files[0])
    second = data.load(other, "toy", "val", cache=tmp_path / "c")
    assert second.files == first.files and (second.images.float() - 128).abs().max() < 3
    assert (first.images.float() - 128).abs().max() > 50


def test_a_file_rewritten_in_place_with_the_same_size_is_decoded_again(toy_root, tmp_path):
    first = data.load(toy_root, "toy", "val", cache=tmp_path / "c")
    victim = toy_root / first.files[5]
    time.sleep(0.02)  # so that the mtime moves even on a coarse clock
    victim.write_bytes(same_size_jpeg(victim.read_bytes(), 128))
    again = data.load(toy_root, "toy", "val", cache=tmp_path / "c")
    assert (again.images[5].float() - 128).abs().max() < 3
    assert torch.equal(again.images[:5], first.images[:5]) and torch.equal(again.images[6:], first.images[6:])


def test_a_pack_rewritten_with_a_member_of_the_same_size_is_decoded_again(toy_root, tmp_path):
    names = data.annotations(toy_root, "toy", "val")["file_name"].tolist()
    pack = tmp_path / "toy.zip"

    def write_pack(replace=None):
        with zipfile.ZipFile(pack, "w") as z:
            z.write(toy_root / "annotations" / "toy_train.json", "annotations/toy_train.json")
            z.write(toy_root / "annotations" / "toy_val.json", "annotations/toy_val.json")
            for f in names:
                jpeg = (toy_root / f).read_bytes()
                z.writestr(f, same_size_jpeg(jpeg, 128) if f == replace else jpeg)

    write_pack()
    first = data.load(pack, "toy", "val", cache=tmp_path / "c")
    write_pack(replace=names[0])
    again = data.load(pack, "toy", "val", cache=tmp_path / "c")
    assert (again.images[0].float() - 128).abs().max() < 3 and (first.images[0].float() - 128).abs().max() > 50


def test_allow_fewer_reaches_the_selection_and_min_per_class_the_split(toy_root, tmp_path):
    with pytest.raises(DataError, match=r"toy train \(annotations/toy_train.json in .*\): 4 of the 4 kept classes "
                                        r"have fewer than the 20 .*has 12\)"):
        data.load(toy_root, "toy", "train", images_per_class=20, cache=tmp_path)
    split = data.load(toy_root, "toy", "train", images_per_class=20, cache=tmp_path, allow_fewer=True)
    assert len(split) == 48 and split.min_per_class == 12
    assert split.to("cpu").min_per_class == 12 and split.for_crop(32).min_per_class == 12
    assert data.load(toy_root, "toy", "train", images_per_class=5, cache=tmp_path).min_per_class == 5
    assert data.Split(split.images, split.labels, 4, split.files).min_per_class is None  # other constructors


def test_a_split_without_images_of_a_kept_class_names_the_class_and_the_split(toy_root, tmp_path):
    path = toy_root / "annotations" / "toy_val.json"
    ann = json.loads(path.read_text())
    ann["annotations"] = [a for a in ann["annotations"] if a["category_id"] != 502]  # class 3
    ann["images"] = [i for i in ann["images"] if i["id"] in {a["image_id"] for a in ann["annotations"]}]
    path.write_text(json.dumps(ann))
    with pytest.raises(DataError, match=r"toy val \(annotations/toy_val.json in .*\): class 3 'class2' has no "
                                        r"images \(1 of the 4 kept classes"):
        data.load(toy_root, "toy", "val", cache=tmp_path / "c", allow_fewer=True)


def test_decodes_only_the_images_a_run_needs(toy_root, tmp_path, monkeypatch):
    calls = []
    real = images.decode
    monkeypatch.setattr(images, "decode", lambda b, w: calls.append(w) or real(b, w))
    split = data.load(toy_root, "toy", "train", images_per_class=2, cache=tmp_path)
    assert len(split) == 8 and len(calls) == 8


def test_centre_crop_of_wide_images(toy_root, tmp_path):
    split = data.load(toy_root, "toy", "val", cache=tmp_path)
    assert split.images.shape[1:] == (3, 72, 72)


def test_channel_stats_match_table2_scale(decathlon_root, tmp_path):
    split = data.load(decathlon_root, "aircraft", "train", images_per_class=3, cache=tmp_path)
    mean, std = data.channel_stats(split.images)
    paper_mean, paper_std = data.TABLE2_STATS["aircraft"]
    assert all(abs(m - p) < 0.05 for m, p in zip(mean, paper_mean))
    assert all(abs(s - p) < 0.05 for s, p in zip(std, paper_std))


@pytest.mark.parametrize("case", ["missing_root", "unknown_name", "missing_annotation", "missing_image", "corrupt"])
def test_bad_input_gives_one_clear_error(toy_root, tmp_path, case):
    root, name = toy_root, "toy"
    if case == "missing_root":
        root = tmp_path / "nowhere"
        expected = "nowhere does not exist"
    elif case == "unknown_name":
        name = "imagenet12"
        expected = "unknown dataset 'imagenet12'.*toy"
    elif case == "missing_annotation":
        (toy_root / "annotations" / "toy_val.json").unlink()
        expected = "missing annotation file .*toy_val.json"
    elif case == "missing_image":
        victim = next((toy_root / "data" / "toy" / "val").rglob("*.jpg"))
        victim.unlink()
        expected = f"missing image .*{victim.name}"
    else:
        victim = next((toy_root / "data" / "toy" / "val").rglob("*.jpg"))
        victim.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
        expected = f"cannot decode image .*{victim.name}.*corrupt"
    with pytest.raises(DataError, match=expected) as info:
        data.load(root, name, "val", cache=tmp_path / "cache")
    assert "install" in str(info.value) or "re-install" in str(info.value)


def test_decode_scales_the_shorter_side_to_72_and_takes_the_centre():
    img = torch.zeros(3, 144, 200, dtype=torch.uint8)
    img[:, :, 28:172] = 200  # a bright square in the middle: the centre crop sees only it
    out = data.decode(encode_jpeg(img, quality=95).numpy().tobytes(), "x.jpg")
    assert out.shape == (3, 72, 72) and out.dtype == torch.uint8
    assert out[:, :, 2:-2].float().mean() > 190


def test_split_for_a_smaller_crop_scales_its_whole_images():
    s = data.Split(torch.full((2, 3, 72, 72), 7, dtype=torch.uint8), torch.tensor([0, 1]), 2, ["a", "b"])
    assert s.for_crop(64) is s and len(s) == 2
    small = s.for_crop(32)
    assert small.images.shape == (2, 3, 40, 40) and (small.images == 7).all()
    assert small.labels is s.labels and small.files == ["a", "b"] and small.num_classes == 2


def test_normalisation_is_table2_or_the_split_statistics():
    images = torch.stack([torch.zeros(3, 72, 72), torch.full((3, 72, 72), 102.0)]).to(torch.uint8)
    s = data.Split(images, torch.tensor([0, 1]), 2, [])
    assert data.normalisation("aircraft", s) == tuple(map(list, data.TABLE2_STATS["aircraft"]))
    mean, std = data.normalisation("toy", s)
    assert mean == pytest.approx([0.2] * 3) and std == pytest.approx([0.2] * 3)
