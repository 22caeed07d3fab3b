"""multitune_lib: the models, L2-SP and training loop of the MultiTune / SpotTune reproducibility study."""
from .config import RunConfig
from .errors import CheckpointError, ConfigError, DataError, MultiTuneError

__version__ = "0.1.0"
__all__ = ["CheckpointError", "ConfigError", "DataError", "MultiTuneError", "RunConfig"]
