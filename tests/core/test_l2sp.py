import pytest
import torch
from torch import nn

from multitune_lib.backbones.resnet26 import resnet26
from multitune_lib.core.l2sp import L2SP


def make():
    torch.manual_seed(0)
    net = resnet26(10)
    return net, L2SP.for_model(net, ["fc.", "blocks.11."], alpha=0.01, beta=0.01)


def test_penalty_is_zero_at_start_for_source_weights():
    net, reg = make()
    with torch.no_grad():
        for p in reg.new:
            p.zero_()
    assert reg().item() == 0.0


def test_penalty_grows_once_weights_move():
    net, reg = make()
    source_only = L2SP.for_model(net, ["fc.", "blocks.11."], alpha=0.01, beta=0.0)
    w0 = {n: p.detach().clone() for n, p in net.named_parameters()}
    start = reg().item()
    assert source_only().item() == 0.0
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    nn.functional.cross_entropy(net(torch.randn(4, 3, 64, 64)), torch.arange(4)).backward()
    opt.step()
    assert reg().item() > start
    params = dict(net.named_parameters())
    by_hand = 0.005 * sum(((params[n] - w0[n]) ** 2).sum().item() for n in source_only.source_names)
    assert by_hand > 0
    assert abs(source_only().item() - by_hand) <= 1e-4 * by_hand


def test_starting_point_is_a_copy_not_the_live_weights():
    net, reg = make()
    with torch.no_grad():
        net.conv1.weight.add_(1.0)
    assert reg().item() > 0.01 / 2 * net.conv1.weight.numel() * 0.99


def test_bn_and_biases_are_excluded():
    net, reg = make()
    assert reg.source_names and all(n.endswith("weight") and "bn" not in n for n in reg.source_names)
    before = reg().item()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.add_(5.0)
                m.bias.add_(5.0)
        net.fc.bias.add_(5.0)
    assert reg().item() == before


def test_new_weights_pulled_to_zero():
    net, reg = make()
    expected = 0.005 * sum((p ** 2).sum().item() for p in reg.new)
    assert abs(reg().item() - expected) <= 1e-4 * expected
    assert {id(p) for p in reg.new} >= {id(net.fc.weight), id(net.blocks[11].conv1.weight)}


def test_a_frozen_backbone_leaves_only_the_new_weights_term():
    """Feature extraction with L2-SP: no trainable source weight, so the alpha term is empty (it used to raise)."""
    net = resnet26(10)
    net.requires_grad_(False).fc.requires_grad_(True)
    reg = L2SP.for_model(net, ["fc."], alpha=0.01, beta=0.01)
    assert reg.source == [] and reg().item() == pytest.approx(0.005 * net.fc.weight.pow(2).sum().item())
