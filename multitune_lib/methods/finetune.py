"""Plain fine-tuning, L2-SP fine-tuning (Li et al., ICML 2018) and training from scratch: the backbone with a new
head, every weight trained at one rate. They differ only in their defaults."""
from __future__ import annotations

from ..core.config import RunConfig
from ..core.method import BackboneFactory, Built, Method, group, register_method


def build_finetune(cfg: RunConfig, make_backbone: BackboneFactory, num_classes: int) -> Built:
    net = make_backbone()
    net.reset_head(num_classes)
    return Built(net, [group("net", net, cfg.lr, cfg.weight_decay)], [f"{net.HEAD}."])


PAPER_SCHEDULE = dict(lr=0.1, milestones=(20, 50, 80))

register_method(Method("finetune", "Fine-tuning", build_finetune, dict(PAPER_SCHEDULE, alpha=None),
                       colour="tab:green", about="every layer fine-tuned from the source, a new head"))
register_method(Method("l2sp", "L2-SP", build_finetune, dict(PAPER_SCHEDULE, weight_decay=0.0, alpha=0.01, beta=0.01),
                       colour="tab:purple", about="fine-tuning pulled towards the source weights (L2-SP)"))
# Training from random initialisation, as `pretrain` does to make a source model.
register_method(Method("scratch", "From scratch", build_finetune, dict(PAPER_SCHEDULE, weight_decay=5e-4, alpha=None),
                       colour="tab:gray", from_source=False, about="random initialisation, no source"))
