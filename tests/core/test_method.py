"""Methods: the registered objects, their parameter groups, and `build` (model, groups, L2-SP)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from multitune_lib.backbones.resnet26 import resnet26
from multitune_lib.core.config import RunConfig
from multitune_lib.core.l2sp import L2SP
from multitune_lib.core.method import Built, Method, build, compared_methods, group, register_method, without
from multitune_lib.core.registry import METHODS


def test_loss_falls_when_one_batch_is_fitted_repeatedly():
    torch.manual_seed(0)
    built, reg = build(RunConfig(method="l2sp", dataset="aircraft", lr=0.05), lambda: resnet26(4), 4)
    opt = torch.optim.SGD(built.groups, lr=0.05, momentum=0.9)
    x, y = torch.randn(16, 3, 64, 64), torch.arange(16) % 4
    losses = []
    for _ in range(15):
        loss = F.cross_entropy(built.model(x), y) + reg()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_compared_methods_are_spottune_then_multitune():
    assert [m.name for m in compared_methods()] == ["spottune", "multitune"]
    assert [m.label for m in compared_methods()] == ["SpotTune", "MultiTune"]
    assert not METHODS.get("scratch").from_source and METHODS.get("finetune").from_source


def test_group_keeps_trainable_parameters_and_without_removes_by_identity():
    net = resnet26(3)
    net.blocks[0].requires_grad_(False)
    g = group("net", net, 0.1, 5e-4)
    assert g["name"] == "net" and g["lr"] == 0.1 and g["weight_decay"] == 5e-4
    assert {id(p) for p in g["params"]} == {id(p) for p in net.parameters() if p.requires_grad}
    rest = without(net.parameters(), net.fc)
    assert len(rest) == len(list(net.parameters())) - 2 and all(p is not net.fc.weight for p in rest)
    assert len(without(net.parameters(), [net.fc.weight])) == len(list(net.parameters())) - 1


def test_build_makes_l2sp_only_where_alpha_or_beta_is_set():
    make = lambda: resnet26(5)  # noqa: E731
    built, reg = build(RunConfig(method="finetune", dataset="aircraft"), make, 5)
    assert isinstance(built, Built) and reg is None
    assert built.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    built, reg = build(RunConfig(method="l2sp", dataset="aircraft"), make, 5)
    assert isinstance(reg, L2SP) and (reg.alpha, reg.beta) == (0.01, 0.01)
    assert {id(p) for p in reg.new} == {id(built.model.fc.weight)}  # the new head: pulled to 0
    built, reg = build(RunConfig(method="finetune", dataset="aircraft", alpha=0.02, beta=0.0), make, 5)
    assert reg is not None and reg.alpha == 0.02 and reg().item() == 0.0


def test_a_registered_method_is_built_by_name(monkeypatch):
    monkeypatch.setattr(METHODS, "items", dict(METHODS.items))  # registration stays local to this test

    def build_linear(cfg, make_backbone, num_classes):
        net = make_backbone()
        net.reset_head(None)
        model = nn.Sequential()
        model.net, model.fc = net, nn.Linear(net.num_features, num_classes)
        model.forward = lambda x: model.fc(net.features(x))
        return Built(model, [group("head", model.fc, cfg.lr, cfg.weight_decay)], ["fc."])

    method = register_method(Method("linear", "Linear probe", build_linear, dict(lr=0.3, milestones=(5,))))
    assert METHODS.get("linear") is method and "linear" not in [m.name for m in compared_methods()]
    cfg = RunConfig(method="linear", dataset="aircraft")
    assert cfg.resolved().lr == 0.3 and cfg.resolved().alpha == 0.0
    built, reg = build(cfg, lambda: resnet26(4), 4)
    assert reg is None and built.groups[0]["lr"] == 0.3
    assert built.model(torch.randn(2, 3, 32, 32)).shape == (2, 4)
    with pytest.raises(ValueError, match="registered twice"):
        register_method(method)
