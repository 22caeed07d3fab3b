"""The study: profiles, the `Study` that runs them, Table 3 and Fig. 2, and the notebook runner.
`python -m multitune_lib.study ...` is `python -m multitune_lib study ...`."""
from .study import Study

__all__ = ["Study"]
