"""multitune_lib: the models, L2-SP and training core of the MultiTune / SpotTune reproducibility study.

Importing the package registers every backbone and method (backbones/, methods/), as timm registers its models.
"""
from importlib import metadata

from . import backbones, methods  # noqa: F401  (registration)
from .core.backbone import Backbone, create_backbone, register_backbone
from .core.config import RunConfig
from .core.fit import fit
from .core.method import Built, Method, register_method
from .core.registry import BACKBONES, METHODS
from .core.trainer import Trainer
from .errors import CheckpointError, ConfigError, DataError, MultiTuneError

__version__ = metadata.version("multitune_lib")  # pyproject.toml holds the one version number
__all__ = ["BACKBONES", "METHODS", "Backbone", "Built", "CheckpointError", "ConfigError", "DataError", "Method",
           "MultiTuneError", "RunConfig", "Trainer", "create_backbone", "fit", "register_backbone", "register_method"]
