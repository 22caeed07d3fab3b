"""Models of the study, named as in the papers."""
from .baselines import FeatureExtractor
from .multitune import MultiTune, reinit
from .resnet import ResNet26, resnet26
from .spottune import SpotTune

# A small registry, as timm keeps one: backbones by name.
BACKBONES = {"resnet26": resnet26}

__all__ = ["BACKBONES", "FeatureExtractor", "MultiTune", "ResNet26", "SpotTune", "reinit", "resnet26"]
