"""Errors a user can act on: each names the file or value at fault and says how to fix it."""


class MultiTuneError(Exception):
    """Base class: the CLI prints these without a traceback."""


class DataError(MultiTuneError):
    pass


class CheckpointError(MultiTuneError):
    pass


class ConfigError(MultiTuneError):
    pass
