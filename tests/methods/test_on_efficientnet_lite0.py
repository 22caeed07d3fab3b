"""Every method on EfficientNet-Lite0 with its real ImageNet weights: shapes, SpotTune's routing of every MBConv
block (those that change shape included) and MultiTune's re-initialisation."""
import pytest
import torch
import torch.nn.functional as F

from multitune_lib import RunConfig, create_backbone
from multitune_lib.backbones.efficientnet_lite0 import imagenet_weights
from multitune_lib.core.method import build
from multitune_lib.store.checkpoint import load_source

CLASSES = 6


@pytest.fixture(scope="module")
def make():
    state = load_source(imagenet_weights())[0]

    def fresh():
        net = create_backbone("efficientnet_lite0", CLASSES)
        net.load_source(state)
        return net
    return fresh


def built(method, make, **kw):
    torch.manual_seed(0)
    return build(RunConfig(method=method, dataset="aircraft", backbone="efficientnet_lite0", **kw), make, CLASSES)


@pytest.mark.parametrize("method", ["finetune", "l2sp", "feature", "spottune", "multitune", "amf"])
def test_each_method_gives_logits_and_takes_a_step(method, make):
    b, reg = built(method, make)
    x, y = torch.randn(4, 3, 48, 48), torch.randint(0, CLASSES, (4,))
    out = b.model.train()(x)
    assert out.shape == (4, CLASSES)
    loss = F.cross_entropy(out, y) + (reg() if reg is not None else 0)
    loss.backward()
    assert all(p.grad is not None for g in b.groups for p in g["params"] if g["name"] != "policy")
    assert (reg is not None) == (method in ("l2sp", "multitune", "amf"))


def test_spottune_routes_every_block_with_frozen_copies_of_the_source(make):
    b, _ = built("spottune", make)
    model, source = b.model, make()
    assert len(model.frozen) == len(model.blocks) == 17
    assert model.policy.fc.out_features == 34  # (frozen, fine-tuned) logits per block
    shape_changing = [i for i, blk in enumerate(source.blocks[:16]) if not getattr(blk, "has_skip", False)]
    assert shape_changing == [0, 1, 3, 5, 8, 11, 15]  # routed like any other block
    for (n, p), q in zip(model.frozen.named_parameters(), source.blocks.parameters()):
        assert torch.equal(p, q) and p.requires_grad == (".bn" in n or n.endswith(("1.weight", "1.bias")))
    policy = sum(p.numel() for p in model.policy.parameters())
    net = sum(p.numel() for p in model.backbone.parameters())
    assert policy < net / 10  # a small policy network


def test_spottune_takes_either_path_per_image(make):
    b, _ = built("spottune", make)
    model = b.model.eval()
    x = torch.randn(2, 3, 48, 48)
    ones, zeros = torch.ones(2, 17), torch.zeros(2, 17)
    with torch.no_grad():
        model.decide = lambda _: ones
        tuned = model(x)
        model.decide = lambda _: zeros
        frozen = model(x)
        assert torch.allclose(tuned, frozen, atol=1e-5)  # untrained: both paths hold the source weights
        for p in model.blocks.parameters():
            p.add_(0.01)  # the fine-tuned copy moves, the frozen one stays
        assert torch.equal(model(x), frozen)
        model.decide = lambda _: ones
        assert not torch.allclose(model(x), frozen, atol=1e-3)


@pytest.mark.parametrize("scope, fresh", [("block", [16]), ("stage", [15, 16])])
def test_multitune_reinitialises_the_last_block_or_stage(make, scope, fresh):
    b, _ = built("multitune", make, reinit=scope)
    source = make()
    assert b.model.fc.in_features == 2 * 1280
    for net in (b.model.net_a, b.model.net_b):
        for i, (blk, ref) in enumerate(zip(net.blocks, source.blocks)):
            same = all(torch.equal(p, q) for p, q in zip(blk.parameters(), ref.parameters()))
            assert same == (i not in fresh), (scope, i)
    assert not torch.equal(b.model.net_a.blocks[16][0].weight, b.model.net_b.blocks[16][0].weight)
    lrs = {g["name"]: g["lr"] for g in b.groups}
    assert lrs["b_last"] == 0.01 and lrs["a"] == 0.1
    last_b = {id(p) for p in b.model.net_b.blocks[fresh[0]].parameters()}
    assert last_b <= {id(p) for g in b.groups if g["name"] == "b_last" for p in g["params"]}


def test_spottune_route_residual_routes_the_units_with_an_identity_path_and_fine_tunes_the_rest(make):
    b, _ = built("spottune", make, route="residual")
    model, source = b.model, make()
    assert model.routed == [2, 4, 6, 7, 9, 10, 12, 13, 14] == source.residual_blocks()
    assert all(getattr(source.blocks[i], "has_skip", False) for i in model.routed)
    assert len(model.frozen) == 9 and model.policy.fc.out_features == 18
    for copy_, i in zip(model.frozen, model.routed):
        assert all(torch.equal(p, q) for p, q in zip(copy_.parameters(), source.blocks[i].parameters()))
    net = {id(p) for g in b.groups if g["name"] == "net" for p in g["params"]}
    assert all(id(p) in net for i in (0, 1, 3, 5, 8, 11, 15, 16) for p in model.blocks[i].parameters())
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():  # an unrouted block is the fine-tuned one whatever the policy picks
        model.eval().decide = lambda _: torch.zeros(2, 9)
        before = model(x)
        for p in model.blocks[16].parameters():
            p.add_(0.01)
        assert not torch.allclose(model(x), before, atol=1e-3)


def test_spottune_policy_width_scales_the_policy_and_the_backbone_width_is_the_default(make):
    quarter = built("spottune", make)[0].model.policy
    full = built("spottune", make, policy_width=1.0)[0].model.policy
    count = [sum(p.numel() for p in m.parameters()) for m in (quarter, full)]
    assert quarter.conv1.out_channels == 8 and full.conv1.out_channels == 32 and count[1] > 10 * count[0]
    base = dict(method="spottune", dataset="aircraft", backbone="efficientnet_lite0")
    assert RunConfig(**base, policy_width=0.25).digest() == RunConfig(**base).digest()
    assert RunConfig(**base, policy_width=1.0).digest() != RunConfig(**base).digest()
