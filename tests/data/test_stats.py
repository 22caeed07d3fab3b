"""Table 2's statistics: per-channel mean and std over every pixel of the whole images, not of their centre crops."""
import json
import math

import numpy as np
import pytest
import torch
from torchvision.io import encode_png

from multitune_lib import data
from multitune_lib.errors import DataError

# (class, height, width): shorter sides of 72 and wider images like aircraft, one taller, one resized by decode
SIZES = [(1, 72, 107), (1, 72, 72), (1, 72, 200), (2, 90, 72), (2, 72, 130), (2, 80, 96)]


def write_png_decathlon(root, sizes=SIZES, constant: int | None = None, seed: int = 0):
    """A Decathlon-format "png" train split (lossless, so the pixels are known) with images of `sizes`: noisy, with a
    brightness that differs from image to image, or all `constant` when it is given. Returns their pixels."""
    g = torch.Generator().manual_seed(seed)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    images, anns, pixels = [], [], []
    for i, (c, h, w) in enumerate(sizes, start=1):
        level = torch.randint(20, 230, (3, 1, 1), generator=g).float()
        img = (level + 40 * torch.randn(3, h, w, generator=g)).clamp(0, 255).to(torch.uint8)
        img = torch.full((3, h, w), constant, dtype=torch.uint8) if constant is not None else img
        rel = f"data/png/train/{c:04d}/{i:06d}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(encode_png(img).numpy().tobytes())
        images.append({"id": i, "file_name": rel, "width": w, "height": h})
        anns.append({"id": i, "image_id": i, "category_id": c})
        pixels.append(img.numpy().astype(np.float64) / 255)
    categories = [{"id": c, "name": f"class{c}"} for c in sorted({c for c, _, _ in sizes})]
    (root / "annotations" / "png_train.json").write_text(
        json.dumps({"images": images, "annotations": anns, "categories": categories}))
    return pixels


def test_whole_image_stats_pool_every_pixel_of_images_of_different_sizes(tmp_path):
    pixels = write_png_decathlon(tmp_path)
    everything = np.concatenate([p.reshape(3, -1) for p in pixels], axis=1)  # by hand: all pixels, one pool
    mean, std = data.whole_image_stats(tmp_path, "png")
    np.testing.assert_allclose(mean, everything.mean(1), atol=1e-6)
    np.testing.assert_allclose(std, everything.std(1), atol=1e-6)
    # The test tells the right statistic from the wrong ones: an average over images, or over centre crops.
    per_image_std = np.mean([p.reshape(3, -1).std(1) for p in pixels], axis=0)
    per_image_mean = np.mean([p.reshape(3, -1).mean(1) for p in pixels], axis=0)
    crop_mean, crop_std = data.channel_stats(data.load(tmp_path, "png", "train", cache=tmp_path / "cache").images)
    for wrong in (per_image_std, crop_std):
        assert np.abs(np.asarray(wrong) - std).min() > 1e-3
    for wrong in (per_image_mean, crop_mean):
        assert np.abs(np.asarray(wrong) - mean).min() > 1e-3


def test_a_subset_pools_only_its_own_images(tmp_path):
    pixels = write_png_decathlon(tmp_path)
    mine = np.concatenate([p.reshape(3, -1) for p, (c, _, _) in zip(pixels, SIZES) if c == 2], axis=1)
    mean, std = data.whole_image_stats(tmp_path, "png", classes=(2,))
    np.testing.assert_allclose(mean, mine.mean(1), atol=1e-6)
    np.testing.assert_allclose(std, mine.std(1), atol=1e-6)
    picked = data.select(data.annotations(tmp_path, "png", "train"), images_per_class=1, seed=3)
    one = [pixels[i - 1].reshape(3, -1) for i in picked["image_id"]]  # image ids are 1, 2, ... in SIZES' order
    np.testing.assert_allclose(data.whole_image_stats(tmp_path, "png", images_per_class=1, seed=3)[1],
                               np.concatenate(one, axis=1).std(1), atol=1e-6)


def test_constant_images_have_a_std_of_zero_not_nan(tmp_path):
    """s2/n - mean^2 of a constant 3/255 channel rounds a hair below 0: its square root was NaN."""
    write_png_decathlon(tmp_path, sizes=[(1, 72, 72), (1, 72, 100)], constant=3)
    mean, std = data.whole_image_stats(tmp_path, "png")
    assert std == [0.0, 0.0, 0.0] and mean == pytest.approx([3 / 255] * 3)
    mean, std = data.channel_stats(torch.full((2, 3, 72, 72), 3, dtype=torch.uint8))
    assert std == [0.0, 0.0, 0.0] and mean == pytest.approx([3 / 255] * 3)


def test_no_images_or_a_corrupt_one_is_a_data_error(tmp_path):
    write_png_decathlon(tmp_path)
    with pytest.raises(DataError, match="png train .*no images to compute a mean and std over"):
        data.whole_image_stats(tmp_path, "png", classes=())
    victim = tmp_path / "data/png/train/0002/000004.png"
    victim.write_bytes(b"not an image")
    with pytest.raises(DataError, match="cannot decode image .*000004.png"):
        data.whole_image_stats(tmp_path, "png")


def test_real_aircraft_whole_images_are_nearer_table2_than_their_centre_crops(decathlon_root, tmp_path):
    """Table 2 is over whole images: on 5 images of every class the whole-image std is nearer the paper's than the
    centre 72 x 72 crops' std of the same images, in every channel (and the crop is what the cache holds)."""
    mean, std = data.whole_image_stats(decathlon_root, "aircraft", images_per_class=5, seed=0)
    split = data.load(decathlon_root, "aircraft", "train", images_per_class=5, seed=0, cache=tmp_path)
    _, crop_std = data.channel_stats(split.images)
    _, paper_std = data.TABLE2_STATS["aircraft"]
    assert len(split) == 500 and all(math.isfinite(x) for x in mean + std)
    for whole, crop, paper in zip(std, crop_std, paper_std):
        assert abs(whole - paper) < abs(crop - paper), (std, crop_std, paper_std)
