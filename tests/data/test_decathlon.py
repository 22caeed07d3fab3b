"""Decathlon annotations and the seeded few-shot and class subsets drawn from them."""
import pytest

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


def test_few_shot_draw_is_stratified_and_seeded(decathlon_root):
    df = data.annotations(decathlon_root, "aircraft", "train")
    a, b, c = (data.select(df, images_per_class=10, seed=s) for s in (0, 0, 1))
    assert len(a) == 1000 and (a.groupby("label").size() == 10).all()
    assert a["file_name"].tolist() == b["file_name"].tolist()
    assert a["file_name"].tolist() != c["file_name"].tolist()


def test_class_subsets_renumber_labels_in_class_order(toy_root):
    df = data.annotations(toy_root, "toy", "val")
    assert df.attrs["class_names"] == ["class0", "class1", "class2", "class3"]
    assert (df["class_id"] == df["label"] + 1).all() and len(df) == 24
    sub = data.select(df, classes=(4, 2))
    assert sub.attrs["num_classes"] == 2 and sub.attrs["class_names"] == ["class1", "class3"]
    assert sub.groupby("class_id")["label"].unique().map(list).to_dict() == {2: [0], 4: [1]}
    assert sub["image_id"].is_monotonic_increasing and len(sub) == 12
    assert df.attrs["num_classes"] == 4  # the input is left as it was
    few = data.select(df, images_per_class=2, classes=(4, 2), seed=3)
    assert len(few) == 4 and set(few["file_name"]) <= set(sub["file_name"])


def test_bad_subsets_are_refused(toy_root):
    df = data.annotations(toy_root, "toy", "train")
    with pytest.raises(DataError, match=r"class ids \[5\] out of range 1-4"):
        data.select(df, classes=(1, 5))
    with pytest.raises(DataError, match="images_per_class must be positive"):
        data.select(df, images_per_class=0)


def test_available_lists_the_datasets_of_a_root(toy_root, decathlon_root):
    assert data.available(toy_root) == ["toy"]
    assert {"aircraft", "cifar100"} <= set(data.available(decathlon_root))


def test_a_file_that_is_not_an_annotation_file_is_named(toy_root):
    (toy_root / "annotations" / "toy_val.json").write_text('{"images": []}')
    with pytest.raises(DataError, match="toy_val.json is not a Decathlon"):
        data.annotations(toy_root, "toy", "val")
