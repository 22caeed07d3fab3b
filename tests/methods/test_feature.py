"""Feature extraction: a frozen source backbone and a new head."""
import torch

from multitune_lib.backbones.resnet26 import resnet26
from multitune_lib.core.config import RunConfig
from multitune_lib.core.method import build as build_method


def build(method, **kw):
    cfg = RunConfig(method=method, dataset="aircraft", **kw)
    return build_method(cfg, lambda: resnet26(10), 10)


def test_feature_extraction_trains_only_the_head():
    built, _ = build("feature")
    model = built.model.train()
    assert not model.backbone.training
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["fc.weight", "fc.bias"]


def test_feature_extraction_keeps_the_source_bn_statistics():
    built, _ = build("feature")
    model = built.model.train()
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model(torch.randn(4, 3, 64, 64) * 3 + 1)
    assert all(torch.equal(v, before[k]) for k, v in model.backbone.state_dict().items())
    assert model.backbone.head is None and [g["name"] for g in built.groups] == ["head"]
