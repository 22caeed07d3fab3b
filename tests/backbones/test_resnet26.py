"""The Visual Decathlon ResNet-26 and the backbone interface it implements."""
import pytest
import torch

from multitune_lib.backbones.resnet26 import ResNet26, resnet26
from multitune_lib.core.backbone import Backbone, create_backbone
from multitune_lib.core.registry import BACKBONES


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


def test_resnet26_is_registered_and_implements_the_interface():
    assert "resnet26" in BACKBONES and BACKBONES.get("resnet26") is resnet26
    net = create_backbone("resnet26", 7)
    assert isinstance(net, ResNet26) and isinstance(net, Backbone)
    assert net.head is net.fc and net.head.out_features == 7 and net.num_features == 256
    assert net.stages() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert net.last_blocks() == [11] and net.last_blocks("stage") == [8, 9, 10, 11]
    with pytest.raises(ValueError, match="'block' or 'stage'"):
        net.last_blocks("layer")


def test_resnet26_forward_is_features_then_head():
    torch.manual_seed(0)
    net = resnet26(5).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(net(x), net.fc(net.features(x)))
    net.reset_head(3)
    assert net.fc.out_features == 3 and net(x).shape == (2, 3)
    net.reset_head(None)
    assert net.head is None and "fc.weight" not in net.state_dict()


def test_init_block_reinitialises_one_block_only():
    torch.manual_seed(0)
    net = resnet26(10)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    moved = {k: v.clone() for k, v in net.state_dict().items()}
    net.init_block(11)
    after = net.state_dict()
    for k, v in after.items():
        if k.startswith("blocks.11.") and k.endswith(("bn1.weight", "bn1.bias")):
            assert torch.equal(v, before[k])  # BN back to 1 / 0
        elif not k.startswith("blocks.11."):
            assert torch.equal(v, moved[k]), k
    assert not torch.equal(after["blocks.11.conv1.weight"], moved["blocks.11.conv1.weight"])
