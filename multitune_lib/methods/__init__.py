"""The methods of the study, each one file that ends by registering itself: importing this package registers them
all. A new method is a new file here and its import below; the import order is the order of tables and legends."""
from . import finetune  # noqa: F401  finetune, l2sp, scratch
from . import feature  # noqa: F401
from . import spottune  # noqa: F401
from . import multitune  # noqa: F401
from . import amf  # noqa: F401
from . import contribution  # noqa: F401
from . import selective_joint  # noqa: F401
from .amf import AMF, Recipe, register_recipe
from .contribution import Contribution
from .feature import FeatureExtractor
from .multitune import MultiTune, reinit
from .selective_joint import SelectiveJoint
from .spottune import SpotTune

__all__ = ["AMF", "Contribution", "FeatureExtractor", "MultiTune", "Recipe", "SelectiveJoint", "SpotTune", "register_recipe", "reinit"]
