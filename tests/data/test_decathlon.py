"""Decathlon annotations and the seeded few-shot and class subsets drawn from them."""
import hashlib
import json

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


def test_the_seeded_draw_is_the_one_stored_results_were_trained_on(decathlon_root):
    """The ids of a few-shot draw as the original select() drew them: stored results depend on these rows."""
    df = data.annotations(decathlon_root, "aircraft", "train")
    ids = ",".join(map(str, data.select(df, images_per_class=10, seed=0)["image_id"]))
    assert hashlib.sha1(ids.encode()).hexdigest()[:12] == "9994e4739d7a"
    few = data.select(df, images_per_class=5, classes=(1, 2, 3), seed=1, allow_fewer=True)
    assert few["image_id"].tolist()[:5] == [10000011, 10000018, 10000032, 10000033, 10000034]


def test_asking_more_images_than_a_class_has_is_refused_unless_allowed(decathlon_root):
    df = data.annotations(decathlon_root, "aircraft", "train")
    with pytest.raises(DataError, match=r"aircraft train: 100 of the 100 kept classes have fewer than the 50 "
                                        r"images per class asked for \(class \d+ '.+' has 33\).*at most 33.*"
                                        r"--allow-fewer") as info:
        data.select(df, images_per_class=50, where="aircraft train")
    assert str(info.value).count("\n") == 0  # one line for the CLI
    with pytest.raises(DataError, match="66 of the 100 kept classes have fewer than the 34"):  # 34 x 34 + 66 x 33
        data.select(df, images_per_class=34)
    everything = data.select(df, images_per_class=50, allow_fewer=True)
    assert everything["image_id"].tolist() == data.select(df)["image_id"].tolist()
    assert everything.attrs["min_per_class"] == 33 and data.select(df, images_per_class=33).attrs["min_per_class"] == 33


def test_min_per_class_is_the_fewest_images_a_kept_class_has(toy_root):
    drop_images(toy_root, "toy", "train", class_id=2, keep=5)
    df = data.annotations(toy_root, "toy", "train")
    assert data.select(df).attrs["min_per_class"] == 5
    assert data.select(df, classes=(1, 3)).attrs["min_per_class"] == 12
    assert data.select(df, images_per_class=4).attrs["min_per_class"] == 4
    with pytest.raises(DataError, match=r"this split: 1 of the 4 kept classes .* \(class 2 'class1' has 5\)"):
        data.select(df, images_per_class=6)
    few = data.select(df, images_per_class=6, allow_fewer=True, seed=3)
    assert few.attrs["min_per_class"] == 5 and few.groupby("class_id").size().to_dict() == {1: 6, 2: 5, 3: 6, 4: 6}
    assert len(data.select(df, images_per_class=6, classes=(1, 3, 4))) == 18  # the short class left out: no error


@pytest.mark.parametrize("images_per_class, allow_fewer", [(None, False), (2, False), (20, True)])
def test_a_kept_class_without_images_is_always_an_error(toy_root, images_per_class, allow_fewer):
    drop_images(toy_root, "toy", "train", class_id=3, keep=0)
    df = data.annotations(toy_root, "toy", "train")
    with pytest.raises(DataError, match=r"toy train: class 3 'class2' has no images \(1 of the 4 kept classes"):
        data.select(df, images_per_class, allow_fewer=allow_fewer, where="toy train")
    assert len(data.select(df, images_per_class, classes=(1, 2, 4), allow_fewer=allow_fewer)) > 0


def drop_images(root, name, split, class_id, keep):
    """Rewrite an annotation file so that class `class_id` keeps only its first `keep` images."""
    path = root / "annotations" / f"{name}_{split}.json"
    ann = json.loads(path.read_text())
    cat = sorted(c["id"] for c in ann["categories"])[class_id - 1]
    ids = [a["image_id"] for a in ann["annotations"] if a["category_id"] == cat][keep:]
    ann["images"] = [i for i in ann["images"] if i["id"] not in ids]
    ann["annotations"] = [a for a in ann["annotations"] if a["image_id"] not in ids]
    path.write_text(json.dumps(ann))


def test_draw_first_n_takes_the_first_files_of_each_class_by_name(decathlon_root):
    """The released code's few-shot sets: the first N files per class, whatever the seed."""
    train = data.annotations(decathlon_root, "aircraft", "train")
    first = data.select(train, 3, draw="first_n", seed=0)
    assert first.equals(data.select(train, 3, draw="first_n", seed=7))
    expected = train.sort_values("file_name").groupby("label").head(3)["file_name"]
    assert sorted(first["file_name"]) == sorted(expected) and len(first) == 300
    assert not first["file_name"].equals(data.select(train, 3, seed=0)["file_name"])  # not the seeded draw
