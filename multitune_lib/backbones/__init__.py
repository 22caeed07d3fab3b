"""Backbones, each registered by name (`RunConfig.backbone`): importing this package registers them all."""
from pathlib import Path

# Import order is registration order (choices and help list the paper's network first).
from .resnet26 import ResNet26, resnet26  # isort: skip
from .efficientnet_lite0 import EfficientNetLite0, efficientnet_lite0, imagenet_weights  # isort: skip

# Sources that ship in a package, by name: `--source imagenet` with `--backbone efficientnet_lite0`.
NAMED_SOURCES = {("efficientnet_lite0", "imagenet"): imagenet_weights}


def source_path(spec: str | Path | None, backbone: str) -> Path | None:
    """A source checkpoint's path: a file, or a name of NAMED_SOURCES for `backbone`."""
    if spec is None:
        return None
    named = NAMED_SOURCES.get((backbone, str(spec)))
    return named() if named else Path(spec)


__all__ = ["EfficientNetLite0", "NAMED_SOURCES", "ResNet26", "efficientnet_lite0", "imagenet_weights", "resnet26",
           "source_path"]
