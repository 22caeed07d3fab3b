"""MultiTune: two fine-tuned networks joined by one linear layer."""
import pytest
import torch

from multitune_lib.backbones.resnet26 import resnet26
from multitune_lib.core.config import RunConfig
from multitune_lib.core.method import build as build_method
from multitune_lib.methods import MultiTune, reinit


def build(method, **kw):
    cfg = RunConfig(method=method, dataset="aircraft", **kw)
    return build_method(cfg, lambda: resnet26(10), 10)


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

    built, _ = build_method(RunConfig(method="multitune", dataset="aircraft"), make, 10)
    a = built.model.net_a.state_dict()
    assert torch.equal(a["blocks.10.conv1.weight"], state["blocks.10.conv1.weight"])
    assert not torch.equal(a["blocks.11.conv1.weight"], state["blocks.11.conv1.weight"])
    built, _ = build_method(RunConfig(method="multitune", dataset="aircraft", reinit="stage"), make, 10)
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


def test_reinit_names_the_reinitialised_blocks():
    assert reinit(resnet26(10)) == ["blocks.11"]
    assert reinit(resnet26(10), "stage") == ["blocks.8", "blocks.9", "blocks.10", "blocks.11"]
    built, _ = build("multitune", reinit="stage")
    assert built.new == ["fc."] + [f"net_{n}.blocks.{i}." for n in "ab" for i in (8, 9, 10, 11)]
    b_last = {id(p) for p in {g["name"]: g for g in built.groups}["b_last"]["params"]}
    assert b_last == {id(p) for i in (8, 9, 10, 11) for p in built.model.net_b.blocks[i].parameters()}
