"""Backbones, each registered by name (`RunConfig.backbone`): importing this package registers them all."""
from .resnet26 import ResNet26, resnet26

__all__ = ["ResNet26", "resnet26"]
