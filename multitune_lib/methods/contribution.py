"""Adaptive fine-tuning by parameter contribution (public code: the GitHub repository fengledl/Adaptive-Fine-Tuning-
Algorithm-Based-on-Parameter-Contribution, read at 6c99ae8; nothing of it copied): each conv layer's pre-trained
weights are ranked by a criterion, the lowest-ranked share r_l of layer l is fine-tuned and the rest frozen, and
the ratios r_l are searched per task by a particle swarm (`ratio_search.py`).

Its abstract: "a contribution measure criterion is used to quantify the importance of the pre-trained model
parameters to the target task". Its code ranks by the signed pre-trained value and reads no target data; that rule
is the default (`signed_value`), as the one concrete specification there is. `magnitude` ranks by |w|, and `taylor`
reads the target task: |w dL/dw| summed over the target's train images at the source weights, the new head fitted
first. Every criterion fine-tunes the lowest-ranked weights first, as the code's ascending sort does.

As in the code, a conv layer's ratio also holds for the norm layer after it (its weights ranked within themselves)
and the new head always trains. Unlike the code, frozen weights do not move at all: the code multiplies gradients by
the mask after backward, and SGD's weight decay still shrinks every frozen weight; here weight decay enters the
gradient before the mask, so a frozen weight's gradient and momentum stay exactly zero. BN statistics update in every
layer as in the code, or (`frozen_bn`) keep the source's.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..core.backbone import Backbone
from ..core.config import DEFAULT_WEIGHT_DECAY, RunConfig, share_count
from ..core.method import BackboneFactory, Built, Method, group, register_method
from ..errors import ConfigError
from . import ratio_search
from .ratio_search import per_layer

HEAD_FIT_ITERATIONS = 100  # L-BFGS iterations of the head the taylor criterion scores with (it converges well before)


class Contribution(nn.Module):
    """A backbone whose parameters (head aside) each carry a mask of the weights fine-tuned, kept as buffers so that a
    resumed run trains the very masks it started with."""

    def __init__(self, net: Backbone, frozen_bn: bool):
        super().__init__()
        self.net, self.frozen_bn = net, frozen_bn
        self.layers = net.conv_layers()
        params = dict(net.named_parameters())
        self.names = [name for layer in self.layers for name in layer]
        for i, name in enumerate(self.names):
            self.register_buffer(f"mask{i}", torch.ones_like(params[name], dtype=torch.bool))

    def masks(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, f"mask{i}") for i, name in enumerate(self.names)}

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen_bn:  # the source's running statistics throughout
            for m in self.net.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def forward(self, x):
        return self.net(x)


def chosen(score: torch.Tensor, ratio: float) -> torch.Tensor:
    """The mask of the floor(ratio x n) lowest-scored of a tensor's n weights (ties in index order)."""
    flat = torch.zeros(score.numel(), dtype=torch.bool, device=score.device)
    flat[score.flatten().argsort(stable=True)[:share_count(ratio, score.numel())]] = True
    return flat.view(score.shape)


def signed_value(trainer, model: Contribution) -> dict[str, torch.Tensor]:
    """The released code's rule: each weight's pre-trained value, sign and all."""
    return {name: p.detach().clone() for name, p in model.net.named_parameters() if name in model.names}


def magnitude(trainer, model: Contribution) -> dict[str, torch.Tensor]:
    return {name: p.detach().abs() for name, p in model.net.named_parameters() if name in model.names}


def taylor(trainer, model: Contribution) -> dict[str, torch.Tensor]:
    """|w dL/dw| summed over the target's train images in batches of the config's size: whole images as evaluation
    sees them, the source's BN statistics (eval mode), float32, and for L the cross-entropy of a head fitted first on
    the frozen source features (not the model's head, which starts fresh as fine-tuning's does)."""
    net, split = model.net, trainer.train
    was = net.training
    net.eval()
    batches = torch.arange(len(split), device=split.labels.device).split(trainer.cfg.batch_size)
    with torch.no_grad():
        feats = torch.cat([net.features(trainer.norm_eval(split.images[i])) for i in batches])
    head = fit_head(feats, split.labels, split.num_classes)
    params = {name: p for name, p in net.named_parameters() if name in model.names}
    score = {name: torch.zeros_like(p) for name, p in params.items()}
    for i in batches:
        loss = F.cross_entropy(head(net.features(trainer.norm_eval(split.images[i]))), split.labels[i])
        for (name, p), g in zip(params.items(), torch.autograd.grad(loss, list(params.values()))):
            score[name] += (p.detach() * g).abs()
    net.train(was)
    return score


def fit_head(feats: torch.Tensor, labels: torch.Tensor, classes: int) -> nn.Linear:
    """A linear head on fixed features by L-BFGS from zero (no random draw), with the study's default weight decay
    (5e-4, on every dataset) so that separable few-shot features leave it finite."""
    head = nn.Linear(feats.shape[1], classes).to(feats.device)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    opt = torch.optim.LBFGS(head.parameters(), max_iter=HEAD_FIT_ITERATIONS, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(head(feats), labels) + DEFAULT_WEIGHT_DECAY / 2 * head.weight.pow(2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    return head.requires_grad_(False)


CRITERIA = {"signed_value": signed_value, "magnitude": magnitude, "taylor": taylor}


def masked_gradient(param: nn.Parameter, mask: torch.Tensor, decay: float):
    """Weight decay added before the mask, so a frozen weight's gradient (and momentum) is exactly zero."""
    def hook(grad):
        return torch.where(mask, grad.add(param.detach(), alpha=decay), 0.0)
    return hook


def prepare(trainer, built: Built) -> list[dict]:
    """Rank, mask and group: a layer at ratio 0 is frozen outright, one at 1 trains as in fine-tuning, one between
    trains its mask with weight decay inside the gradient hook."""
    cfg, model = trainer.cfg, built.model
    if cfg.ratios is None:
        raise ConfigError("contribution trains with ratios: fit searches them before training; a trainer made "
                          "directly needs ratios (one per conv layer, or one for all)")
    scores = CRITERIA[cfg.criterion](trainer, model)
    params, masks = dict(model.net.named_parameters()), model.masks()
    full, partial = [], []
    for ratio, layer in zip(per_layer(cfg.ratios, len(model.layers)), model.layers):
        for name in layer:
            masks[name].copy_(chosen(scores[name], ratio))
            p = params[name]
            if ratio == 0:
                p.requires_grad_(False)
            elif ratio == 1:
                full.append(p)
            else:
                p.register_hook(masked_gradient(p, masks[name], cfg.weight_decay))
                partial.append(p)
    head = list(model.net.head.parameters())
    groups = [group("net", full + head, cfg.lr, cfg.weight_decay), group("net_masked", partial, cfg.lr, 0.0)]
    return [g for g in groups if g["params"]]


def build_contribution(cfg: RunConfig, make_backbone: BackboneFactory, num_classes: int) -> Built:
    net = make_backbone()
    net.reset_head(num_classes)
    model = Contribution(net, cfg.frozen_bn)
    return Built(model, [group("net", model, cfg.lr, cfg.weight_decay)], [f"net.{net.HEAD}."])


register_method(Method(
    "contribution", "Parameter contribution", build_contribution,
    # the released code's lr, step schedule (x0.1 every 30 of 110 epochs) and rule; the search sized so that a run
    # costs about 2.5x fine-tuning (image passes) on imagenet-cpu (docs/contribution.md)
    dict(lr=0.01, milestones=(30, 60, 90), alpha=None, criterion="signed_value", ratios=None, frozen_bn=False,
         search_particles=5, search_iterations=3, proxy_epochs=2, search_holdout=0.2),
    colour="tab:olive", search=ratio_search.search, prepare=prepare, extra_work=ratio_search.extra_work,
    timed={"ratios": (0.5,)},  # a step's cost with half of every layer trained (a mask hook on each)
    about="only a share of each layer's weights fine-tuned, ranked by a criterion, the shares searched per task"))
