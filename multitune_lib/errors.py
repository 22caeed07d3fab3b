"""Errors a user can act on: each names the file or value at fault and says how to fix it."""


def one_line(e: BaseException) -> str:
    """An exception in one line, for a message of ours: library messages (torch's, tarfile's) run to paragraphs."""
    line = next(iter(str(e).splitlines()), "")
    return f"{type(e).__name__}: {line}" if line else type(e).__name__


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


class StoreError(MultiTuneError):
    """A file of the results store that cannot be read (cut short, garbled, a bad git merge)."""


class RunBusy(MultiTuneError):
    """The run is training in another process."""
