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
    built, _ = build("multitune", reinit="stage", l2sp_scope="reinit_new")
    assert built.new == ["fc."] + [f"net_{n}.blocks.{i}." for n in "ab" for i in (8, 9, 10, 11)]
    assert build("multitune", reinit="stage")[0].new == ["fc."]  # the paper's Eq. 2: beta on the last layer only
    b_last = {id(p) for p in {g["name"]: g for g in built.groups}["b_last"]["params"]}
    assert b_last == {id(p) for i in (8, 9, 10, 11) for p in built.model.net_b.blocks[i].parameters()}


def perturbed_penalty(built, reg) -> tuple[float, float]:
    """(L2-SP penalty, beta/2 ||fc||^2) after every weight moved from its start."""
    with torch.no_grad():
        for p in built.model.parameters():
            p.add_(0.01)
    fc = built.model.fc.weight
    return float(reg().detach()), 0.01 / 2 * float(fc.detach().pow(2).sum())


def test_released_l2sp_keeps_only_the_classifier_term_and_the_paper_pulls_every_layer():
    released, reg = build("multitune", l2sp_scope="released")
    assert released.new == ["fc."] and reg.alpha == 0.0
    total, head = perturbed_penalty(released, reg)
    assert total == pytest.approx(head)  # the backbone term is 0, as the released code's is
    paper, reg = build("multitune")
    total, head = perturbed_penalty(paper, reg)
    assert reg.alpha == 0.01 and total > head + 1e-3  # Eq. 2: every transferred weight pulled to its start
    assert any(n.startswith("net_a.blocks.11.") for n in reg.source_names)  # re-initialised block: alpha term


def test_the_released_shared_trunk_has_one_trunk_and_two_last_blocks():
    built, _ = build("multitune", trunk="shared")
    model = built.model
    assert not hasattr(model, "net_b") and len(model.branch_b) == 1 and model.first == 11
    assert model.branch_b[0] is not model.net.blocks[11]
    assert not torch.equal(model.branch_b[0].conv1.weight, model.net.blocks[11].conv1.weight)  # two fresh inits
    two = build("multitune")[0].model
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(model) < count(two) - count(model.net) // 2  # one trunk, not two
    assert model.eval()(torch.randn(2, 3, 72, 72)).shape == (2, 10)
    groups = {g["name"]: g for g in built.groups}
    assert set(groups) == {"a", "b_last", "head"} and groups["b_last"]["lr"] == 0.01


def test_lr_b_lost_gives_setting_b_the_common_lr():
    built, _ = build("multitune", lr_b="lost")
    assert {g["name"]: g["lr"] for g in built.groups}["b_last"] == 0.1
