"""The Visual Decathlon ResNet-26 (Rebuffi et al. 2017), as built by the SpotTune code."""
from __future__ import annotations

import math

import torch.nn.functional as F
from torch import nn

from ..core.backbone import Backbone, register_backbone

STAGE_WIDTHS = (64, 128, 256)
STEM_WIDTH = 32


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class DownsampleB(nn.Module):
    """Parameter-free shortcut: 2x2 average pool, then zero channels up to the new width."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.pad = cout - cin
        self.stride = stride

    def forward(self, x):
        x = F.avg_pool2d(x, self.stride)
        return F.pad(x, (0, 0, 0, 0, 0, self.pad))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv3x3(cin, cout, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = DownsampleB(cin, cout, stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


def init_weights(module: nn.Module) -> None:
    """He-normal convs, BN 1/0, as the Decathlon code initialises."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
            m.reset_running_stats()


class ResNet26(Backbone):
    """Stem conv+BN (no ReLU), 3 stages of `blocks_per_stage` basic blocks, BN+ReLU, pool, linear; `width` scales
    every layer's channels (SpotTune's narrower policy networks)."""

    def __init__(self, num_classes: int, blocks_per_stage: int = 4, width: float = 1.0):
        super().__init__()
        stem = round(STEM_WIDTH * width)
        self.conv1 = conv3x3(3, stem)
        self.bn1 = nn.BatchNorm2d(stem)
        blocks, cin = [], stem
        for stage_width in (round(w * width) for w in STAGE_WIDTHS):
            for i in range(blocks_per_stage):
                blocks.append(BasicBlock(cin, stage_width, stride=2 if i == 0 else 1))
                cin = stage_width
        self.blocks = nn.ModuleList(blocks)
        self.end_bn = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, num_classes)
        self.blocks_per_stage = blocks_per_stage
        self.num_features = cin
        init_weights(self)

    def stem(self, x):
        return self.bn1(self.conv1(x))

    def pool(self, x):
        """Final BN+ReLU and global average pool: the 256-d features X."""
        return F.relu(self.end_bn(x)).mean((2, 3))

    def stages(self) -> list[list[int]]:
        k = self.blocks_per_stage
        return [list(range(s, s + k)) for s in range(0, len(self.blocks), k)]

    def init_block(self, index: int) -> None:
        init_weights(self.blocks[index])

    def residual_blocks(self) -> list[int]:
        """Every block: the downsampling ones add a parameter-free shortcut (DownsampleB)."""
        return list(range(len(self.blocks)))


@register_backbone
def resnet26(num_classes: int) -> ResNet26:
    return ResNet26(num_classes)
