"""Feature extraction: a frozen source backbone and a new linear head."""
from __future__ import annotations

from torch import nn

from ..core.backbone import Backbone
from ..core.config import RunConfig
from ..core.method import BackboneFactory, Built, Method, group, register_method


class FeatureExtractor(nn.Module):
    """A frozen backbone, kept in eval mode so its BN statistics stay the source's, and a new linear head."""

    def __init__(self, backbone: Backbone, num_classes: int):
        super().__init__()
        backbone.reset_head(None)
        self.backbone = backbone.requires_grad_(False)
        self.fc = nn.Linear(backbone.num_features, num_classes)

    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.eval()
        return self

    def forward(self, x):
        return self.fc(self.backbone.features(x))


def build_feature(cfg: RunConfig, make_backbone: BackboneFactory, num_classes: int) -> Built:
    model = FeatureExtractor(make_backbone(), num_classes)
    return Built(model, [group("head", model.fc, cfg.lr, cfg.weight_decay)], ["fc."])


register_method(Method("feature", "Feature extraction", build_feature,
                       dict(lr=0.1, milestones=(20, 50, 80), weight_decay=0.0, alpha=None), colour="tab:brown",
                       about="the source backbone frozen, only a new head trained"))
