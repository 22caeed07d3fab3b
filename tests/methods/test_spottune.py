"""SpotTune: the policy picks, per image and block, the frozen or the fine-tuned copy."""
import copy
import math

import pytest

import torch
import torch.nn.functional as F
from torch import nn

from conftest import policy_gradient
from multitune_lib.backbones.resnet26 import resnet26
from multitune_lib.core.config import RunConfig
from multitune_lib.core.method import build as build_method
from multitune_lib.core.registry import METHODS
from multitune_lib.methods import SpotTune


def build(method, **kw):
    cfg = RunConfig(method=method, dataset="aircraft", **kw)
    return build_method(cfg, lambda: resnet26(10), 10)


def test_spottune_frozen_convs_stay_and_policy_learns():
    built, _ = build("spottune")
    model: SpotTune = built.model
    frozen = {n: p.detach().clone() for n, p in model.frozen.named_parameters() if p.dim() == 4}
    tuned = {n: p.detach().clone() for n, p in model.blocks.named_parameters() if p.dim() == 4}
    opt = torch.optim.SGD(built.groups, lr=0.1, momentum=0.9)
    model.train()
    x, y = torch.randn(8, 3, 64, 64), torch.randint(0, 10, (8,))
    for _ in range(2):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    assert all(torch.equal(p, frozen[n]) for n, p in model.frozen.named_parameters() if p.dim() == 4)
    assert any(not torch.equal(p, tuned[n]) for n, p in model.blocks.named_parameters() if p.dim() == 4)
    # At the start both copies agree, so the policy's gradient is 0; once the tuned copy moved, it flows.
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.policy.parameters() if p.dim() > 1)
    # The frozen copy's BNs train, as in the reference code.
    assert all(p.requires_grad for n, p in model.frozen.named_parameters() if p.dim() == 1)
    assert {g["name"]: g["lr"] for g in built.groups} == {"net": 0.1, "policy": 0.01}


def test_spottune_records_block_usage():
    built, _ = build("spottune")
    model = built.model.eval()
    model.reset_usage()
    with torch.no_grad():
        model(torch.randn(6, 3, 72, 72))
    usage = model.block_usage()
    assert list(usage) == list(range(12)) and all(round(u * 6, 6) in range(7) for u in usage.values())  # of 6
    assert model.seen.item() == 6


def test_spottune_usage_resets_when_the_model_enters_eval_mode():
    built, _ = build("spottune")
    model = built.model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, 64, 64))
    assert model.seen.item() == 4
    model.eval()  # usage is read on the split evaluated next
    assert model.seen.item() == 0 and list(model.block_usage().values()) == [0.0] * 12
    with torch.no_grad():
        model(torch.randn(3, 3, 72, 72))
    assert model.seen.item() == 3
    assert METHODS.get("spottune").metrics(model) == {f"usage.{t}": u for t, u in model.block_usage().items()}


def test_spottune_wraps_the_backbone():
    built, _ = build("spottune")
    model = built.model
    assert model.blocks is model.backbone.blocks and len(model.frozen) == 12
    assert model.backbone.fc.out_features == 10
    assert not any(a is b for a, b in zip(model.frozen.parameters(), model.blocks.parameters()))
    assert "backbone.fc." in built.new and "policy." in built.new


def test_spottune_mixes_frozen_and_tuned_blocks():
    built, _ = build("spottune")
    model = built.model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        model.decide = lambda x: torch.zeros(len(x), 12)
        all_frozen = model(x)
        model.decide = lambda x: torch.ones(len(x), 12)
        all_tuned = model(x)
        for p in model.blocks.parameters():  # perturb the fine-tuned copy only
            p.add_(0.1)
        model.decide = lambda x: torch.zeros(len(x), 12)
        assert torch.allclose(model(x), all_frozen)  # frozen path ignores the tuned blocks
        model.decide = lambda x: torch.ones(len(x), 12)
        assert not torch.allclose(model(x), all_tuned)


def straight_through_argmax(logits, tau=1.0, hard=True):
    """Gumbel-softmax without the noise: the same hard choice and straight-through gradient in every dtype."""
    soft = (logits / tau).softmax(-1)
    return F.one_hot(soft.argmax(-1), 2).to(soft.dtype) - soft.detach() + soft


def test_the_policy_gradient_under_bf16_autocast_matches_a_float64_reference(monkeypatch):
    """SpotTune's straight-through policy gradient is the difference of the tuned and frozen block outputs: within
    0.3% of each other early in fine-tuning, less than bf16 resolves. All but the head runs in fp32 whatever the
    autocast, so the gradient under bf16 autocast agrees with a float64 reference as fp32's does."""
    monkeypatch.setattr(F, "gumbel_softmax", straight_through_argmax)
    torch.manual_seed(0)
    model = SpotTune(resnet26(10), 10).train()
    with torch.no_grad():
        for p in model.backbone.blocks.parameters():
            p.mul_(1 + 0.003 * torch.randn_like(p))
    x, y = torch.randn(8, 3, 64, 64), torch.arange(8)
    reference = policy_gradient(copy.deepcopy(model).double(), x.double(), y)
    cosine = {name: float(F.cosine_similarity(policy_gradient(model, x, y, dtype), reference, 0))
              for name, dtype in (("fp32", None), ("bf16", torch.bfloat16))}
    assert cosine["fp32"] > 0.999
    assert cosine["bf16"] > 0.999


def test_on_resnet26_route_residual_is_route_all():
    """Every unit of SpotTune's ResNet-26 is residual: both scopes build the same network and take the same path."""
    def seeded(route):
        torch.manual_seed(0)
        return SpotTune(resnet26(10), 10, route=route)
    a, b = seeded("all"), seeded("residual")
    assert a.routed == b.routed == list(range(12))
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    x = torch.randn(4, 3, 64, 64)
    outs = []
    for model in (a, b):
        torch.manual_seed(1)
        outs.append(model.train()(x))
    assert torch.equal(*outs)
    one_run = {RunConfig(method="spottune", dataset="aircraft", route=r).digest() for r in ("all", "residual")}
    assert len(one_run) == 1


def test_training_records_the_sampled_routing_its_entropy_and_the_policy_updates(monkeypatch):
    built, _ = build("spottune")
    model = built.model.train()
    with torch.no_grad():  # logits (0, log 3) for every block: the fine-tuned copy with probability 3/4
        model.policy.fc.weight.zero_()
        model.policy.fc.bias.copy_(torch.tensor([0.0, math.log(3)]).repeat(12))
        for _ in range(50):
            model(torch.randn(8, 3, 64, 64))
    record = model.training_record()
    usage = [record[f"train_usage.{t}"] for t in range(12)]
    entropy = [record[f"train_entropy.{t}"] for t in range(12)]
    bits = -(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75))
    assert record["policy_updates"] == 50
    assert entropy == pytest.approx([bits] * 12, abs=1e-5)
    assert all(0.6 < u < 0.9 for u in usage)  # 400 samples of p = 3/4, whatever the temperature
    model.eval()
    with torch.no_grad():
        model(torch.randn(8, 3, 64, 64))
    assert model.training_record() == record  # evaluation leaves the training record alone
    assert set(METHODS.get("spottune").metrics(model).values()) == {1.0}  # the argmax takes the fine-tuned copy
    model.train()
    assert model.training_record()["policy_updates"] == 0  # a new training pass starts a new record
