"""Errors a user can act on: each names the file or value at fault and says how to fix it."""


class MultiTuneError(Exception):
    """Base class: the CLI prints these without a traceback."""


class DataError(MultiTuneError):
    pass


class CheckpointError(MultiTuneError):
    pass


class ConfigError(MultiTuneError):
    pass


class TrainingDiverged(MultiTuneError):
    """A non-finite loss or penalty: the run stops, nothing is stored as finished."""


class RunBusy(MultiTuneError):
    """The run is training in another process."""
