"""Device-side batches: uint8 crops and flips (RandomCropFlip), then normalisation (Normalise)."""
import torch

from multitune_lib import data


def test_augment_crops_flips_and_is_seeded():
    norm = data.Normalise([0.0] * 3, [1 / 255] * 3, "cpu")  # identity scaling: values stay pixel values
    augment = data.RandomCropFlip(64)
    x = torch.arange(72, dtype=torch.uint8).view(1, 1, 1, 72).expand(64, 3, 72, 72).contiguous()
    a = norm(augment(x, torch.Generator().manual_seed(0)))
    b = norm(augment(x, torch.Generator().manual_seed(0)))
    assert a.shape == (64, 3, 64, 64) and torch.equal(a, b)
    rows = a[:, 0, 0]
    steps = rows[:, 1] - rows[:, 0]
    assert set(steps.tolist()) == {1.0, -1.0}  # both orientations occur
    assert (rows.min(1).values >= 0).all() and (rows.max(1).values <= 71).all()
    assert len(set(rows.min(1).values.tolist())) > 1  # crops start at different offsets


def test_crop_keeps_uint8_and_takes_whole_windows():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (8, 3, 40, 40), dtype=torch.uint8, generator=g)
    out = data.RandomCropFlip(32)(x, torch.Generator().manual_seed(1))
    assert out.dtype == torch.uint8 and out.shape == (8, 3, 32, 32)
    for img, crop in zip(x, out):  # each crop is a window of its own image, flipped or not
        windows = [img[:, i:i + 32, j:j + 32] for i in range(9) for j in range(9)]
        assert any(torch.equal(crop, w) or torch.equal(crop, w.flip(-1)) for w in windows)
    assert not torch.equal(out, data.RandomCropFlip(32)(x, torch.Generator().manual_seed(2)))


def test_normalise_scales_and_returns_channels_last_float():
    mean, std = [0.5, 0.25, 0.0], [0.5, 0.25, 1.0]
    x = torch.tensor([255, 0, 51], dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 4, 4)
    y = data.Normalise(mean, std, "cpu")(x)
    assert y.dtype == torch.float32 and y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y[0, :, 0, 0], torch.tensor([1.0, -1.0, 0.2]))


def test_normalise_resizes_on_the_device_when_asked():
    x = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    y = data.Normalise([0.5] * 3, [0.5] * 3, "cpu", size=128)(x)
    assert y.shape == (2, 3, 128, 128) and y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y.mean(), data.Normalise([0.5] * 3, [0.5] * 3, "cpu")(x).mean(), atol=1e-2, rtol=0)
    assert data.Normalise([0.5] * 3, [0.5] * 3, "cpu", size=64)(x).shape == (2, 3, 64, 64)
