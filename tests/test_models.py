import pytest
import torch
from torch import nn

from multitune_lib import methods
from multitune_lib.config import RunConfig
from multitune_lib.models import MultiTune, SpotTune, resnet26


def test_resnet26_has_the_decathlon_parameter_count():
    net = resnet26(100)
    assert sum(p.numel() for p in net.parameters()) == 5_840_388
    assert net(torch.randn(2, 3, 64, 64)).shape == (2, 100)
    assert net.features(torch.randn(2, 3, 72, 72)).shape == (2, 256)


def test_resnet26_shape_through_the_stages():
    net = resnet26(10)
    x = net.stem(torch.randn(1, 3, 64, 64))
    shapes = []
    for block in net.blocks:
        x = block(x)
        shapes.append(tuple(x.shape[1:]))
    assert shapes[0] == (64, 32, 32) and shapes[4] == (128, 16, 16) and shapes[11] == (256, 8, 8)


def build(method, **kw):
    cfg = RunConfig(method=method, dataset="aircraft", **kw)
    return methods.build(cfg, lambda: resnet26(10), 10)


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
    assert len(usage) == 12 and all(round(u * 6, 6) in range(7) for u in usage)  # counts of 6 images
    assert model.seen.item() == 6


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


def test_multitune_eta_one_ignores_network_b():
    built, _ = build("multitune", eta=1.0)
    model: MultiTune = built.model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
        for p in model.net_b.parameters():
            p.mul_(0.5)
        assert torch.allclose(model(x), before)
    built, _ = build("multitune", eta=0.5)
    model = built.model.eval()
    with torch.no_grad():
        before = model(x)
        for p in model.net_b.parameters():
            p.mul_(0.5)
        assert not torch.allclose(model(x), before)


def test_multitune_joins_two_full_networks():
    built, _ = build("multitune")
    model = built.model
    assert model.fc.in_features == 512
    assert model.net_a is not model.net_b
    assert not any(a is b for a, b in zip(model.net_a.parameters(), model.net_b.parameters()))


def test_multitune_reinitialises_the_last_block():
    torch.manual_seed(0)
    source = resnet26(10)
    state = source.state_dict()

    def make():
        net = resnet26(10)
        net.load_state_dict(state)
        return net

    built, _ = methods.build(RunConfig(method="multitune", dataset="aircraft"), make, 10)
    a = built.model.net_a.state_dict()
    assert torch.equal(a["blocks.10.conv1.weight"], state["blocks.10.conv1.weight"])
    assert not torch.equal(a["blocks.11.conv1.weight"], state["blocks.11.conv1.weight"])
    built, _ = methods.build(RunConfig(method="multitune", dataset="aircraft", reinit="stage"), make, 10)
    a = built.model.net_a.state_dict()
    assert not torch.equal(a["blocks.8.conv1.weight"], state["blocks.8.conv1.weight"])
    assert torch.equal(a["blocks.7.conv1.weight"], state["blocks.7.conv1.weight"])


def test_multitune_group_rates_survive_the_schedule():
    built, _ = build("multitune")
    names = {g["name"]: g for g in built.groups}
    b_last = {id(p) for p in names["b_last"]["params"]}
    assert b_last == {id(p) for p in built.model.net_b.blocks[11].parameters()}
    opt = torch.optim.SGD(built.groups, lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [20, 50, 80], 0.1)
    seen = {}
    for epoch in range(90):
        seen[epoch] = {g["name"]: g["lr"] for g in opt.param_groups}
        opt.step()
        sched.step()
    for epoch, factor in ((0, 1), (19, 1), (20, 0.1), (50, 0.01), (85, 0.001)):
        assert seen[epoch]["a"] == pytest.approx(0.1 * factor)
        assert seen[epoch]["b"] == pytest.approx(0.1 * factor)
        assert seen[epoch]["b_last"] == pytest.approx(0.01 * factor)
        assert seen[epoch]["head"] == pytest.approx(0.1 * factor)


def test_feature_extraction_trains_only_the_head():
    built, _ = build("feature")
    model = built.model.train()
    assert not model.backbone.training
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["fc.weight", "fc.bias"]
