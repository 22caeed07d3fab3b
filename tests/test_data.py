import time

import pytest
import torch

from multitune_lib import data
from multitune_lib.errors import DataError


def test_real_aircraft_annotations(decathlon_root):
    train = data.annotations(decathlon_root, "aircraft", "train")
    val = data.annotations(decathlon_root, "aircraft", "val")
    assert (len(train), len(val)) == (3334, 3333)
    assert train.attrs["num_classes"] == 100
    assert train["label"].min() == 0 and train["label"].max() == 99
    assert train.groupby("label").size().between(33, 34).all()
    assert train[["width", "height"]].min(axis=1).between(72, 73).all()  # shorter side 72 (two are 73)


def test_real_aircraft_few_shot_subset(decathlon_root, tmp_path):
    split = data.load(decathlon_root, "aircraft", "train", shots=5, classes=(1, 2, 3), seed=0, cache=tmp_path)
    assert split.images.shape == (15, 3, 72, 72) and split.images.dtype == torch.uint8
    assert sorted(split.labels.tolist()) == [0] * 5 + [1] * 5 + [2] * 5
    assert split.num_classes == 3
    assert all(f.startswith("data/aircraft/train/000") for f in split.files)
    assert split.images.float().std() > 10  # real pixels, not a blank


def test_few_shot_draw_is_stratified_and_seeded(decathlon_root):
    df = data.annotations(decathlon_root, "aircraft", "train")
    a, b, c = (data.select(df, shots=10, seed=s) for s in (0, 0, 1))
    assert len(a) == 1000 and (a.groupby("label").size() == 10).all()
    assert a["file_name"].tolist() == b["file_name"].tolist()
    assert a["file_name"].tolist() != c["file_name"].tolist()


def test_cache_loads_unchanged_and_rebuilds_changed(toy_root, tmp_path, monkeypatch):
    calls = []
    real = data.decode
    monkeypatch.setattr(data, "decode", lambda b, w: calls.append(w) or real(b, w))
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


def test_decodes_only_the_images_a_run_needs(toy_root, tmp_path, monkeypatch):
    calls = []
    real = data.decode
    monkeypatch.setattr(data, "decode", lambda b, w: calls.append(w) or real(b, w))
    split = data.load(toy_root, "toy", "train", shots=2, cache=tmp_path)
    assert len(split) == 8 and len(calls) == 8


def test_centre_crop_of_wide_images(toy_root, tmp_path):
    split = data.load(toy_root, "toy", "val", cache=tmp_path)
    assert split.images.shape[1:] == (3, 72, 72)


def test_augment_crops_flips_and_is_seeded():
    norm = data.Normalise([0.0] * 3, [1 / 255] * 3, "cpu")  # identity scaling: values stay pixel values
    x = torch.arange(72, dtype=torch.uint8).view(1, 1, 1, 72).expand(64, 3, 72, 72).contiguous()
    a = norm.augment(x, torch.Generator().manual_seed(0))
    b = norm.augment(x, torch.Generator().manual_seed(0))
    assert a.shape == (64, 3, 64, 64) and torch.equal(a, b)
    rows = a[:, 0, 0]
    steps = rows[:, 1] - rows[:, 0]
    assert set(steps.tolist()) == {1.0, -1.0}  # both orientations occur
    assert (rows.min(1).values >= 0).all() and (rows.max(1).values <= 71).all()
    assert len(set(rows.min(1).values.tolist())) > 1  # crops start at different offsets


def test_channel_stats_match_table2_scale(decathlon_root, tmp_path):
    split = data.load(decathlon_root, "aircraft", "train", shots=3, cache=tmp_path)
    mean, std = data.channel_stats(split.images)
    paper_mean, paper_std = data.TABLE2_STATS["aircraft"]
    assert all(abs(m - p) < 0.05 for m, p in zip(mean, paper_mean))
    assert all(abs(s - p) < 0.05 for s, p in zip(std, paper_std))


def test_parse_classes():
    assert data.parse_classes("1-3,7") == (1, 2, 3, 7)
    assert data.parse_classes(None) is None
    with pytest.raises(DataError, match="bad class list"):
        data.parse_classes("a-b")


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
